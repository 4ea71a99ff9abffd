// What the browser scripts (chat.spec.mjs, admin.spec.mjs) share: the server's address and the
// browser from the environment, a hard stop after TOTAL_MS so a hung browser never hangs the test
// that runs the script, headless Chromium in a throwaway profile, and numbered step logs and checks.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const BASE = (process.env.CHATD_URL || "").replace(/\/+$/, "");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const SHOTS = process.env.E2E_SCREENSHOTS || "";
export const WAIT_MS = 15_000;
const TOTAL_MS = 120_000;

if (!BASE) {
  console.error("e2e: set CHATD_URL to the server's address, e.g. http://127.0.0.1:8080");
  process.exit(2);
}

const deadline = setTimeout(() => {
  console.error(`e2e: FAILED: still running after ${TOTAL_MS / 1000} s`);
  process.exit(1);
}, TOTAL_MS);
deadline.unref();

export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

let step = 0;
export function log(what) {
  step += 1;
  console.log(`e2e: ${String(step).padStart(2, " ")}. ${what}`);
}

/** Headless Chromium with a fresh profile under the temp dir; `close()` ends it and removes the profile. */
export async function launchBrowser(prefix) {
  const profile = mkdtempSync(join(tmpdir(), prefix));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    env: { ...process.env, HOME: profile, XDG_CONFIG_HOME: profile, XDG_CACHE_HOME: profile },
    timeout: 30_000,
  });
  const close = async () => {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { browser, close };
}
