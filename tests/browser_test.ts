/**
 * The built-in web client (static/) in a real browser: playwright-core driving Debian's
 * chromium against the MX simulator and MXFlex on loopback. Login (wrong and right
 * password), contacts with search and presence, click-to-call with the call's states,
 * an incoming call rung, answered, held, retrieved and hung up, transfer, the dial box,
 * a phone-sized layout, an expired session, and a server restart that invalidates the
 * token (the page must ask to log in again). First of all: the client's ES module graph
 * (every .js file under static/) loads completely, as JavaScript, with no console errors.
 *
 * Screenshots go to test-output/screenshots/. Skipped when /usr/bin/chromium is absent.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import type { BrowserContext, ConsoleMessage, Locator, Page, Response } from "playwright-core";
import { DMITRY, flexLogin, type Harness, startHarness } from "./helpers/harness.ts";
import { staticModules } from "./helpers/static_modules.ts";
import { CHROMIUM_PATH, needs } from "./helpers/tools.ts";
import { seedDemoUser } from "../lib/mxsim/mod.ts";

const SHOTS = new URL("../test-output/screenshots/", import.meta.url).pathname;
/** Generous: these are waits for events, not performance limits. */
const WAIT = 20_000;

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
async function launch(): Promise<{ ctx: BrowserContext; close: () => Promise<void> }> {
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

async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  await Deno.mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage });
}

/** Waits until `[data-testid=call-<id>]` is in `state`; returns its data-history. */
async function callState(page: Page, id: number | string, state: string): Promise<string> {
  const el = page.locator(`[data-testid="call-${id}"][data-state="${state}"]`);
  await el.waitFor({ timeout: WAIT });
  return (await el.getAttribute("data-history")) ?? "";
}

/** The data-action values of the buttons inside `el`, in order. */
async function actions(el: Locator): Promise<string[]> {
  const out: string[] = [];
  for (const b of await el.locator("[data-action]").all()) {
    out.push((await b.getAttribute("data-action")) ?? "");
  }
  return out;
}

async function login(page: Page, user: string, password: string): Promise<void> {
  await page.fill("#login-input", user);
  await page.fill("#password-input", password);
  await page.click("#login-button");
}

