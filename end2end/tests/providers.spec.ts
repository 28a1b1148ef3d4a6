// A provider feed in trouble is said on every screen: the browser's own link can be live while a
// connector cannot reach its PBX, and then the board shows old news.
import { test, expect } from "@playwright/test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CallboardServer, SimulatedNoojee, freePort } from "./server";

test("a provider that cannot be reached is pointed out, kiosk too, until it delivers", async ({ page }) => {
  const port = await freePort();
  const config = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "callboard-config-")), "callboard.toml");
  fs.writeFileSync(
    config,
    `[[provider]]
kind = "noojee"
name = "main-pbx"
base_url = "${SimulatedNoojee.baseUrl(port)}"
api_key = "callboard-sim-key"
extensions = ["201", "202", "203"]
`,
  );
  // The server starts before its PBX is reachable.
  const server = await CallboardServer.create({ CALLBOARD_CONFIG: config });
  await server.start();
  let noojee: SimulatedNoojee | undefined;
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
    noojee = await SimulatedNoojee.start(port);
    await expect(alert).toHaveCount(0, { timeout: 45_000 });
    await expect(page.locator("[data-extension-picker] option")).toHaveCount(4);
  } finally {
    noojee?.stop();
    await server.stop();
  }
});
