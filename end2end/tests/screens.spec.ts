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
  // The demo's feed is healthy: no provider line above the board.
  await expect(page.locator("[data-connector-alert]")).toHaveCount(0);
  // 100 tiles' worth of room: 40 tiles leave the page unscrolled at 1920x1080.
  const overflow = await page.evaluate(() => document.documentElement.scrollHeight > window.innerHeight);
  expect(overflow).toBe(false);
  await page.screenshot({ path: "test-results/screens/wallboard.png" });
});

/** Mean relative luminance (0 black, 1 white) of what the page shows, read from a screenshot. */
async function shownLuminance(page: Page): Promise<number> {
  const png = (await page.screenshot()).toString("base64");
  return page.evaluate(async (png) => {
    const image = new Image();
    image.src = "data:image/png;base64," + png;
    await image.decode();
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = [image.width, image.height];
    const context = canvas.getContext("2d")!;
    context.drawImage(image, 0, 0);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    const linear = (c: number) => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) {
      sum += 0.2126 * linear(data[i]) + 0.7152 * linear(data[i + 1]) + 0.0722 * linear(data[i + 2]);
    }
    return sum / (data.length / 4);
  }, png);
}

/** WCAG contrast ratio between an element's text colour and the page's background. */
async function textContrast(page: Page, selector: string): Promise<number> {
  return page.evaluate((selector) => {
    // A canvas turns any CSS colour (Tailwind's are oklch) into sRGB.
    const context = document.createElement("canvas").getContext("2d", { willReadFrequently: true })!;
    const luminance = (colour: string) => {
      context.clearRect(0, 0, 1, 1);
      context.fillStyle = colour;
      context.fillRect(0, 0, 1, 1);
      const [r, g, b] = context.getImageData(0, 0, 1, 1).data;
      const linear = (c: number) => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
    };
    const text = luminance(getComputedStyle(document.querySelector(selector)!).color);
    const page = luminance(getComputedStyle(document.querySelector("[data-theme]")!).backgroundColor);
    return (Math.max(text, page) + 0.05) / (Math.min(text, page) + 0.05);
  }, selector);
}

test("kiosk mode shows only the chosen queue's agents, without chrome", async ({ page }) => {
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.goto(server.url + "/?kiosk&columns=8&queues=sales&theme=light");
  await expect(page.locator("header")).toBeHidden();
  const snap = await snapshot(page);
  const sales = snap.queues.find((queue: any) => queue.name === "Sales");
  await expect(page.locator("[data-extension]")).toHaveCount(sales.members.length);
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
  // Light from edge to edge, and the tiles' words still read: dark text on the light page.
  expect(await shownLuminance(page)).toBeGreaterThan(0.6);
  expect(await textContrast(page, "[data-extension] span")).toBeGreaterThan(7);
  expect(await textContrast(page, "[data-tile-line]")).toBeGreaterThan(4.5);
  await page.screenshot({ path: "test-results/screens/wallboard-light.png" });
  await expect(page.locator("[data-unknown-queues]")).toHaveCount(0);
  // The same board without the theme is dark; a queue name mistyped in the URL is pointed out.
  await page.goto(server.url + "/?kiosk&columns=8&queues=sales,salse");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
  await expect(page.locator("[data-unknown-queues]")).toContainText("No queue named “salse”. Queues here:");
  await expect(page.locator("[data-unknown-queues]")).toContainText("Sales");
  await expect(page.locator("[data-extension]")).toHaveCount(sales.members.length);
  expect(await shownLuminance(page)).toBeLessThan(0.2);
  expect(await textContrast(page, "[data-extension] span")).toBeGreaterThan(7);
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
        const a = queue.figures.agents;
        const agents = await card.locator("[data-agents]").textContent();
        const expected = `${a.available} available · ${a.busy} busy · ${a.on_break} break · ${a.logged_out} out`;
        if (agents !== expected) mismatches.push(`${queue.name} agents ${agents}, not ${expected}`);
      }
      return mismatches;
    })
    .toEqual([]);
  const card = page.locator("[data-queue]").first();
  await expect(card.locator("[data-chart] svg rect").first()).toBeAttached();
  // Each bar sits at its hour on the queue's clock, with its figures on hover.
  const today = server.url + "/api/v1/queues/today?queue=" + encodeURIComponent((await card.getAttribute("data-queue"))!);
  await expect
    .poll(async () => {
      const [day, label, title] = await Promise.all([
        page.request.get(today).then((response) => response.json()),
        card.locator("[data-chart] svg text").first().textContent(),
        card.locator("[data-chart] svg g title").first().textContent(),
      ]);
      const first = String(day.hours[0].hour).padStart(2, "0");
      return label === first && title!.startsWith(`${first}:00: ${day.hours[0].offered} offered`);
    })
    .toBe(true);
  await card.locator("[popovertarget$=-sl]").click();
  await expect(card.locator("[data-help=sl]")).toContainText("answered + abandoned − short abandons");
  await page.screenshot({ path: "test-results/screens/queues.png" });
  // A formula under a label that does not wrap still wraps to its popover's width.
  await page.keyboard.press("Escape");
  await card.locator("[popovertarget$=-offered]").click();
  const offered = card.locator("[data-help=offered]");
  await expect(offered).toBeVisible();
  expect(await offered.evaluate((help) => getComputedStyle(help).whiteSpace)).toBe("normal");
});