Deno.test({
  ...needs("chromium", "browser: web client — login, contacts, calls, call control, restart"),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    // Calls ring until someone answers: the test decides when.
    const h = await startHarness({ sim: { answerAfterMs: -1 } });
    const port = Number(new URL(h.url).port);
    const browser = await launch();
    let restarted: Harness | undefined;
    let firstClosed = false;
    const pageErrors: string[] = [];
    try {
      const page = await browser.ctx.newPage();
      page.setDefaultTimeout(WAIT);
      page.on("pageerror", (e) => pageErrors.push(String(e)));

      await t.step("the module graph loads: every .js file of static/, as JavaScript", async () => {
        const consoleErrors: string[] = [];
        const onConsole = (m: ConsoleMessage) => {
          if (m.type() === "error") consoleErrors.push(`${m.text()} (${m.location().url})`);
        };
        const loaded = new Map<string, string>();
        const onResponse = (r: Response) => {
          const path = new URL(r.url()).pathname;
          if (path.endsWith(".js")) {
            loaded.set(path, `${r.status()} ${r.headers()["content-type"] ?? ""}`);
          }
        };
        page.on("console", onConsole);
        page.on("response", onResponse);
        try {
          await page.goto(h.url);
          // app.js sets it once all its imports ran: the whole graph resolved and evaluated.
          await page.locator('html[data-app="ready"]').waitFor({ state: "attached" })
            .catch((err) => assert.fail(`${err}\nconsole: ${consoleErrors.join("\n")}`));
          const modules = await staticModules();
          assert.ok(modules.length > 5, modules.join(" "));
          assert.deepEqual([...loaded.keys()].sort(), modules, "every module, nothing else");
          for (const [path, how] of loaded) {
            assert.match(how, /^200 text\/javascript/, path);
          }
          assert.deepEqual(consoleErrors, [], "no console errors");
          assert.deepEqual(pageErrors, []);
        } finally {
          page.off("console", onConsole);
          page.off("response", onResponse);
        }
      });

      await t.step("login form (by keyboard); wrong password shows an error", async () => {
        await page.locator("#login-form").waitFor();
        assert.equal(await page.locator("#app-view").isVisible(), false);
        // Labelled fields; the login field has the focus; Tab and Enter submit.
        assert.equal(await page.getByLabel("Login").count(), 1);
        assert.equal(await page.getByLabel("Password").count(), 1);
        assert.equal(await page.evaluate("document.activeElement?.id"), "login-input");
        await shot(page, "01-login");
        await page.keyboard.type(DMITRY.login);
        await page.keyboard.press("Tab");
        await page.keyboard.type("wrong");
        await page.keyboard.press("Enter");
        await page.locator("#login-error").waitFor({ state: "visible" });
        assert.match(await page.locator("#login-error").innerText(), /wrong login or password/i);
        assert.equal(
          await page.evaluate(() => sessionStorage.getItem("mxflex.token")),
          null,
        );
      });

      await t.step("login; contacts with presence; live event stream", async () => {
        await login(page, DMITRY.login, DMITRY.password);
        const maxim = page.locator('[data-testid="contact-3099"]');
        await maxim.waitFor();
        assert.match(await maxim.innerText(), /Maxim Donchenko/);
        assert.equal(await maxim.getAttribute("data-presence"), "Available");
        assert.equal(await maxim.locator(".dot.on").count(), 1);
        assert.ok(await page.locator("#contacts > li").count() >= 17);
        await page.locator('#conn-status[data-state="live"]').waitFor();
        assert.match(await page.locator("#me").innerText(), /3095/);
        assert.ok(await page.evaluate(() => sessionStorage.getItem("mxflex.token")));
        await shot(page, "02-contacts");
      });

      await t.step("contact search filters the list", async () => {
        await page.fill("#contact-search", "donch");
        await page.locator("#contacts > li").first().waitFor();
        assert.equal(await page.locator("#contacts > li").count(), 1);
        assert.equal(await page.locator('[data-testid="contact-3099"]').count(), 1);
        await page.fill("#contact-search", "3044");
        assert.equal(await page.locator("#contacts > li").count(), 1);
        assert.equal(await page.locator('[data-testid="contact-3044"]').count(), 1);
        await page.fill("#contact-search", "");
        assert.ok(await page.locator("#contacts > li").count() >= 17);
      });

      await t.step("click-to-call: delivered, then established when 3099 answers", async () => {
        await page.click('[data-testid="contact-3099"] [data-action="call"]');
        const call = page.locator('#calls > li[data-direction="out"]').first();
        await call.waitFor();
        const id = Number(await call.getAttribute("data-call-id"));
        assert.ok(id > 0);
        const ringing = await callState(page, id, "delivered");
        assert.match(ringing, /delivered/);
        assert.match(await call.innerText(), /Maxim Donchenko/);
        assert.equal(await call.locator('[data-action="hangup"]').count(), 1);
        await shot(page, "03-outgoing-delivered");

        // Maxim answers on his phone.
        const maximToken = await flexLogin(h.url, "maxim", "secret");
        const res = await fetch(`${h.url}/api/calls/${id}/answer`, {
          method: "POST",
          headers: { Authorization: `Bearer ${maximToken}` },
        });
        assert.equal(res.status, 204);
        const history = await callState(page, id, "established");
        assert.match(history, /originated.*delivered.*established|delivered.*established/);
        assert.deepEqual(await actions(call), ["hold", "transfer", "hangup"]);
        await shot(page, "04-outgoing-established");

        await call.locator('[data-action="hangup"]').click();
        await callState(page, id, "cleared");
        // Cleared calls fade out and go away.
        await page.locator(`[data-testid="call-${id}"]`).waitFor({ state: "detached" });
        assert.equal(h.sim.calls().some((c) => c.id === id), false);
      });

      await t.step("incoming call: ring, answer, hold, retrieve, hang up", async () => {
        const id = h.sim.incomingCall({ from: "+14155550123", to: DMITRY.ext });
        await callState(page, id, "ringing");
        const call = page.locator(`[data-testid="call-${id}"]`);
        assert.match(await call.innerText(), /\+14155550123/);
        assert.equal(await call.getAttribute("data-direction"), "in");
        // Buttons are named for screen readers.
        const answer = page.getByRole("button", { name: "Answer call +14155550123" });
        assert.equal(await answer.count(), 1);
        assert.equal(await call.locator('[data-action="answer"]').count(), 1);
        await shot(page, "05-incoming-ringing");

        await call.locator('[data-action="answer"]').click();
        await callState(page, id, "established");
        await call.locator('[data-action="hold"]').click();
        await callState(page, id, "held");
        assert.equal(await call.locator('[data-action="retrieve"]').count(), 1);
        await shot(page, "06-incoming-held");
        await call.locator('[data-action="retrieve"]').click();
        await callState(page, id, "established");
        await call.locator('[data-action="hold"]').click();
        const history = await callState(page, id, "held");
        assert.equal(history, "ringing established held established held");
        await call.locator('[data-action="hangup"]').click();
        await callState(page, id, "cleared");
        assert.equal(h.sim.calls().some((c) => c.id === id), false);
      });

      await t.step("transfer asks for a number and hands the call over", async () => {
        const id = h.sim.incomingCall({ from: "+14155550124", to: DMITRY.ext });
        const call = page.locator(`[data-testid="call-${id}"]`);
        await callState(page, id, "ringing");
        await call.locator('[data-action="answer"]').click();
        await callState(page, id, "established");
        page.once("dialog", (d) => d.accept("3099"));
        await call.locator('[data-action="transfer"]').click();
        await callState(page, id, "cleared");
        assert.match(await call.innerText(), /Transferred to 3099/);
        assert.ok(h.sim.calls().some((c) => c.callee === "3099" && c.calling === "+14155550124"));
      });

      await t.step("dial box places a call", async () => {
        await page.fill("#dial-input", "3044");
        await page.click("#dial-button");
        const call = page.locator('#calls > li[data-remote="3044"]').first();
        await call.waitFor();
        const id = Number(await call.getAttribute("data-call-id"));
        await callState(page, id, "delivered");
        assert.match(await call.innerText(), /Peter Hyde/);
        assert.equal(await page.inputValue("#dial-input"), "");
        await call.locator('[data-action="hangup"]').click();
        await callState(page, id, "cleared");
      });

      await t.step("phone-sized layout", async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        const id = h.sim.incomingCall({ from: "3044", to: DMITRY.ext });
        await callState(page, id, "ringing");
        // One column: the contacts card sits below the calls card.
        const calls = await page.locator(".calls-card").boundingBox();
        const contacts = await page.locator(".contacts-card").boundingBox();
        assert.ok(calls && contacts);
        assert.ok(contacts.y >= calls.y + calls.height, "contacts below calls");
        assert.ok(calls.width <= 390 && contacts.width <= 390);
        const overflow = await page.evaluate(
          "document.documentElement.scrollWidth > document.documentElement.clientWidth",
        );
        assert.equal(overflow, false, "no horizontal scrolling");
        await shot(page, "07-mobile");
        h.sim.hangup(id, "3044");
        await callState(page, id, "cleared");
        await page.setViewportSize({ width: 1100, height: 760 });
      });

      await t.step("an expired session shows the login form with a notice", async () => {
        await page.evaluate(() => sessionStorage.setItem("mxflex.expires", String(Date.now() - 1)));
        await page.reload();
        await page.locator("#login-notice").waitFor({ state: "visible" });
        assert.match(await page.locator("#login-notice").innerText(), /expired.*log in again/i);
        assert.equal(await page.locator("#app-view").isVisible(), false);
        assert.equal(await page.evaluate(() => sessionStorage.getItem("mxflex.token")), null);
        await login(page, DMITRY.login, DMITRY.password);
        await page.locator('#conn-status[data-state="live"]').waitFor();
        assert.equal(await page.locator("#login-notice").isVisible(), false);
      });

      await t.step("server restart: the stream reconnects, gets 401, asks to log in", async () => {
        const oldToken = await page.evaluate(() => sessionStorage.getItem("mxflex.token"));
        assert.ok(oldToken);
        firstClosed = true;
        await h.close({ keepSim: true });
        // The page notices the stream is gone.
        await page.locator('#conn-status:is([data-state="reconnecting"])').waitFor();
        await shot(page, "08-reconnecting");
        restarted = await startHarness({ simulator: h.sim, port });
        // EventSource reconnects by itself, gets 401; the probe ends the session.
        await page.locator("#login-notice").waitFor({ state: "visible", timeout: 60_000 });
        assert.match(await page.locator("#login-notice").innerText(), /expired.*log in again/i);
        assert.equal(await page.evaluate(() => sessionStorage.getItem("mxflex.token")), null);
        await shot(page, "09-relogin");

        // Loading the page with the old token in storage also asks to log in again.
        await page.evaluate((tk) => {
          sessionStorage.setItem("mxflex.token", tk);
          sessionStorage.setItem("mxflex.expires", String(Date.now() + 3_600_000));
        }, oldToken);
        await page.reload();
        await page.locator("#login-notice").waitFor({ state: "visible" });
        assert.match(await page.locator("#login-notice").innerText(), /log in again/i);

        await login(page, DMITRY.login, DMITRY.password);
        await page.locator('[data-testid="contact-3099"]').waitFor();
        await page.locator('#conn-status[data-state="live"]').waitFor();
      });

      await t.step("log out", async () => {
        await page.click("#logout-button");
        await page.locator("#login-form").waitFor({ state: "visible" });
        assert.equal(await page.locator("#login-notice").isVisible(), false);
        assert.equal(await page.evaluate(() => sessionStorage.getItem("mxflex.token")), null);
      });

      assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
    } finally {
      await browser.close();
      await restarted?.close({ keepSim: true });
      if (!firstClosed) await h.close({ keepSim: true });
      await h.sim.close();
    }
  },
});

