import { test, expect, Page } from "@playwright/test";
import { CallboardServer } from "./server";

let server: CallboardServer;

test.beforeAll(async () => {
  server = await CallboardServer.create();
  await server.start();
});

test.afterAll(async () => {
  await server.stop();
});

/** Every console error and uncaught exception the page produces. */
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(`uncaught: ${error.message}`));
  return errors;
}

test("the page hydrates, connects and navigates without a reload", async ({ page }) => {
  const errors = collectErrors(page);
  await page.goto(server.url + "/");
  const badge = page.locator("[data-connection]");
  await expect(badge).toHaveAttribute("data-connection", "connected");

  // A client-side navigation keeps this marker: the app is hydrated, not a plain page.
  await page.evaluate(() => ((window as any).__sameDocument = true));
  await page.getByRole("link", { name: "Queues" }).click();
  await expect(page).toHaveURL(/\/queues$/);
  await expect(page.locator("[data-page=queues]")).toBeVisible();
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
  await page.getByRole("link", { name: "Agent desk" }).click();
  await expect(page.locator("[data-page=desk]")).toBeVisible();
  await expect(badge).toHaveAttribute("data-connection", "connected");

  expect(errors).toEqual([]);
});

test("the badge shows reconnecting while the server is down and recovers", async ({ page }) => {
  const errors = collectErrors(page);
  await page.goto(server.url + "/");
  const badge = page.locator("[data-connection]");
  await expect(badge).toHaveAttribute("data-connection", "connected");

  expect(await server.stop()).toBe(0);
  await expect(badge).toHaveAttribute("data-connection", "reconnecting");

  await server.start();
  await expect(badge).toHaveAttribute("data-connection", "connected");

  // Chromium itself reports each refused websocket attempt while the server is away; that is
  // the outage this test makes. Anything else is a real error.
  const unexpected = errors.filter((text) => !/WebSocket connection to .* failed/.test(text));
  expect(unexpected).toEqual([]);
});

test("a server that goes silent is noticed by its unanswered ping, not shown as live", async ({ page }) => {
  // The browser pings every 20 s and gives up when the next ping finds the last unanswered.
  test.setTimeout(120_000);
  await page.goto(server.url + "/");
  const badge = page.locator("[data-connection]");
  await expect(badge).toHaveAttribute("data-connection", "connected");
  server.pause();
  try {
    const frozen = Date.now();
    await expect(badge).toHaveAttribute("data-connection", "reconnecting", { timeout: 50_000 });
    expect(Date.now() - frozen).toBeGreaterThan(15_000);
  } finally {
    server.resume();
  }
  await expect(badge).toHaveAttribute("data-connection", "connected", { timeout: 30_000 });
});

/** Counts the websockets the page opens (and their URLs), from before the app loads. */
async function countOpenedSockets(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as any;
    w.__opened = [];
    const Native = window.WebSocket;
    w.WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener("open", () => w.__opened.push(String(url)));
      }
    };
  });
}

const opened = (page: Page): Promise<string[]> => page.evaluate(() => (window as any).__opened);

/** What the browser says when a tab is hidden or shown again. */
async function showTab(page: Page, state: "hidden" | "visible"): Promise<void> {
  await page.evaluate((state) => {
    Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, state);
}

test("a tab shown again resumes from its last delta, once however often it was shown", async ({ page }) => {
  await countOpenedSockets(page);
  await page.goto(server.url + "/");
  const badge = page.locator("[data-connection]");
  await expect(badge).toHaveAttribute("data-connection", "connected");
  await expect.poll(async () => (await opened(page)).length).toBe(1);

  // Shown again: a new socket resumes after the last delta, on the same server's numbering.
  await showTab(page, "hidden");
  await showTab(page, "visible");
  await expect.poll(async () => (await opened(page)).length).toBe(2);
  expect((await opened(page))[1]).toMatch(/\/ws\?since=\d+&epoch=\d+$/);
  await expect(badge).toHaveAttribute("data-connection", "connected");

  // Shown five times while the server is away: each is an attempt at once, and none is left
  // over to make the socket that finally opens reconnect again.
  expect(await server.stop()).toBe(0);
  await expect(badge).toHaveAttribute("data-connection", "reconnecting");
  for (let i = 0; i < 5; i++) {
    await showTab(page, "hidden");
    await showTab(page, "visible");
  }
  await server.start();
  // By now the backoff is 5 to 10 s; a tab shown again does not wait it out.
  await showTab(page, "hidden");
  await showTab(page, "visible");
  await expect(badge).toHaveAttribute("data-connection", "connected", { timeout: 4_000 });
  await page.waitForTimeout(2_000);
  expect((await opened(page)).length).toBe(3);
  await expect(page.locator("[data-extension]").first()).toBeVisible();
});

test("the favicon and health endpoint are served", async ({ request }) => {
  expect((await request.get(server.url + "/favicon.ico")).status()).toBe(200);
  expect((await request.get(server.url + "/favicon.svg")).status()).toBe(200);
  const health = await request.get(server.url + "/healthz");
  expect(await health.json()).toEqual({ status: "ok" });
});
