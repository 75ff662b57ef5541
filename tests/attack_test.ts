/**
 * The HTTP API as a hostile or careless client uses it, end to end (HTTP -> server -> CSTA over
 * TLS -> simulator and back): each test is a bug found by attacking a running server, kept so
 * it stays fixed. Text the MX cannot carry, device tokens the docs allow, login names padded
 * to dodge the limits, paths spelled with encoded letters, a token whose MX password changed,
 * impossible dates.
 */
import assert from "node:assert/strict";
import { basic, DMITRY, flexLogin, type Harness, withHarness } from "./helpers/harness.ts";

function send(
  h: Harness,
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${h.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function answer(res: Response | Promise<Response>): Promise<[number, unknown]> {
  const r = await res;
  const text = await r.text();
  return [r.status, text ? JSON.parse(text) : null];
}

Deno.test("attack: text the MX cannot carry is 400 at once, never sent (no 504, no NUL in a frame)", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const id = h.sim.addVoicemail(DMITRY.ext, {
      from: "3099",
      note: "before",
      content: new Uint8Array(64),
    });
    const mark = h.sim.mark();
    // A lone surrogate reaches the MX as U+FFFD, so its confirmation never matched: a 504
    // after the MX timeout. NUL and other C0 controls are not XML at all.
    const cases: Array<[string, string, unknown, string]> = [
      ["PUT", "/api/presence", { status: "Away", note: "\ud800" }, "note"],
      ["PUT", "/api/presence", { status: "Away", note: "a\udc00b" }, "note"],
      ["PATCH", `/api/voicemail/${id}`, { note: "x\u0000y" }, "note"],
      ["PATCH", `/api/voicemail/${id}`, { note: "esc\u001b[2J" }, "note"],
      ["PATCH", `/api/voicemail/${id}`, { note: "\uffff" }, "note"],
      ["POST", "/api/call", { to: "3099\ud800" }, "to"],
    ];
    for (const [method, path, body, field] of cases) {
      const started = Date.now();
      const [status, json] = await answer(send(h, method, path, t, body));
      assert.deepEqual(
        [status, json],
        [400, { error: `${field} has characters that cannot be sent` }],
        `${method} ${path} ${JSON.stringify(body)}`,
      );
      assert.ok(Date.now() - started < 1500, "answered without waiting for the MX");
    }
    const proxy = await fetch(`${h.url}/mx/test/call`, {
      method: "POST",
      headers: { authorization: basic(), "content-type": "application/json" },
      body: JSON.stringify({ from: DMITRY.ext, to: "\u0001" }),
    });
    assert.deepEqual(await answer(proxy), [400, {
      error: "to has characters that cannot be sent",
    }]);

    // Tab, new line and astral characters are fine in a voicemail note.
    assert.equal(
      (await send(h, "PATCH", `/api/voicemail/${id}`, t, { note: "a\tb\n😀" })).status,
      204,
    );
    assert.equal(
      (await send(h, "PUT", "/api/presence", t, { status: "Busy", note: "😀" })).status,
      204,
    );
    // The later markers arrived; none of the bad ones was sent.
    const sent = h.sim.received.filter((m) => m.seq >= mark);
    assert.deepEqual(
      sent.filter((m) => m.name === "presence").map((m) => m.xml),
      ['<presence status="Busy"><presenceNote>😀</presenceNote></presence>'],
    );
    // deno-lint-ignore no-control-regex
    assert.ok(!sent.some((m) => /[\u0000-\u0008\u001b\ufffd\uffff]/.test(m.xml)));
    assert.ok(!sent.some((m) => m.name === "MakeCall"));
    assert.equal(h.sim.voicemails(DMITRY.ext).find((v) => v.mailId === id)?.note, "a\tb\n😀");
  });
});