Deno.test({
  ...needs("chromium", "browser: the demo's voicemails play (Chromium decodes the WAV)"),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const h = await startHarness();
    seedDemoUser(h.sim, DMITRY.ext);
    const ids = h.sim.voicemails(DMITRY.ext).map((v) => v.mailId);
    const browser = await launch();
    try {
      const page = await browser.ctx.newPage();
      await page.goto(`${h.url}/`);
      const auth = `Basic ${btoa(`${DMITRY.login}:${DMITRY.password}`)}`;
      const list = await (await fetch(`${h.url}/mx/test/voicemail`, {
        headers: { authorization: auth },
      })).json();
      for (const id of ids) {
        const listed = list.voicemails.find((v: { id: string }) => v.id === id).duration;
        // Downloaded through the Proxy API by the page itself, then decoded by <audio>.
        const played = await page.evaluate(async ([id, auth]) => {
          const res = await fetch(`/mx/test/voicemail/${id}`, { headers: { authorization: auth } });
          // The page's own Audio (Deno's types have no DOM).
          const AudioElement = (globalThis as unknown as {
            Audio: new (src: string) => EventTarget & { duration: number };
          }).Audio;
          const audio = new AudioElement(URL.createObjectURL(await res.blob()));
          await new Promise((resolve, reject) => {
            audio.addEventListener("canplaythrough", resolve, { once: true });
            audio.addEventListener("error", () => reject(new Error(`cannot play ${id}`)));
          });
          return { duration: audio.duration, type: res.headers.get("content-type") };
        }, [id, auth]);
        assert.equal(played.type, "audio/wav");
        assert.ok(
          Math.abs(played.duration - listed) <= 0.5,
          `${id}: ${played.duration} vs ${listed}`,
        );
      }
    } finally {
      await browser.close();
      await h.close();
    }
  },
});
