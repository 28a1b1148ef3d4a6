// A provider feed in trouble is said on every screen: the browser's own link can be live while a
// connector cannot reach its PBX, and then the board shows old news.
import { test, expect } from "@playwright/test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CallboardServer, SimulatedPbx, freePort } from "./server";

/** A Callboard configuration file with `text`, in a directory of its own. */
function configFile(text: string): string {
  const config = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "callboard-config-")), "callboard.toml");
  fs.writeFileSync(config, text);
  return config;
}

test("a provider that cannot be reached is pointed out, kiosk too, until it delivers", async ({ page }) => {
  const port = await freePort();
  const config = configFile(`[[provider]]
kind = "noojee"
name = "main-pbx"
base_url = "${SimulatedPbx.baseUrl(port)}"
api_key = "callboard-sim-key"
extensions = ["201", "202", "203"]
`);
  // The server starts before its PBX is reachable.
  const server = await CallboardServer.create({ CALLBOARD_CONFIG: config });
  await server.start();
  let noojee: SimulatedPbx | undefined;
  try {
    await page.goto(server.url + "/?kiosk");
    await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
    const alert = page.locator("[data-connector-alert=main-pbx]");
    await expect(alert).toHaveAttribute("data-connector-state", "degraded");
    await expect(alert).toContainText("main-pbx (noojee) is having trouble: error sending request");
    await expect(alert).toContainText(/connection refused/i);
    await page.screenshot({ path: "test-results/screens/provider-trouble.png" });
    await page.goto(server.url + "/desk");
    await expect(alert).toBeVisible();

    // The PBX comes up: the connector delivers, and the line goes.
    noojee = await SimulatedPbx.start(port);
    await expect(alert).toHaveCount(0, { timeout: 45_000 });
    await expect(page.locator("[data-extension-picker] option")).toHaveCount(4);
  } finally {
    noojee?.stop();
    await server.stop();
  }
});

test("a desk on a provider that only reports calls offers no dialling", async ({ page }) => {
  // Voicenter's Real Time API reports calls and cannot place them: no dial pad, no call buttons.
  const port = await freePort();
  const voicenter = await SimulatedPbx.start(port, "voicenter");
  const config = configFile(`[[provider]]
kind = "voicenter"
name = "vc"
login_url = "http://127.0.0.1:${port}/monitorAPI"
login_type = "token"
token = "callboard-sim-key"
`);
  const server = await CallboardServer.create({ CALLBOARD_CONFIG: config });
  await server.start();
  try {
    await expect.poll(async () => {
      const connectors = await (await page.request.get(server.url + "/api/v1/connectors")).json();
      return connectors.map((c: any) => `${c.name} ${c.state} ${c.capabilities?.length ?? 0}`);
    }, { timeout: 30_000 }).toEqual(["vc ready 0"]);
    await page.goto(server.url + "/desk");
    await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
    const snapshot = await (await page.request.get(server.url + "/api/v1/snapshot")).json();
    expect(snapshot.extensions.length).toBeGreaterThan(0);
    await page.locator("[data-extension-picker]").selectOption(snapshot.extensions[0].id);
    await expect(page.locator("[data-agent-status]")).toBeVisible();
    await expect(page.locator("[data-recent-calls]")).toBeVisible();
    await expect(page.locator("[data-dial-number]")).toHaveCount(0);
    await expect(page.locator("[data-action=dial]")).toHaveCount(0);
    // A contact is listed, and there is no button to call it.
    const contacts = page.locator("[data-contacts]");
    await contacts.locator("[data-contact-name]").fill("Ada Lovelace");
    await contacts.locator("[data-contact-number]").fill("02 9999 1234");
    await contacts.getByRole("button", { name: "Add" }).click();
    const ada = contacts.locator("[data-contact]", { hasText: "Ada Lovelace" });
    await expect(ada).toBeVisible();
    await expect(ada.getByRole("button", { name: "Call" })).toHaveCount(0);
    await expect(page.locator("[data-action=call_back]")).toHaveCount(0);
    // Voicenter names its queues but not who serves them: the card says so rather than 0s.
    await page.goto(server.url + "/queues");
    const card = page.locator("[data-queue]").first();
    await expect(card.locator("[data-agents]")).toHaveText("agents not reported by the provider");
  } finally {
    voicenter.stop();
    await server.stop();
  }
});
