// The agent desk driven only through its own controls, as an agent works: the dial pad, the
// contact editor and CSV import, calling a contact, hold and resume, a blind transfer from the
// screen pop, and calling back an abandoned caller from the queues screen.
import { test, expect, Page } from "@playwright/test";
import * as path from "node:path";
import { CallboardServer } from "./server";

let server: CallboardServer;

test.beforeAll(async () => {
  // A call center where agents outside the queue stay free until the test calls.
  server = await CallboardServer.create({
    CALLBOARD_DEMO_SCENARIO: path.join(__dirname, "..", "fixtures", "desk-scenario.toml"),
  });
  await server.start();
});

test.afterAll(async () => {
  await server.stop();
});

/** The extensions of agents who serve no queue and are free now, which only the test calls. */
async function freeAgents(page: Page): Promise<any[]> {
  const snap = await (await page.request.get(server.url + "/api/v1/snapshot")).json();
  const serving = new Set(snap.queues.flatMap((queue: any) => queue.members));
  return snap.extensions.filter((e: any) => !serving.has(e.id) && e.presence === "idle" && e.agent_status.status === "available");
}

/** Opens the desk as a free agent's; returns that extension's id. */
async function openDeskAsFreeAgent(page: Page): Promise<string> {
  await page.goto(server.url + "/desk");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
  const [free] = await freeAgents(page);
  expect(free, "some agent is free").toBeTruthy();
  await page.locator("[data-extension-picker]").selectOption(free.id);
  await expect(page.locator("[data-no-call]")).toBeVisible();
  await expect(page.locator("[data-agent-status]")).toHaveAttribute("data-agent-status", "available");
  return free.id;
}

test("contacts are added, imported, called and deleted from the desk", async ({ page }) => {
  await openDeskAsFreeAgent(page);
  const contacts = page.locator("[data-contacts]");

  await contacts.locator("[data-contact-name]").fill("Ada Lovelace");
  await contacts.locator("[data-contact-number]").fill("+61 2 9999 1234");
  await contacts.getByRole("button", { name: "Add" }).click();
  await expect(contacts.locator("[data-contacts-message]")).toHaveText("Saved Ada Lovelace");
  await expect(contacts.locator("[data-contact]", { hasText: "Ada Lovelace" })).toBeVisible();
  await expect(contacts.locator("[data-contact-name]")).toHaveValue("");

  await contacts.locator("summary").click();
  await contacts.locator("[data-contact-csv]").fill("name,number,company\nGrace Hopper,02 9999 5678,Navy\nNobody,,\n");
  await contacts.getByRole("button", { name: "Import" }).click();
  await expect(contacts.locator("[data-contacts-message]")).toHaveText("Imported 1, skipped 1");
  await expect(contacts.locator("[data-contacts-skipped] li")).toHaveText(['line 3: "" is not a phone number']);
  const grace = contacts.locator("[data-contact]", { hasText: "Grace Hopper" });
  await expect(grace).toBeVisible();
  // The same file again adds nobody twice, and says why.
  await contacts.locator("[data-contact-csv]").fill("name,number,company\nGrace Hopper,02 9999 5678,Navy\n");
  await contacts.getByRole("button", { name: "Import" }).click();
  await expect(contacts.locator("[data-contacts-message]")).toHaveText("Imported 0, skipped 1");
  await expect(contacts.locator("[data-contacts-skipped] li")).toHaveText(["line 2: Grace Hopper (02 9999 5678) is already a contact"]);
  await expect(grace).toHaveCount(1);

  // Calling a contact rings the agent's own phone first, and the pop names the contact.
  await grace.getByRole("button", { name: "Call" }).click();
  await expect(page.locator("[data-call]")).toBeVisible();
  await expect(page.locator("[data-pop-party]")).toHaveText("Grace Hopper");
  await page.locator("[data-action=hangup]").click();
  await expect(page.locator("[data-no-call]")).toBeVisible();

  await grace.getByRole("button", { name: "Delete" }).click();
  await expect(grace).toHaveCount(0);
  const stored = await (await page.request.get(server.url + "/api/v1/contacts")).json();
  expect(stored.map((c: any) => c.name)).not.toContain("Grace Hopper");
});

