// With no provider configured, the first run shows a live demo call center: a tile per agent
// that changes as calls come and go, queue cards with today's figures, and call control that
// reaches the simulated PBX and comes back on the board.
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

async function tileStates(page: Page): Promise<Record<string, string>> {
  return page.evaluate(() => {
    const states: Record<string, string> = {};
    document.querySelectorAll("[data-extension]").forEach((tile) => {
      states[tile.getAttribute("data-extension")!] = tile.getAttribute("data-state")!;
    });
    return states;
  });
}

test("the demo board is live with no configuration", async ({ page }) => {
  await page.goto(server.url + "/");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
  await expect(page.locator("[data-extension]")).toHaveCount(40);
  // The warm-up has calls under way, and the board keeps moving as the simulation runs.
  await expect(page.locator("[data-extension][data-state=busy]").first()).toBeVisible();
  const before = await tileStates(page);
  await expect
    .poll(async () => {
      const now = await tileStates(page);
      return Object.keys(now).filter((extension) => now[extension] !== before[extension]).length;
    }, { timeout: 30_000 })
    .toBeGreaterThan(0);

  await page.getByRole("link", { name: "Queues" }).click();
  await expect(page.locator("[data-queue]")).toHaveCount(4);
  await expect(page.locator("[data-queue] [data-figure=answered]").first()).toHaveText(/^[1-9]/);
});

test("a click-to-call reaches the simulated PBX and rings the agent's tile", async ({ page, request }) => {
  await page.goto(server.url + "/");
  await expect(page.locator("[data-extension]")).toHaveCount(40);
  const snapshot = await (await request.get(server.url + "/api/v1/snapshot")).json();
  const idle = snapshot.extensions.find(
    (extension: any) => extension.presence === "idle" && extension.agent_status.status === "available",
  );
  expect(idle, "some agent is free").toBeTruthy();

  const response = await request.post(server.url + "/api/v1/commands", {
    data: { action: "dial", extension: idle.id, number: "+61299990000" },
  });
  expect(response.status(), await response.text()).toBe(200);
  await expect(page.locator(`[data-extension="${idle.number}"]`)).not.toHaveAttribute("data-state", "idle");
  const after = await (await request.get(server.url + "/api/v1/snapshot")).json();
  const dialled = after.calls.find(
    (call: any) => call.origin.kind === "click_to_call" && call.legs.some((leg: any) => leg.extension === idle.id),
  );
  expect(dialled, "the click-to-call is on the board").toBeTruthy();

  const refused = await request.post(server.url + "/api/v1/commands", {
    data: { action: "blind_transfer", call: dialled.id, number: "999" },
  });
  expect(refused.status()).toBe(422);
  expect((await refused.json()).error).toMatch(/only an answered call|there is no extension/);
});
