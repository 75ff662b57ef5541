/**
 * The web client's live views in a real browser (issue 13): playwright-core driving
 * Debian's chromium against MXFlex and the MX simulator over TLS. The tabs by keyboard;
 * presence changed on the MX reaching the contacts without polling, with the legend; the
 * user's own presence; an incoming call ringing (a WebAudio tone, the title flashing, a
 * desktop notification, an aria-live announcement) and declined; a consultation transfer
 * to a contact picked in the dialog; history entries calling back; a voicemail played in
 * the page, marked read and unread, annotated and deleted; a live call surviving a reload,
 * and a snapshot restoring it after a gap in the events; every view at phone size.
 *
 * The page's WebAudio oscillators, `Notification` and `document.title` are wrapped before
 * the client loads (`HOOKS`), so the test sees what the page really started, showed and set.
 * Screenshots go to test-output/screenshots/. Skipped when /usr/bin/chromium is absent.
 */
import assert from "node:assert/strict";
import type { Page, Request } from "playwright-core";
import { DMITRY, flexLogin, startHarness } from "./helpers/harness.ts";
import { toneWav } from "../lib/mxsim/mod.ts";
import { actions, callState, launch, login, shot, WAIT } from "./helpers/browser.ts";
import { needs } from "./helpers/tools.ts";

/** What the hooks recorded in the page. */
interface Recorded {
  tones: { hz: number; state: string }[];
  notes: { title: string; body: string; tag: string; closed: boolean }[];
  titles: string[];
}

/**
 * Runs in the page before its scripts: records every oscillator started, every
 * notification shown (and closed) and every title set.
 */
const HOOKS = `(() => {
  const rec = { tones: [], notes: [], titles: [] };
  globalThis.__mxflexTest = rec;
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    rec.tones.push({ hz: this.frequency.value, state: this.context.state });
    return start.apply(this, args);
  };
  const Real = globalThis.Notification;
  globalThis.Notification = class extends Real {
    constructor(title, options = {}) {
      super(title, options);
      const note = { title, body: options.body ?? "", tag: options.tag ?? "", closed: false };
      rec.notes.push(note);
      const close = this.close.bind(this);
      this.close = () => { note.closed = true; close(); };
    }
  };
  const title = Object.getOwnPropertyDescriptor(Document.prototype, "title");
  Object.defineProperty(Document.prototype, "title", {
    configurable: true,
    get() { return title.get.call(this); },
    set(v) { rec.titles.push(String(v)); title.set.call(this, v); },
  });
})();`;

const recorded = (page: Page): Promise<Recorded> =>
  page.evaluate("globalThis.__mxflexTest") as Promise<Recorded>;

/** Waits until `check` holds for what the hooks recorded. */
async function waitRecorded(page: Page, check: string): Promise<Recorded> {
  await page.waitForFunction(`((r) => ${check})(globalThis.__mxflexTest)`, undefined, {
    timeout: WAIT,
  });
  return await recorded(page);
}

const noOverflow = (page: Page) =>
  page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth");

