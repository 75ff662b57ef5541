/**
 * The MX layer's operations (lib/mx) against the MX simulator over real TLS sockets, without
 * HTTP: the address-book guard, the Flex call operations on the server session, and user
 * sessions (`withUser`, `UserSession`) with their protocol prerequisites and lifetimes.
 */
import assert from "node:assert/strict";
import { MxSimulator, type SimMessage } from "../lib/mxsim/mod.ts";
import { MxSession } from "../lib/mx/mod.ts";
import type { MxConfig } from "../lib/config.ts";
import { silentLogger } from "../lib/log.ts";
import {
  LoginFailedError,
  RefusedError,
  TimeoutError,
  UnavailableError,
} from "../lib/csta/errors.ts";
import { CERT, DMITRY, KEY } from "./helpers/harness.ts";

const USER_ATTRS = { platform: "iPhone", version: "1.0" };

async function withMx(
  fn: (mx: MxSession, sim: MxSimulator) => Promise<void>,
  o: { start?: boolean; requestTimeoutMs?: number } = {},
): Promise<void> {
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY } });
  const cfg: MxConfig = {
    name: "test",
    hostname: "127.0.0.1",
    port: sim.port,
    login: "server",
    password: "password",
    tls: {},
  };
  const mx = new MxSession(cfg, {
    log: silentLogger,
    requestTimeoutMs: o.requestTimeoutMs ?? 2000,
    backoff: { initialMs: 50, maxMs: 300, jitter: 0.1 },
  });
  try {
    if (o.start !== false) {
      mx.start();
      await mx.ready(10_000);
    }
    await fn(mx, sim);
  } finally {
    await mx.stop();
    await sim.close();
  }
}

/** The simulator session number of the next user login of `login` after `mark`. */
async function userSessionOf(sim: MxSimulator, mark: number, login = DMITRY.login) {
  const m = await sim.waitFor(
    "loginRequest",
    (x) => x.xml.includes(`<userName>${login}</userName>`),
    5000,
    mark,
  );
  return m.session;
}

/** Messages of one simulator session since `mark`, names only. */
function namesOf(sim: MxSimulator, session: number, mark: number): string[] {
  return sim.received.filter((m: SimMessage) => m.session === session && m.seq >= mark)
    .map((m) => m.name);
}

/** Resolves when the session sent its `<logout/>` (UserSession.close). */
function loggedOut(sim: MxSimulator, session: number, mark: number): Promise<unknown> {
  return sim.waitFor("logout", (m) => m.session === session, 5000, mark);
}

Deno.test("mx: contacts() is 'address book not loaded yet' (UnavailableError) until loaded", async () => {
  await withMx(async (mx) => {
    assert.equal(mx.contactsVersion, 0);
    assert.throws(
      () => mx.contacts(),
      (e: unknown) =>
        e instanceof UnavailableError &&
        e.message === "MX unavailable: address book not loaded yet",
    );
    mx.start();
    await mx.ready(10_000);
    assert.ok(mx.contactsVersion > 0);
    assert.ok(mx.contacts().some((c) => c.ext === DMITRY.ext));
  }, { start: false });
});

Deno.test("mx: makeCall, callControl and transferCall run on the server session", async () => {
  await withMx(async (mx, sim) => {
    const call = await mx.makeCall(DMITRY.ext, "3099");
    assert.equal(call.deviceId, DMITRY.ext);
    assert.equal(call.called, "3099");
    assert.ok(sim.calls().some((c) => c.id === call.callId));
    await assert.rejects(mx.callControl("hold", 424242, DMITRY.ext), RefusedError);
    await mx.callControl("clear", call.callId, DMITRY.ext);
    await mx.stop();
    // Down: the operations fail as "MX unavailable", never with a raw connection error.
    await assert.rejects(mx.makeCall(DMITRY.ext, "3099"), UnavailableError);
    await assert.rejects(mx.callControl("answer", 1, DMITRY.ext), UnavailableError);
    await assert.rejects(mx.transferCall(1, DMITRY.ext, "3099"), UnavailableError);
  });
});

