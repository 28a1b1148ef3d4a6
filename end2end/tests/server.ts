// Starts and stops a real Callboard server process for the browser tests, so a test can take
// the server away and bring it back the way an outage or a deploy would.
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

const projectRoot = path.resolve(__dirname, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(projectRoot, "target");
const binary = process.env.CALLBOARD_BIN || path.join(targetDir, "debug", "callboard");
const siteRoot = process.env.LEPTOS_SITE_ROOT || path.join(projectRoot, "target", "site");

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

export class CallboardServer {
  private child: ChildProcess | null = null;
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "callboard-e2e-"));
  log = "";

  private constructor(
    readonly port: number,
    private readonly extraEnv: Record<string, string>,
  ) {}

  /** `extraEnv` adds or overrides the server's environment (e.g. a demo scenario). */
  static async create(extraEnv: Record<string, string> = {}): Promise<CallboardServer> {
    return new CallboardServer(await freePort(), extraEnv);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!fs.existsSync(binary)) {
      throw new Error(`no server binary at ${binary}: build it first (scripts/test does)`);
    }
    const child = spawn(binary, [], {
      env: {
        ...process.env,
        CALLBOARD_SERVER_ADDR: `127.0.0.1:${this.port}`,
        CALLBOARD_STORE_PATH: path.join(this.dataDir, "callboard.db"),
        CALLBOARD_DESK_CRM_URL: "https://crm.example.com/search?q={number}&name={name}",
        LEPTOS_OUTPUT_NAME: "callboard",
        LEPTOS_SITE_ROOT: siteRoot,
        LEPTOS_SITE_PKG_DIR: "pkg",
        RUST_LOG: process.env.RUST_LOG || "warn",
        ...this.extraEnv,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (chunk) => (this.log += chunk));
    child.stderr?.on("data", (chunk) => (this.log += chunk));
    this.child = child;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new Error(`server exited with ${child.exitCode}:\n${this.log}`);
      }
      try {
        const response = await fetch(`${this.url}/healthz`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`server did not become healthy:\n${this.log}`);
  }

  /** Freezes the process (SIGSTOP): its sockets stay open and say nothing, as a hung server
   * or a link a NAT dropped silently would. */
  pause(): void {
    this.child?.kill("SIGSTOP");
  }

  /** Lets a paused process run again (SIGCONT). */
  resume(): void {
    this.child?.kill("SIGCONT");
  }

  /** SIGTERM, as a service manager would send; waits for the graceful exit. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 10_000));
    const result = await Promise.race([exited, timeout]);
    if (result === "timeout") {
      child.kill("SIGKILL");
      throw new Error(`server ignored SIGTERM for 10 s:\n${this.log}`);
    }
    this.child = null;
    return result;
  }
}

/** A simulated PBX on its own (`callboard sim --face <face>=...`: Noojee's API by default, or
 * Voicenter's login API and monitor), as a provider that a configured Callboard connects to,
 * for tests that take the provider away, bring it late, or need its kind. */
export class SimulatedPbx {
  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
  ) {}

  static async start(port: number, face = "noojee"): Promise<SimulatedPbx> {
    const child = spawn(binary, ["sim", "--face", `${face}=127.0.0.1:${port}`, "--minutes", "30", "--time-scale", "1"], {
      env: { ...process.env, RUST_LOG: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    child.stdout?.on("data", (chunk) => (log += chunk));
    child.stderr?.on("data", (chunk) => (log += chunk));
    const deadline = Date.now() + 30_000;
    while (!log.includes("serving:")) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`simulated ${face} did not start:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return new SimulatedPbx(port, child);
  }

  /** The `base_url` a Callboard Noojee provider entry names. */
  static baseUrl(port: number): string {
    return `http://127.0.0.1:${port}/servicemanager/rest`;
  }

  stop(): void {
    this.child.kill("SIGKILL");
  }
}