Deno.test({
  ...needs(
    "chromium",
    "browser: live views — tabs, presence, ring, decline, consult transfer, history, voicemail, reload",
  ),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const h = await startHarness({ sim: { answerAfterMs: -1 } });
    const browser = await launch();
    const pageErrors: string[] = [];
    /** Every /api request the page made, as "METHOD /path". */
    const requests: string[] = [];
    try {
      await browser.ctx.addInitScript({ content: HOOKS });
      const page = await browser.ctx.newPage();
      page.setDefaultTimeout(WAIT);
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      page.on("request", (r: Request) => {
        const u = new URL(r.url());
        if (u.pathname.startsWith("/api/")) requests.push(`${r.method()} ${u.pathname}`);
      });
      const tab = (name: string) => page.locator(`[role=tab][data-tab="${name}"]`);

      await t.step("tabs: History, Voicemail, Contacts beside the calls; arrow keys", async () => {
        await page.goto(h.url);
        await login(page, DMITRY.login, DMITRY.password);
        await page.locator('#conn-status[data-state="live"]').waitFor();
        // Wide: the calls stay on screen, the Calls tab is not offered.
        assert.ok(await page.locator("#panel-calls").isVisible());
        assert.equal(await tab("calls").isVisible(), false);
        assert.equal(await tab("contacts").getAttribute("aria-selected"), "true");
        assert.ok(await page.locator("#panel-contacts").isVisible());
        await tab("contacts").focus();
        await page.keyboard.press("ArrowRight"); // wraps to History
        assert.equal(await tab("history").getAttribute("aria-selected"), "true");
        assert.equal(await page.evaluate("document.activeElement?.dataset.tab"), "history");
        await page.locator("#panel-history").waitFor({ state: "visible" });
        assert.equal(await page.locator("#panel-contacts").isVisible(), false);
        await page.keyboard.press("End");
        await page.locator("#panel-contacts").waitFor({ state: "visible" });
        assert.equal(await tab("history").getAttribute("tabindex"), "-1", "roving tabindex");
      });

      await t.step("presence: the legend, and a change on the MX arrives live", async () => {
        const legend = await page.locator("#presence-legend li").allInnerTexts();
        assert.deepEqual(legend, ["Available", "Away", "Busy, do not disturb", "Offline"]);
        const maxim = page.locator('[data-testid="contact-3099"]');
        assert.equal(await maxim.getAttribute("data-presence"), "Available");
        const contactReads = requests.filter((r) => r === "GET /api/contacts").length;
        h.sim.setPresence("3099", "Away", "back at 3");
        await page.locator('[data-testid="contact-3099"][data-presence="Away"]').waitFor();
        assert.equal(await maxim.locator(".dot.away").count(), 1);
        assert.match(await maxim.innerText(), /Away · back at 3/);
        assert.equal(await maxim.locator(".dot").getAttribute("aria-label"), "Away");
        assert.equal(
          requests.filter((r) => r === "GET /api/contacts").length,
          contactReads,
          "the stream said it: no re-read, no polling",
        );
        await shot(page, "20-presence");
      });

      await t.step("own presence: Away with a note, seen by everyone (me included)", async () => {
        await page.selectOption("#presence-select", "Away");
        await page.fill("#presence-note", "lunch");
        await page.click("#presence-button");
        const me = page.locator('[data-testid="contact-3095"][data-presence="Away"]');
        await me.waitFor();
        assert.match(await me.innerText(), /lunch/);
        assert.match(await page.locator("#presence-status").innerText(), /Status set: Away/);
        assert.equal(await page.inputValue("#presence-select"), "Away");
        assert.equal(h.sim.users().find((u) => u.ext === DMITRY.ext)?.presence, "Away");
        await page.selectOption("#presence-select", "Available");
        await page.fill("#presence-note", "");
        await page.click("#presence-button");
        await page.locator('[data-testid="contact-3095"][data-presence="Available"]').waitFor();
      });

      await t.step(
        "notifications: asked for from a click, only while not yet decided",
        async () => {
          const button = page.locator("#notify-button");
          await button.waitFor({ state: "visible" });
          assert.match((await button.getAttribute("aria-label")) ?? "", /notifications/i);
          await browser.ctx.grantPermissions(["notifications"], { origin: h.url });
          await button.click();
          await button.waitFor({ state: "hidden" });
          assert.equal(await page.evaluate("Notification.permission"), "granted");
        },
      );

      await t.step("an incoming call rings: tone, title, notification, announcement", async () => {
        const id = h.sim.incomingCall({ from: "3044", to: DMITRY.ext });
        await callState(page, id, "ringing");
        const rec = await waitRecorded(
          page,
          "r.tones.length >= 2 && r.notes.length >= 1 && r.titles.some((t) => /calling/.test(t))",
        );
        assert.deepEqual(rec.tones.slice(0, 2).map((x) => x.hz), [440, 480]);
        assert.equal(rec.tones[0].state, "running", "unlocked by the sign-in click");
        assert.deepEqual(rec.notes.map((n) => [n.title, n.body, n.tag, n.closed]), [
          ["Incoming call", "Peter Hyde (3044)", `mxflex-call-${id}`, false],
        ]);
        assert.ok(rec.titles.includes("☎ Peter Hyde (3044) calling"), rec.titles.join(" | "));
        // The title flashes: back to the page title and to the caller again.
        await waitRecorded(
          page,
          `r.titles.filter((t) => t === "MXFlex").length >= 1 &&
          r.titles.filter((t) => /calling/.test(t)).length >= 2`,
        );
        const announcer = page.locator("#announcer");
        assert.equal(await announcer.getAttribute("aria-live"), "assertive");
        assert.equal(await announcer.innerText(), "Incoming call from Peter Hyde (3044)");
        assert.equal(await page.locator("#calls-badge").getAttribute("data-ringing"), "true");
        await shot(page, "21-ringing");

        // Decline: the call ends on the MX; the ring, the flashing and the notification stop.
        const call = page.locator(`[data-testid="call-${id}"]`);
        assert.deepEqual(await actions(call), ["answer", "decline"]);
        await call.locator('[data-action="decline"]').click();
        await callState(page, id, "cleared");
        assert.equal(h.sim.calls().some((c) => c.id === id), false);
        const after = await waitRecorded(page, "r.notes[0].closed");
        assert.equal(after.titles.at(-1), "MXFlex");
        assert.equal(await page.title(), "MXFlex");
      });

      await t.step("consultation transfer: hold, talk to a contact, complete", async () => {
        const id = h.sim.incomingCall({ from: "+14155550125", to: DMITRY.ext });
        const call = page.locator(`[data-testid="call-${id}"]`);
        await callState(page, id, "ringing");
        await call.locator('[data-action="answer"]').click();
        await callState(page, id, "established");
        await call.locator('[data-action="transfer"]').click();
        await page.locator("#transfer-dialog").waitFor({ state: "visible" });
        await page.fill("#transfer-search", "maxim");
        await page.check("#transfer-consult");
        await page.click('#transfer-results button[data-to="3099"]');
        await page.locator("#transfer-dialog").waitFor({ state: "hidden" });
        await callState(page, id, "held");
        // The consultation call to Maxim; he answers.
        const consult = page.locator('#calls > li[data-remote="3099"][data-direction="out"]');
        await consult.waitFor();
        const consultId = Number(await consult.getAttribute("data-call-id"));
        const maxim = await flexLogin(h.url, "maxim", "secret");
        const answered = await fetch(`${h.url}/api/calls/${consultId}/answer`, {
          method: "POST",
          headers: { Authorization: `Bearer ${maxim}` },
        });
        assert.equal(answered.status, 204);
        await callState(page, consultId, "established");
        assert.deepEqual(await actions(call), ["retrieve", "complete", "transfer", "hangup"]);
        await shot(page, "22-consultation");
        await call.locator('[data-action="complete"]').click();
        await callState(page, id, "cleared");
        await callState(page, consultId, "cleared");
        assert.ok(h.sim.calls().some((c) => c.calling === "+14155550125" && c.callee === "3099"));
      });

      await t.step("history: the MX's call log, newest first; Call back dials", async () => {
        const now = Math.floor(Date.now() / 1000);
        const missed = h.sim.addCallLog(DMITRY.ext, {
          missed: true,
          direction: "incoming",
          connectTimestamp: 0,
          disconnectTimestamp: now - 60,
          callingPartyNo: "3044",
          originalCalledPartyNo: DMITRY.ext,
          firstName: "Peter",
          lastName: "Hyde",
          extension: "3044",
        });
        const out = h.sim.addCallLog(DMITRY.ext, {
          missed: false,
          direction: "outgoing",
          connectTimestamp: now - 7200,
          disconnectTimestamp: now - 7200 + 75,
          callingPartyNo: DMITRY.ext,
          originalCalledPartyNo: "+14155550199",
        });
        await tab("history").click();
        const first = page.locator(`[data-testid="history-${missed.recordId}"]`);
        await first.waitFor();
        assert.equal(await first.getAttribute("data-missed"), "true");
        assert.match(await first.innerText(), /Peter Hyde[\s\S]*Missed · 3044/);
        const older = page.locator(`[data-testid="history-${out.recordId}"]`);
        assert.match(await older.innerText(), /\+14155550199[\s\S]*Outgoing.*1:15/);
        // Newest first: the calls of this test (the simulator logs them), the missed call of a
        // minute ago, the outgoing call of two hours ago.
        const ids = await page.locator("#history > li").evaluateAll((els) =>
          els.map((el) => (el as unknown as { dataset: { testid: string } }).dataset.testid)
        );
        const at = (r: { recordId: number }) => ids.indexOf(`history-${r.recordId}`);
        assert.ok(at(missed) >= 0 && at(missed) < at(out), ids.join(" "));
        assert.equal(at(out), ids.length - 1, ids.join(" "));
        await shot(page, "23-history");
        // A presence change (positive marker: the hidden contacts list has it) does not
        // rebuild the history: its rows stay the same elements.
        const row = await first.elementHandle();
        h.sim.setPresence("3044", "Busy");
        await page.locator('[data-testid="contact-3044"][data-presence="Busy"]')
          .waitFor({ state: "attached" });
        assert.ok(await row!.evaluate((el) => el.isConnected), "the history was not re-rendered");
        await first.locator('[data-action="callback"]').click();
        const back = page.locator('#calls > li[data-remote="3044"][data-state="delivered"]');
        await back.waitFor();
        assert.match(await back.innerText(), /Peter Hyde/);
        const backId = Number(await back.getAttribute("data-call-id"));
        await back.locator('[data-action="hangup"]').click();
        await callState(page, backId, "cleared");
      });

      await t.step("voicemail: plays in the page, read, annotated, deleted", async () => {
        const id = h.sim.addVoicemail(DMITRY.ext, {
          from: "3044",
          fromName: "Peter Hyde",
          content: toneWav([{ ms: 600, hz: 440 }]),
          duration: 1,
        });
        await tab("voicemail").click();
        const vm = page.locator(`[data-testid="vm-${id}"]`);
        await vm.waitFor();
        assert.equal(await vm.getAttribute("data-read"), "false");
        assert.equal(await page.getByRole("tab", { name: "Voicemail 1 unread" }).count(), 1);
        assert.match(await vm.innerText(), /Peter Hyde[\s\S]*3044/);

        // Play: an <audio> streams it with the token in the query, and plays it through.
        await vm.locator('[data-action="play"]').click();
        const audio = vm.locator("audio");
        await audio.waitFor({ state: "visible" });
        assert.match(
          (await audio.getAttribute("src")) ?? "",
          /\/api\/voicemail\/.+\?access_token=/,
        );
        await page.waitForFunction(
          (el) => (el as { ended: boolean }).ended,
          await audio.elementHandle(),
          { timeout: WAIT },
        );
        assert.ok(await audio.evaluate((el) => (el as { duration: number }).duration > 0.5));
        // Playing marked it read, on the MX too.
        await page.locator(`[data-testid="vm-${id}"][data-read="true"]`).waitFor();
        assert.equal(await page.locator("#voicemail-badge").isVisible(), false);
        assert.equal(h.sim.voicemails(DMITRY.ext).find((v) => v.mailId === id)?.read, true);
        await shot(page, "24-voicemail-played");

        await vm.locator('[data-action="unread"]').click();
        await page.locator(`[data-testid="vm-${id}"][data-read="false"]`).waitFor();
        assert.equal(h.sim.voicemails(DMITRY.ext).find((v) => v.mailId === id)?.read, false);

        // A note, by keyboard: the field takes the focus, Enter saves.
        await vm.locator('[data-action="note"]').click();
        assert.equal(await page.evaluate("document.activeElement?.className"), "vm-note-input");
        await page.keyboard.type("call back tomorrow");
        await page.keyboard.press("Enter");
        await vm.locator(".vm-note", { hasText: "call back tomorrow" }).waitFor();
        assert.equal(
          h.sim.voicemails(DMITRY.ext).find((v) => v.mailId === id)?.note,
          "call back tomorrow",
        );

        // Delete asks first (the focus on "Keep"), then removes it.
        await vm.locator('[data-action="delete"]').click();
        assert.equal(
          await page.evaluate("document.activeElement?.dataset.action"),
          "delete-cancel",
        );
        await vm.locator('[data-action="delete-confirm"]').click();
        await vm.waitFor({ state: "detached" });
        assert.equal(h.sim.voicemails(DMITRY.ext).some((v) => v.mailId === id), false);
        await page.locator("#voicemail-empty").waitFor({ state: "visible" });
      });

      await t.step(
        "reload with a live call: the call is still there, and can be hung up",
        async () => {
          const id = h.sim.incomingCall({ from: "+14155550126", to: DMITRY.ext });
          await callState(page, id, "ringing");
          await page.locator(`[data-testid="call-${id}"] [data-action="answer"]`).click();
          await callState(page, id, "established");
          await page.reload();
          await page.locator('#conn-status[data-state="live"]').waitFor();
          const call = page.locator(`[data-testid="call-${id}"][data-state="established"]`);
          await call.waitFor();
          assert.match(await call.innerText(), /\+14155550126/);
          assert.match(await call.locator(".call-time").innerText(), /^\d+:\d\d$/);
          assert.deepEqual(await actions(call), ["hold", "transfer", "hangup"]);
          await shot(page, "25-reloaded");

          // After a gap the server cannot replay, the snapshot restores the call: reload
          // with an id of another server process, and no help from GET /api/calls.
          await page.route(
            "**/api/calls",
            (route) => route.fulfill({ contentType: "application/json", body: '{"calls":[]}' }),
          );
          await page.evaluate("sessionStorage.setItem('mxflex.lastEventId', 'elsewhere.7')");
          await page.reload();
          await call.waitFor();
          await page.unroute("**/api/calls");
          await call.locator('[data-action="hangup"]').click();
          await callState(page, id, "cleared");
          assert.equal(
            h.sim.calls().some((c) => c.id === id),
            false,
          );
        },
      );

      await t.step("phone size: one view at a time, each fits the screen", async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        h.sim.addVoicemail(DMITRY.ext, {
          from: "3099",
          fromName: "Maxim",
          content: toneWav([{ ms: 200, hz: 440 }]),
        });
        for (const name of ["calls", "history", "voicemail", "contacts"]) {
          await tab(name).click();
          await page.locator(`#panel-${name}`).waitFor({ state: "visible" });
          const shown = [];
          for (const p of ["calls", "history", "voicemail", "contacts"]) {
            if (await page.locator(`#panel-${p}`).isVisible()) shown.push(p);
          }
          assert.deepEqual(shown, [name]);
          assert.ok(await noOverflow(page), `no horizontal scrolling on ${name}`);
          assert.ok(
            await page.locator("#tabs").evaluate((el) => el.scrollWidth <= el.clientWidth),
            "every tab fits, with its badge",
          );
          await shot(page, `26-phone-${name}`);
        }
        // A call ringing while another view is on screen is answered from the strip: the calls
        // come on screen, the focus on the answered call's first button.
        await tab("history").click();
        const ringId = h.sim.incomingCall({ from: "3044", to: DMITRY.ext });
        const strip = page.locator(`[data-testid="incoming-${ringId}"]`);
        await strip.waitFor({ state: "visible" });
        await strip.locator('[data-action="answer"]').focus();
        await page.keyboard.press("Enter");
        await callState(page, ringId, "established");
        await page.locator("#panel-calls").waitFor({ state: "visible" });
        assert.equal(await page.locator("#incoming").isVisible(), false);
        await page.waitForFunction(
          `document.activeElement?.closest("[data-call-id]")?.dataset.callId === "${ringId}"`,
        );
        assert.equal(await page.evaluate("document.activeElement?.dataset.action"), "hold");
        h.sim.hangup(ringId, "3044");
        await callState(page, ringId, "cleared");
        await tab("contacts").click();

        // Calling from the contacts brings the calls on screen; the focus lands on their tab.
        await page.locator('[data-testid="contact-3099"] [data-action="call"]').focus();
        await page.keyboard.press("Enter");
        const call = page.locator('#calls > li[data-remote="3099"][data-state="delivered"]');
        await call.waitFor();
        assert.equal(await page.locator("#panel-contacts").isVisible(), false);
        assert.equal(await page.evaluate("document.activeElement?.dataset.tab"), "calls");
        const callId = Number(await call.getAttribute("data-call-id"));
        await call.locator('[data-action="hangup"]').click();
        await callState(page, callId, "cleared");
        await page.setViewportSize({ width: 1100, height: 760 });
      });

      assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
    } finally {
      await browser.close();
      await h.close();
    }
  },
});