Deno.test("mx: withUser monitors the own extension once, before the first mail command", async () => {
  await withMx(async (mx, sim) => {
    const id = sim.addVoicemail(DMITRY.ext, { from: "3099", content: new Uint8Array(10) });
    const mark = sim.mark();
    const list = await mx.withUser(DMITRY.login, DMITRY.password, async (u) => {
      assert.equal(u.ext, DMITRY.ext);
      assert.equal(u.jid, DMITRY.jid);
      const list = await u.voicemails();
      await u.updateVoicemail(id, { read: true, note: "seen" });
      await u.deleteVoicemail(id);
      return list;
    }, { attrs: USER_ATTRS });
    assert.ok(list.some((v) => v.id === id));
    const session = await userSessionOf(sim, mark);
    await loggedOut(sim, session, mark);
    assert.deepEqual(namesOf(sim, session, mark), [
      "loginRequest",
      "MonitorStart",
      "MailGetListIncoming",
      "MailSetStatus",
      "UpdateVmNote",
      "MailDeleteIncoming",
      "logout",
    ]);
    assert.equal(sim.voicemails(DMITRY.ext).some((v) => v.mailId === id), false);
  });
});

Deno.test("mx: withUser closes the session after fn, also when fn fails", async () => {
  await withMx(async (mx, sim) => {
    sim.addCallLog(DMITRY.ext, { callingPartyNo: "3099" });
    let mark = sim.mark();
    const log = await mx.withUser(DMITRY.login, DMITRY.password, (u) => u.callLog(-1));
    assert.ok(log.some((r) => r.callingPartyNo === "3099"));
    await loggedOut(sim, await userSessionOf(sim, mark), mark);

    mark = sim.mark();
    const boom = new Error("boom");
    await assert.rejects(
      mx.withUser(DMITRY.login, DMITRY.password, () => Promise.reject(boom)),
      (e: unknown) => e === boom,
    );
    await loggedOut(sim, await userSessionOf(sim, mark), mark);

    // Wrong credentials: a LoginFailedError and fn never runs.
    let ran = false;
    await assert.rejects(
      mx.withUser(DMITRY.login, "wrong", () => {
        ran = true;
        return Promise.resolve();
      }),
      LoginFailedError,
    );
    assert.equal(ran, false);
    const info = await mx.verifyUser(DMITRY.login, DMITRY.password, USER_ATTRS);
    assert.equal(info.ext, DMITRY.ext);
  });
});

Deno.test("mx: a kept-open download's stream owns its session: closed at the end and on cancel", async () => {
  await withMx(async (mx, sim) => {
    const content = new Uint8Array(100_000).map((_, i) => i & 0xff);
    const small = sim.addVoicemail(DMITRY.ext, { from: "3099", content, fileFormat: "wav" });
    let mark = sim.mark();
    const dl = await mx.withUser(
      DMITRY.login,
      DMITRY.password,
      (u) => u.downloadVoicemail(small),
      { keepOpen: true },
    );
    assert.ok(dl);
    assert.equal(dl.fileFormat, "wav");
    // The session is still open after withUser returned: the stream reads every chunk.
    const got = new Uint8Array(await new Response(dl.stream).arrayBuffer());
    assert.deepEqual(got, content);
    await loggedOut(sim, await userSessionOf(sim, mark), mark);

    const big = sim.addVoicemail(DMITRY.ext, { from: "3099", content: new Uint8Array(2_000_000) });
    mark = sim.mark();
    const dl2 = await mx.withUser(
      DMITRY.login,
      DMITRY.password,
      (u) => u.downloadVoicemail(big),
      { keepOpen: true },
    );
    const reader = dl2!.stream.getReader();
    await reader.read();
    await reader.cancel();
    const session = await userSessionOf(sim, mark);
    await sim.waitFor("MailCancelReceive", (m) => m.session === session, 5000, mark);
    await loggedOut(sim, session, mark);
  });
});

Deno.test("mx: unknown voicemail: download is undefined, delete resolves; other failures throw", async () => {
  await withMx(async (mx, sim) => {
    await mx.withUser(DMITRY.login, DMITRY.password, async (u) => {
      assert.equal(await u.downloadVoicemail("999999"), undefined);
      await u.deleteVoicemail("999999");
    });
    // Only the MX's refusal is forgiven: a lost reply is still an error.
    sim.setSilent(["MailDeleteIncoming"]);
    await assert.rejects(
      mx.withUser(DMITRY.login, DMITRY.password, (u) => u.deleteVoicemail("999999")),
      TimeoutError,
    );
  }, { requestTimeoutMs: 300 });
});

Deno.test("mx: callback call rings the given phone first, from the user's extension", async () => {
  await withMx(async (mx, sim) => {
    const call = await mx.withUser(
      DMITRY.login,
      DMITRY.password,
      (u) => u.callback({ from: "79031744445", to: "3099", ringDelay: 2, vmDelay: 28 }),
    );
    assert.equal(call.deviceId, DMITRY.ext);
    const mode = sim.callModes.at(-1)!;
    assert.equal(mode.address, "79031744445");
    assert.equal(mode.ringDelay, "2");
    assert.equal(mode.vmDelay, "28");
  });
});