test("today's abandoned callers stay open as the figures move, every one of them, with the call-back outcome", async ({ page }) => {
  test.setTimeout(120_000);
  await page.goto(server.url + "/queues");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
  // Support is the demo's busiest queue: its counts move, and its day is fetched again, often.
  const support = (await snapshot(page)).queues.find((queue: any) => queue.name === "Support");
  const list = page.locator(`[data-queue="${support.id}"] details`);
  const callBack = list.locator("[data-action=call_back]").first();
  await expect(callBack).toBeAttached({ timeout: 45_000 });
  await list.locator("summary").click();
  await expect(list).toHaveJSProperty("open", true);
  // No extension chosen in this browser: the call back says where to choose one.
  await callBack.click();
  const outcome = list.locator("p");
  await expect(outcome).toHaveText("Choose your extension on the agent desk first.");

  const refetched = await page.waitForResponse(
    (response) =>
      response.url().includes("/api/v1/queues/today") && new URL(response.url()).searchParams.get("queue") === support.id,
    { timeout: 45_000 },
  );
  const day = await refetched.json();
  await page.waitForTimeout(500);
  await expect(list).toHaveJSProperty("open", true);
  await expect(outcome).toBeVisible();
  await expect(outcome).toHaveText("Choose your extension on the agent desk first.");
  // All of them (the summary counts them all), in a box that scrolls rather than a long page.
  await expect(list.locator("[data-abandoned]")).toHaveCount(day.abandoned.length);
  await expect(list.locator("[data-abandoned-summary]")).toContainText(`Abandoned today (${day.abandoned.length}`);
  const box = await list
    .locator("[data-abandoned-list]")
    .evaluate((ul) => [getComputedStyle(ul).maxHeight, getComputedStyle(ul).overflowY]);
  expect(box[0]).not.toBe("none");
  expect(box[1]).toBe("auto");
});

test("links between the screens keep the theme and the queues chosen, and the queues screen follows them", async ({ page }) => {
  await page.goto(server.url + "/?theme=Light&queues=sales");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
  await expect(page.locator("[data-theme]")).toHaveAttribute("data-theme", "light");
  const link = page.locator("nav a", { hasText: "Queues" });
  await expect(link).toHaveAttribute("href", "/queues?theme=Light&queues=sales");
  await link.click();
  await expect(page).toHaveURL(/\/queues\?theme=Light&queues=sales$/);
  await expect(page.locator("[data-theme]")).toHaveAttribute("data-theme", "light");
  await expect(page.locator("[data-queue]")).toHaveCount(1);
  await expect(page.locator("[data-queue]")).toContainText("Sales");
  await expect(page.locator("nav a", { hasText: "Wallboard" })).toHaveAttribute("href", "/?theme=Light&queues=sales");
  // `kiosk=false` is not kiosk mode: the bar stays.
  await page.goto(server.url + "/?kiosk=false");
  await expect(page.locator("header")).toBeVisible();
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

  // Keys do what an offered button would: `a` on an answered call sends nothing, `h` hangs up.
  const commands: string[] = [];
  page.on("request", (request) => {
    if (request.url().endsWith("/api/v1/commands")) commands.push(request.postDataJSON().action);
  });
  await page.keyboard.press("a");
  await page.keyboard.press("h");
  await expect(page.locator("[data-no-call]")).toBeVisible();
  expect(commands).toEqual(["hangup"]);
  const history = await (await page.request.get(server.url + "/api/v1/calls?number=%2B61299990000")).json();
  expect(history.some((call: any) => call.legs.some((leg: any) => leg.extension === free.id) && call.end_cause === "normal")).toBe(true);

  // The extension is remembered in this browser.
  await page.reload();
  await expect(page.locator("[data-extension-picker]")).toHaveValue(free.id);

  // One remembered from a provider since renamed is said to be gone, not waited on.
  await page.evaluate(() => localStorage.setItem("callboard.extension", "old-pbx/callcenter/201"));
  await page.reload();
  await expect(page.locator("[data-stale-extension]")).toContainText("old-pbx/callcenter/201");
  await expect(page.locator("[data-no-call]")).toHaveCount(0);
  await page.locator("[data-extension-picker]").selectOption(free.id);
  await expect(page.locator("[data-stale-extension]")).toHaveCount(0);
  await expect(page.locator("[data-agent-status]")).toBeVisible();
});

test("the desk shows the agent's own status and time in it, so one on break sees why no call comes", async ({ page }) => {
  await page.goto(server.url + "/desk");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
  // The demo's agents take breaks all day: wait for one.
  let away: any;
  await expect
    .poll(async () => (away = (await snapshot(page)).extensions.find((e: any) => e.agent_status.status === "break")), {
      timeout: 60_000,
    })
    .toBeTruthy();
  await page.locator("[data-extension-picker]").selectOption(away.id);
  const status = page.locator("[data-agent-status]");
  // The agent may come back meanwhile: the desk follows the snapshot either way.
  await expect
    .poll(async () => {
      const now = (await snapshot(page)).extensions.find((e: any) => e.id === away.id).agent_status;
      const shown = await status.getAttribute("data-agent-status");
      const text = (await status.textContent()) ?? "";
      const reason = typeof now.detail === "string" ? now.detail[0].toUpperCase() + now.detail.slice(1) : now.detail?.other;
      const expected = now.status === "break" ? `Break · ${reason}` : now.status === "available" ? "Available" : "Logged out";
      return shown === now.status && text.startsWith(expected) && /\d+:\d\d$/.test(text);
    })
    .toBe(true);
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