test("the dial pad calls out; hold, resume and a blind transfer work from the pop", async ({ page }) => {
  // A desk kept in a narrow window beside the agent's other work.
  await page.setViewportSize({ width: 480, height: 900 });
  const extension = await openDeskAsFreeAgent(page);
  await page.locator("[data-dial-number]").fill("0299990077");
  await page.locator("[data-action=dial]").click();
  await expect(page.locator("[data-call]")).toBeVisible();
  await expect(page.locator("[data-pop-number]")).toHaveText("+61 2 9999 0077");

  await page.locator("[data-action=answer]").click();
  await expect(page.locator("[data-pop-state]")).not.toHaveText("Ringing");
  await page.locator("[data-action=hold]").click();
  await expect(page.locator("[data-pop-state]")).toHaveText("On hold");
  await page.locator("[data-action=resume]").click();
  await expect(page.locator("[data-pop-state]")).not.toHaveText("On hold");
  // Everything fits the narrow window: nothing to scroll sideways for.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(480);

  // A blind transfer to a colleague's extension takes the call off this desk.
  const colleague = (await freeAgents(page)).find((e: any) => e.id !== extension);
  expect(colleague, "a colleague is free").toBeTruthy();
  await page.locator("[data-transfer-number]").fill(colleague.number);
  await page.locator("[data-action=blind_transfer]").click();
  await expect(page.locator("[data-progress]")).toHaveAttribute("data-progress", "done");
  await expect(page.locator("[data-no-call]")).toBeVisible();
  await expect.poll(async () => {
    const after = await (await page.request.get(server.url + "/api/v1/snapshot")).json();
    return after.calls.some((call: any) => call.legs.some((leg: any) => leg.extension === colleague.id && leg.state !== "ended"));
  }).toBe(true);
});

test("recording is started, paused, resumed and stopped, then a consulted colleague takes the call", async ({ page }) => {
  const extension = await openDeskAsFreeAgent(page);
  await page.locator("[data-dial-number]").fill("0299990088");
  await page.locator("[data-action=dial]").click();
  await expect(page.locator("[data-call]")).toBeVisible();
  await page.locator("[data-action=answer]").click();
  await expect(page.locator("[data-pop-state]")).not.toHaveText("Ringing");

  const recording = page.locator("[data-pop-recording]");
  await page.locator("[data-action=record_start]").click();
  await expect(recording).toHaveAttribute("data-pop-recording", "started");
  await page.locator("[data-action=record_pause]").click();
  await expect(recording).toHaveAttribute("data-pop-recording", "paused");
  await page.locator("[data-action=record_resume]").click();
  await expect(recording).toHaveAttribute("data-pop-recording", "started");
  await page.locator("[data-action=record_stop]").click();
  await expect(recording).toHaveCount(0);

  // Consult: the colleague's phone rings on a second call, which the pop now shows. Completing
  // is offered only while a consultation holds the first call.
  await expect(page.locator("[data-action=complete_transfer]")).toHaveCount(0);
  const first = await page.locator("[data-call]").getAttribute("data-call");
  const colleague = (await freeAgents(page)).find((e: any) => e.id !== extension);
  expect(colleague, "a colleague is free").toBeTruthy();
  await page.locator("[data-transfer-number]").fill(colleague.number);
  await page.locator("[data-action=consult]").click();
  await expect(page.locator("[data-progress]")).toHaveAttribute("data-progress", "done");
  await expect(page.locator("[data-call]")).not.toHaveAttribute("data-call", first!);

  // The call on hold is listed beside the pop, and can be brought into it and back.
  const consultation = await page.locator("[data-call]").getAttribute("data-call");
  const held = page.locator(`[data-other-calls] [data-other-call="${first}"]`);
  await expect(held).toContainText("On hold");
  await held.locator("[data-show-call]").click();
  await expect(page.locator("[data-call]")).toHaveAttribute("data-call", first!);
  await expect(page.locator("[data-action=resume]")).toBeVisible();
  await page.locator(`[data-other-call="${consultation}"] [data-show-call]`).click();
  await expect(page.locator("[data-call]")).toHaveAttribute("data-call", consultation!);

  // The colleague answers at their own desk; then this agent completes the transfer.
  const answered = await page.request.post(server.url + "/api/v1/commands", {
    data: { action: "answer", call: consultation, extension: colleague.id },
  });
  expect(answered.status(), await answered.text()).toBe(200);
  await expect(page.locator("[data-action=consult]")).toHaveCount(0);
  await page.locator("[data-action=complete_transfer]").click();
  await expect(page.locator("[data-progress]")).toHaveAttribute("data-progress", "done");
  await expect(page.locator("[data-no-call]")).toBeVisible();
  const after = await (await page.request.get(server.url + "/api/v1/snapshot")).json();
  const transferred = after.calls.find((call: any) => call.id === first);
  expect(transferred?.legs.some((leg: any) => leg.extension === colleague.id && leg.state === "active")).toBe(true);
});

