import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

// Load measurements (`scripts/measure-board`), kept out of the test run: they print figures.
export default defineConfig({ ...base, testDir: "./perf", timeout: 180_000 });
