// Measures how busy Chromium's main thread is showing 200 tiles at about 100 events/s: the
// demo call center with 200 agents, accelerated. Prints the figures; fails only if the board
// is not live at all.
import { test, expect } from "@playwright/test";
import * as path from "node:path";
import { CallboardServer } from "../tests/server";

const SECONDS = Number(process.env.MEASURE_SECONDS || 20);

test("main-thread busy share with 200 tiles at ~100 events/s", async ({ page }) => {
  const server = await CallboardServer.create({
    CALLBOARD_DEMO_SCENARIO: path.join(__dirname, "200-agents.toml"),
    CALLBOARD_DEMO_TIME_SCALE: process.env.MEASURE_TIME_SCALE || "20",
    CALLBOARD_DEMO_WARMUP_MINUTES: "30",
  });
  await server.start();
  try {
    await page.setViewportSize({ width: 1920, height: 1080 });
    await page.goto(server.url + "/?kiosk");
    await expect(page.locator("[data-extension]")).toHaveCount(200);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");
    const metrics = async () => {
      const { metrics } = await cdp.send("Performance.getMetrics");
      return Object.fromEntries(metrics.map((m: any) => [m.name, m.value]));
    };
    const health = async () => (await (await page.request.get(server.url + "/api/v1/connectors")).json())[0].events;
    const [before, eventsBefore] = [await metrics(), await health()];
    const started = Date.now();
    await page.waitForTimeout(SECONDS * 1000);
    const [after, eventsAfter] = [await metrics(), await health()];
    const wall = (Date.now() - started) / 1000;
    const busy = (after.TaskDuration - before.TaskDuration) / wall;
    const script = (after.ScriptDuration - before.ScriptDuration) / wall;
    const layout = (after.LayoutDuration - before.LayoutDuration + after.RecalcStyleDuration - before.RecalcStyleDuration) / wall;
    const rate = (eventsAfter - eventsBefore) / wall;
    const overflow = await page.evaluate(() => document.documentElement.scrollHeight > window.innerHeight);
    // The first 100 tiles must fit a 1920x1080 wall screen.
    const hundredth = await page.locator("[data-extension]").nth(99).boundingBox();
    const fits = hundredth !== null && hundredth.y + hundredth.height <= 1080;
    console.log(
      `board load: ${await page.locator("[data-extension]").count()} tiles, ${rate.toFixed(0)} events/s over ${wall.toFixed(0)} s; ` +
        `main thread busy ${(busy * 100).toFixed(1)}% (script ${(script * 100).toFixed(1)}%, style+layout ${(layout * 100).toFixed(1)}%); ` +
        `100 tiles fit 1920x1080: ${fits} (200 scroll: ${overflow}); JS heap ${(after.JSHeapUsedSize / 1e6).toFixed(1)} MB`,
    );
    expect(rate).toBeGreaterThan(10);
    expect(fits).toBe(true);
  } finally {
    await server.stop();
  }
});
