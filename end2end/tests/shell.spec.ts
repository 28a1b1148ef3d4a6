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

test("the favicon and health endpoint are served", async ({ request }) => {
  expect((await request.get(server.url + "/favicon.ico")).status()).toBe(200);
  expect((await request.get(server.url + "/favicon.svg")).status()).toBe(200);
  const health = await request.get(server.url + "/healthz");
  expect(await health.json()).toEqual({ status: "ok" });
});
