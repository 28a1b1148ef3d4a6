// The three screens on the demo call center: the wallboard agrees with the snapshot, queue cards
// show the snapshot's figures, and the agent desk pops a ringing call and drives the simulated
// PBX through its connector. Screenshots of each are kept under test-results/screens.
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

async function snapshot(page: Page): Promise<any> {
  return (await page.request.get(server.url + "/api/v1/snapshot")).json();
}

test("wallboard tiles and summary agree with the snapshot", async ({ page }) => {
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.goto(server.url + "/");
  await expect(page.locator("[data-extension]")).toHaveCount(40);
  // The board is live, so compare until a moment where both sides agree.
  await expect
    .poll(async () => {
      const [states, snap] = await Promise.all([
        page.evaluate(() =>
          Object.fromEntries(
            [...document.querySelectorAll("[data-extension]")].map((tile) => [
              tile.getAttribute("data-extension"),
              tile.getAttribute("data-state"),
            ]),
          ),
        ),
        snapshot(page),
      ]);
      return snap.extensions.filter((e: any) => states[e.number] !== e.presence).length;
    })
    .toBe(0);
  await expect(page.locator("[data-summary=answered]")).not.toHaveText("0");
  // 100 tiles' worth of room: 40 tiles leave the page unscrolled at 1920x1080.
  const overflow = await page.evaluate(() => document.documentElement.scrollHeight > window.innerHeight);
  expect(overflow).toBe(false);
  await page.screenshot({ path: "test-results/screens/wallboard.png" });
});

test("kiosk mode shows only the chosen queue's agents, without chrome", async ({ page }) => {
  await page.goto(server.url + "/?kiosk&columns=8&queues=sales&theme=light");
  await expect(page.locator("header")).toBeHidden();
  const snap = await snapshot(page);
  const sales = snap.queues.find((queue: any) => queue.name === "Sales");
  await expect(page.locator("[data-extension]")).toHaveCount(sales.members.length);
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
});

test("queue cards show the snapshot's figures and explain them", async ({ page }) => {
  await page.goto(server.url + "/queues");
  await expect(page.locator("[data-queue]")).toHaveCount(4);
  await expect
    .poll(async () => {
      const snap = await snapshot(page);
      const mismatches = [];
      for (const queue of snap.queues) {
        const card = page.locator(`[data-queue="${queue.id}"]`);
        const offered = await card.locator("[data-figure=offered]").textContent();
        const answered = await card.locator("[data-figure=answered]").textContent();
        const waiting = await card.locator("[data-figure=waiting]").textContent();
        if (offered !== String(queue.figures.offered)) mismatches.push(`${queue.name} offered ${offered}`);
        if (answered !== String(queue.figures.answered)) mismatches.push(`${queue.name} answered ${answered}`);
        if (waiting?.trim() !== String(queue.figures.waiting)) mismatches.push(`${queue.name} waiting ${waiting}`);
      }
      return mismatches;
    })
    .toEqual([]);
  const card = page.locator("[data-queue]").first();
  await expect(card.locator("[data-chart] svg rect").first()).toBeAttached();
  await card.locator("[popovertarget$=-sl]").click();
  await expect(card.locator("[data-help=sl]")).toContainText("answered + abandoned − short abandons");
  await page.screenshot({ path: "test-results/screens/queues.png" });
});

test("the desk pops a ringing call within a second and answers and hangs up through the PBX", async ({ page }) => {
  await page.goto(server.url + "/desk");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
  const snap = await snapshot(page);
  const free = snap.extensions.find((e: any) => e.presence === "idle" && e.agent_status.status === "available");
  expect(free, "some agent is free").toBeTruthy();
  await page.locator("[data-extension-picker]").selectOption(free.id);
  await expect(page.locator("[data-no-call]")).toBeVisible();

  // The number dialled is a contact: the pop names them and links to the CRM.
  const imported = await page.request.post(server.url + "/api/v1/contacts/import", {
    headers: { "content-type": "text/csv" },
    data: "name,number,company\nJane Citizen,02 9999 0000,ACME\n",
  });
  expect(await imported.json()).toEqual({ imported: 1, skipped: [] });

  // A click-to-call rings the agent's own phone first: that is the call that pops.
  const dialled = await page.request.post(server.url + "/api/v1/commands", {
    data: { action: "dial", extension: free.id, number: "+61299990000" },
  });
  expect(dialled.status()).toBe(200);
  await expect(page.locator("[data-call]")).toBeVisible({ timeout: 1_000 });
  await expect(page.locator("[data-pop-number]")).toHaveText("+61 2 9999 0000");
  await expect(page.locator("[data-pop-party]")).toHaveText("Jane Citizen");
  await expect(page.locator("[data-crm]")).toHaveAttribute(
    "href",
    "https://crm.example.com/search?q=%2B61299990000&name=Jane%20Citizen",
  );

  await page.keyboard.press("a");
  await expect(page.locator("[data-progress]")).toHaveAttribute("data-progress", "done");
  await expect(page.locator("[data-pop-state]")).not.toHaveText("Ringing");
  await page.screenshot({ path: "test-results/screens/desk.png" });

  await page.locator("[data-action=hangup]").click();
  await expect(page.locator("[data-no-call]")).toBeVisible();
  const history = await (await page.request.get(server.url + "/api/v1/calls?number=%2B61299990000")).json();
  expect(history.some((call: any) => call.legs.some((leg: any) => leg.extension === free.id) && call.end_cause === "normal")).toBe(true);

  // The extension is remembered in this browser.
  await page.reload();
  await expect(page.locator("[data-extension-picker]")).toHaveValue(free.id);
});

test("through a real connector: the demo behind the simulated Noojee API, answered and hung up from the desk", async ({ page }) => {
  const noojee = await CallboardServer.create({ CALLBOARD_DEMO_FACE: "noojee" });
  await noojee.start();
  try {
    await page.goto(noojee.url + "/desk");
    await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
    const connectors = await (await page.request.get(noojee.url + "/api/v1/connectors")).json();
    expect(connectors[0].provider_kind).toBe("noojee");
    const snap = await (await page.request.get(noojee.url + "/api/v1/snapshot")).json();
    const free = snap.extensions.find((e: any) => e.presence === "idle");
    await page.locator("[data-extension-picker]").selectOption(free.id);
    const dialled = await page.request.post(noojee.url + "/api/v1/commands", {
      data: { action: "dial", extension: free.id, number: "+61299990001" },
    });
    expect(dialled.status(), await dialled.text()).toBe(200);
    await expect(page.locator("[data-call]")).toBeVisible();
    // Noojee has no hold: the desk shows only what the provider can do.
    await expect(page.locator("[data-action=hold]")).toHaveCount(0);
    await page.locator("[data-action=answer]").click();
    await expect(page.locator("[data-progress]")).toHaveAttribute("data-progress", "done");
    await page.locator("[data-action=hangup]").click();
    await expect(page.locator("[data-no-call]")).toBeVisible();
  } finally {
    await noojee.stop();
  }
});
