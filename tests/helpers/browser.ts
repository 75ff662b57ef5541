/**
 * Driving the built-in web client in a real browser: playwright-core with Debian's
 * chromium (headless, its own profile), screenshots into test-output/screenshots/, and the
 * waits the browser tests share. Tests skip themselves with `needs("chromium", name)` (tests/helpers/tools.ts).
 */
import fs from "node:fs";
import { CHROMIUM_PATH } from "./tools.ts";
import type { BrowserContext, Locator, Page } from "playwright-core";

const SHOTS = new URL("../../test-output/screenshots/", import.meta.url).pathname;
/** Generous: these are waits for events, not performance limits. */
export const WAIT = 20_000;

/**
 * playwright-core probes `/proc/sys/fs/binfmt_misc/WSLInterop` (a WSL check) when it loads;
 * Deno wants `--allow-all` for anything under /proc/sys, and the test task does not grant
 * it. Such a probe means "no": make `existsSync` say so instead of throwing, then load.
 */
async function loadPlaywright(): Promise<typeof import("playwright-core")> {
  const exists = fs.existsSync;
  fs.existsSync = (p: fs.PathLike) => {
    try {
      return exists(p);
    } catch {
      return false;
    }
  };
  return await import("playwright-core");
}

/** A fresh headless chromium with its own profile directory. */
export async function launch(): Promise<{ ctx: BrowserContext; close: () => Promise<void> }> {
  const { chromium } = await loadPlaywright();
  const profile = await Deno.makeTempDir({ prefix: "mxflex-chromium-" });
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1100, height: 760 },
    timeout: 60_000,
  });
  return {
    ctx,
    async close() {
      await ctx.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** Saves a screenshot as test-output/screenshots/<name>.png. */
export async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  await Deno.mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage });
}

/** Waits until `[data-testid=call-<id>]` is in `state`; returns its data-history. */
export async function callState(page: Page, id: number | string, state: string): Promise<string> {
  const el = page.locator(`[data-testid="call-${id}"][data-state="${state}"]`);
  await el.waitFor({ timeout: WAIT });
  return (await el.getAttribute("data-history")) ?? "";
}

/** The data-action values of the buttons inside `el`, in order. */
export async function actions(el: Locator): Promise<string[]> {
  const out: string[] = [];
  for (const b of await el.locator("[data-action]").all()) {
    out.push((await b.getAttribute("data-action")) ?? "");
  }
  return out;
}

/** Fills in the login form and submits it. */
export async function login(page: Page, user: string, password: string): Promise<void> {
  await page.fill("#login-input", user);
  await page.fill("#password-input", password);
  await page.click("#login-button");
}