test("an abandoned caller is called back from the queues screen", async ({ page }) => {
  const extension = await openDeskAsFreeAgent(page);
  await page.goto(server.url + "/queues");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connected");
  // The queue's callers give up soon, so there is one to call back.
  const anyCallBack = page.locator("[data-action=call_back]");
  await expect(anyCallBack.first()).toBeAttached();
  const id = await page.locator("[data-queue]", { has: anyCallBack }).first().getAttribute("data-queue");
  const list = page.locator(`[data-queue="${id}"] details`);
  await list.locator("summary").click();
  await expect(list).toHaveJSProperty("open", true);

  const row = list.locator("[data-abandoned]", { has: page.locator("[data-action=call_back]") }).first();
  const abandoned = await row.getAttribute("data-abandoned");
  await row.locator("[data-action=call_back]").click();
  await expect.poll(async () => {
    const snap = await (await page.request.get(server.url + "/api/v1/snapshot")).json();
    return snap.calls.some((call: any) => call.origin.kind === "click_to_call" && call.legs.some((leg: any) => leg.extension === extension));
  }).toBe(true);

  // Once the caller answers the call back, the day says they were reached; the list puts those
  // still to call first, and offers this one no second call back.
  await expect.poll(async () => {
    const day = await (await page.request.get(`${server.url}/api/v1/queues/today?queue=${encodeURIComponent(id!)}`)).json();
    return Object.keys(day.reached ?? {});
  }, { timeout: 45_000 }).toContain(abandoned);
  await expect(list.locator("[data-abandoned-summary]")).toContainText("not reached since");
  await expect(list.locator(`[data-abandoned="${abandoned}"] [data-action=call_back]`)).toHaveCount(0);
  const rows = list.locator("[data-abandoned]");
  const marks = await rows.evaluateAll((items) => items.map((item) => item.hasAttribute("data-reached")));
  expect(marks, "reached callers come after those still to call").toEqual([...marks].sort());
});

test("a finished call is listed under the agent's recent calls and called back from there", async ({ page }) => {
  const extension = await openDeskAsFreeAgent(page);
  await page.locator("[data-dial-number]").fill("0299990066");
  await page.locator("[data-action=dial]").click();
  const pop = page.locator("[data-call]");
  await expect(pop).toBeVisible();
  const first = await pop.getAttribute("data-call");
  // The agent picks up their own phone, and gives up while the far end still rings.
  await page.locator("[data-action=answer]").click();
  await expect(page.locator("[data-pop-state]")).toHaveText("Ringing out");
  await page.locator("[data-action=hangup]").click();
  await expect(page.locator("[data-no-call]")).toBeVisible();

  // The call just ended heads the list, as the history API has it for this extension.
  const row = page.locator("[data-recent-calls] [data-recent-call]").first();
  await expect(row).toHaveAttribute("data-recent-call", first!);
  await expect(row).toContainText("+61 2 9999 0066");
  await expect(row.locator("[data-recent-outcome]")).toHaveText("not answered");
  const history = await (await page.request.get(`${server.url}/api/v1/calls?extension=${encodeURIComponent(extension)}`)).json();
  expect(history[0].id).toBe(first);
  expect(history.every((call: any) => call.legs.some((leg: any) => leg.extension === extension))).toBe(true);

  // Calling back places a new call to the same number from this extension.
  await row.locator("[data-action=call_back]").click();
  await expect(pop).toBeVisible();
  await expect(pop).not.toHaveAttribute("data-call", first!);
  await expect(page.locator("[data-pop-number]")).toHaveText("+61 2 9999 0066");
  const second = await pop.getAttribute("data-call");
  await page.locator("[data-action=hangup]").click();
  await expect(page.locator("[data-no-call]")).toBeVisible();
  // Newest first: the call back, then the call before it (earlier tests may have left more).
  const rows = page.locator("[data-recent-calls] [data-recent-call]");
  await expect(rows.nth(0)).toHaveAttribute("data-recent-call", second!);
  await expect(rows.nth(1)).toHaveAttribute("data-recent-call", first!);
});
