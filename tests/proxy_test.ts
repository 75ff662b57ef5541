/**
 * Proxy API end to end: HTTP Basic -> MXFlex -> per-request user sessions over TLS -> MX
 * simulator.
 */
import assert from "node:assert/strict";
import { basic, DMITRY, type Harness, withHarness } from "./helpers/harness.ts";
import { RawHttp } from "./helpers/raw_http.ts";
import { waitUntil } from "./helpers/wait.ts";

function get(h: Harness, path: string, auth = basic()): Promise<Response> {
  return fetch(`${h.url}/mx/test${path}`, { headers: { authorization: auth } });
}

function send(
  h: Harness,
  method: string,
  path: string,
  body?: unknown,
  auth = basic(),
): Promise<Response> {
  return fetch(`${h.url}/mx/test${path}`, {
    method,
    headers: { authorization: auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

Deno.test("proxy: unknown MX is 404, missing or wrong Basic auth is 401", async () => {
  await withHarness(async (h) => {
    let res = await fetch(`${h.url}/mx/nope/addressbook`, {
      headers: { authorization: basic() },
    });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: "not found" });
    res = await fetch(`${h.url}/mx/test/addressbook`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Basic realm="mxproxy"/);
    assert.deepEqual(await res.json(), { error: "unauthorized" });
    res = await get(h, "/addressbook", basic(DMITRY.login, "wrong"));
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /Basic/);
    assert.ok((await res.json()).error);
  });
});

Deno.test("proxy: the auth cache does not accept a different password", async () => {
  await withHarness(async (h) => {
    const ok = await get(h, "/addressbook");
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    // The seed's cache ignored the password for 30 minutes: we must not.
    const bad = await get(h, "/addressbook", basic(DMITRY.login, "not-the-password"));
    assert.equal(bad.status, 401);
    await bad.body?.cancel();
  });
});

Deno.test("proxy: Basic-auth brute force is rate limited", async () => {
  await withHarness(async (h) => {
    let status = 0;
    for (let i = 0; i < 25; i++) {
      const res = await get(h, "/addressbook", basic("3044", `guess${i}`));
      await res.body?.cancel();
      status = res.status;
    }
    assert.equal(status, 429);
  });
});

Deno.test("proxy: address book keyed by JID with the seed's fields", async () => {
  await withHarness(async (h) => {
    const res = await get(h, "/addressbook");
    assert.equal(res.status, 200);
    const { addressbook } = await res.json();
    assert.ok(Object.keys(addressbook).length > 50);
    assert.deepEqual(addressbook["43884850646482261"], {
      firstName: "Mike",
      lastName: "Flynn",
      ext: "3055",
      homePhone: "+1-202-555-0104",
      cellPhone: "+1-512-555-0136",
      email: "mikef@xyzrd.com",
    });
    assert.deepEqual(addressbook["43884850647480796"], {
      firstName: "Test",
      lastName: "Admin",
      ext: "3093",
    });
  });
});

Deno.test("proxy: call log with all blocks, timestamp forms, and bad timestamp", async () => {
  await withHarness(async (h) => {
    for (let i = 0; i < 45; i++) {
      h.sim.addCallLog(DMITRY.ext, {
        recordId: 100 + i,
        connectTimestamp: 1_501_100_000 + i * 100,
        disconnectTimestamp: 1_501_100_050 + i * 100,
        callingPartyNo: "3095",
        originalCalledPartyNo: "3099",
        direction: "outgoing",
      });
    }
    let res = await get(h, "/calllog");
    assert.equal(res.status, 200);
    const all = (await res.json()).callog;
    assert.equal(all.length, 45, "three blocks of 21, 21 and 3");
    assert.deepEqual(
      all.map((r: { recordId: number }) => r.recordId),
      Array.from({ length: 45 }, (_, i) => 100 + i),
    );
    assert.equal(all[0].direction, "outgoing");
    assert.equal(all[0].disconnect, 1_501_100_050);
    res = await get(h, "/calllog?timestamp=1501104000");
    const since = (await res.json()).callog;
    assert.ok(since.length > 0 && since.length < 45);
    res = await get(h, "/calllog?timestamp=2017-07-26T21:20:00Z");
    assert.deepEqual((await res.json()).callog.length, since.length);
    res = await get(h, "/calllog?timestamp=yesterday");
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "bad timestamp format" });
  });
});

Deno.test("proxy: empty call log is an empty list, not an error", async () => {
  await withHarness(async (h) => {
    const res = await get(h, "/calllog", basic("maxim", "secret"));
    if (res.status === 401) {
      await res.body?.cancel();
      return; // the simulator has no such login; covered by DMITRY below
    }
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { callog: [] });
  });
  await withHarness(async (h) => {
    const res = await get(h, "/calllog?timestamp=4102444800");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { callog: [] });
  });
});

Deno.test("proxy: callback call sets remote mode and calls from the user's extension", async () => {
  await withHarness(async (h) => {
    let res = await send(h, "POST", "/call", { from: "79031744445", to: "3099" });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(Object.keys(body).sort(), ["callId", "called", "deviceId"]);
    assert.equal(body.deviceId, DMITRY.ext);
    assert.equal(body.called, "3099");
    const mode = h.sim.callModes.at(-1)!;
    assert.equal(mode.address, "79031744445");
    assert.equal(mode.ringDelay, "1");
    assert.equal(mode.vmDelay, "30");
    res = await send(h, "POST", "/call", { from: "1", to: "3099", ringDelay: 2, vmDelay: 28 });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    assert.equal(h.sim.callModes.at(-1)!.ringDelay, "2");
    assert.equal(h.sim.callModes.at(-1)!.vmDelay, "28");
    for (
      const bad of [
        { to: "3099" },
        { from: "1" },
        { from: "1", to: "2", ringDelay: -1 },
        { from: "1", to: "2", vmDelay: 999 },
        { from: { x: 1 }, to: "2" },
      ]
    ) {
      res = await send(h, "POST", "/call", bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.ok((await res.json()).error);
    }
    res = await fetch(`${h.url}/mx/test/call`, {
      method: "POST",
      headers: { authorization: basic(), "content-type": "application/json" },
      body: "{broken",
    });
    assert.equal(res.status, 400);
    await res.body?.cancel();
  });
});

Deno.test("proxy: voicemail list, note/read update, delete (idempotent)", async () => {
  await withHarness(async (h) => {
    const id = h.sim.addVoicemail(DMITRY.ext, {
      from: "3099",
      fromName: "Maxim Donchenko",
      content: new Uint8Array(100),
      received: 1502204638,
      duration: 3,
    });
    let res = await get(h, "/voicemail");
    assert.equal(res.status, 200);
    const { voicemails } = await res.json();
    const vm = voicemails.find((v: { id: string }) => v.id === id);
    assert.equal(vm.from, "3099");
    assert.equal(vm.fromName, "Maxim Donchenko");
    assert.equal(vm.received, 1502204638);
    assert.equal(vm.duration, 3);
    assert.equal(vm.read, undefined);
    res = await send(h, "PATCH", `/voicemail/${id}`, { note: "call back", readed: true });
    assert.equal(res.status, 204);
    const state = h.sim.voicemails(DMITRY.ext).find((v) => v.mailId === id)!;
    assert.equal(state.note, "call back");
    assert.equal(state.read, true);
    res = await send(h, "PATCH", `/voicemail/${id}`, { readed: false });
    assert.equal(res.status, 204);
    assert.equal(h.sim.voicemails(DMITRY.ext).find((v) => v.mailId === id)!.read, false);
    res = await send(h, "PATCH", `/voicemail/${id}`, {});
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "bad request" });
    res = await send(h, "DELETE", `/voicemail/${id}`);
    assert.equal(res.status, 204);
    assert.equal(h.sim.voicemails(DMITRY.ext).some((v) => v.mailId === id), false);
    res = await send(h, "DELETE", `/voicemail/${id}`);
    assert.equal(res.status, 204, "deleting again is not an error");
    res = await send(h, "DELETE", `/voicemail/..%2F..`);
    assert.equal(res.status, 400);
    await res.body?.cancel();
  });
});

Deno.test("proxy: voicemail download streams several MB byte-exact", async () => {
  await withHarness(async (h) => {
    const content = new Uint8Array(3 * 1024 * 1024 + 12345);
    for (let i = 0; i < content.length; i++) content[i] = (i * 31 + (i >> 9)) & 0xff;
    const id = h.sim.addVoicemail(DMITRY.ext, {
      from: "3099",
      content,
      documentName: "message.wav",
      fileFormat: "wav",
    });
    const res = await get(h, `/voicemail/${id}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "audio/wav");
    assert.equal(
      res.headers.get("content-disposition"),
      "attachment; filename=\"message.wav\"; filename*=UTF-8''message.wav",
    );
    const got = new Uint8Array(await res.arrayBuffer());
    assert.equal(got.length, content.length);
    assert.deepEqual(got, content);
    const res2 = await get(h, `/voicemail/999999`);
    assert.equal(res2.status, 404);
    assert.deepEqual(await res2.json(), { error: "voicemail not found" });
  });
});

Deno.test("proxy: a client leaving mid-download makes the server cancel on the MX", async () => {
  await withHarness(async (h) => {
    const id = h.sim.addVoicemail(DMITRY.ext, {
      from: "3099",
      content: new Uint8Array(8 * 1024 * 1024),
    });
    const mark = h.sim.mark();
    const res = await get(h, `/voicemail/${id}`);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    const cancel = await h.sim.waitFor("MailCancelReceive", undefined, 5000, mark);
    assert.match(cancel.xml, new RegExp(`<mailId>${id}</mailId>`));
    assert.ok(h.sim.cancelledDownloads.some((c) => c.mailId === id));
    // The user's MX session is closed too: only the server session remains.
    await waitUntil(() => h.sim.sessionCount() <= 1, { what: "the user session closed" });
    assert.equal(h.sim.sessionCount(), 1);
  });
});

Deno.test("proxy: a client that stops reading a voicemail download is cut after the idle limit and the MX transfer cancelled", async () => {
  // Deno.serve pulls the body only as the socket drains, so a client that stops reading stalls
  // the route's stream; the route's own idle timer (voicemailIdleMs) must end it. 32 MiB is
  // far more than the loopback socket buffers hold while nobody reads.
  const size = 32 * 1024 * 1024;
  await withHarness(async (h) => {
    const id = h.sim.addVoicemail(DMITRY.ext, { from: "3099", content: new Uint8Array(size) });
    const mark = h.sim.mark();
    const c = await RawHttp.connect(Number(new URL(h.url).port));
    try {
      await c.sendHead("GET", `/mx/test/voicemail/${id}`, { Authorization: basic() });
      const head = await c.readHead();
      assert.equal(head.status, 200);
      await c.readBody(1); // the download is under way; from now on nothing is read
      const cancel = await h.sim.waitFor("MailCancelReceive", undefined, 10_000, mark);
      assert.match(cancel.xml, new RegExp(`<mailId>${id}</mailId>`));
      // The response is cut, not completed: what is left in the buffers, then the end.
      const rest = await c.readBody();
      assert.equal(rest.ended, true);
      assert.ok(c.bodyBytes < size, `${c.bodyBytes} of ${size} bytes`);
      // The user's MX session is closed too: only the server session remains.
      for (let i = 0; i < 100 && h.sim.sessionCount() > 1; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(h.sim.sessionCount(), 1);
    } finally {
      c.close();
    }
  }, { voicemailIdleMs: 300 });
});

Deno.test("proxy: a non-ASCII voicemail file name is served safely", async () => {
  await withHarness(async (h) => {
    const id = h.sim.addVoicemail(DMITRY.ext, {
      from: "3099",
      content: new Uint8Array([1, 2, 3]),
      documentName: 'Сообщение "1".wav',
    });
    const res = await get(h, `/voicemail/${id}`);
    assert.equal(res.status, 200);
    const cd = res.headers.get("content-disposition")!;
    assert.match(cd, /^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/);
    assert.ok(cd.includes(encodeURIComponent("Сообщение")));
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), new Uint8Array([1, 2, 3]));
  });
});

Deno.test("proxy: token registration validates type, bundle and token", async () => {
  await withHarness(async (h) => {
    let res = await send(h, "POST", "/token/bogus/com.app", { token: "x".repeat(64) });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: "bad push type" });
    res = await send(h, "POST", "/token/apns/com.unknown", { token: "x".repeat(64) });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "unsupported apns bundle id" });
    res = await send(h, "POST", "/token/gfcm/unknown-app", { token: "x".repeat(64) });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "unsupported google bundle id" });
  });
});

Deno.test("proxy: oversized and unsupported bodies are 413 and 415", async () => {
  await withHarness(async (h) => {
    let res = await fetch(`${h.url}/mx/test/call`, {
      method: "POST",
      headers: { authorization: basic(), "content-type": "application/json" },
      body: JSON.stringify({ from: "1", to: "2", pad: "x".repeat(200_000) }),
    });
    assert.equal(res.status, 413);
    await res.body?.cancel();
    res = await fetch(`${h.url}/mx/test/call`, {
      method: "POST",
      headers: { authorization: basic(), "content-type": "text/csv" },
      body: "a,b",
    });
    assert.equal(res.status, 415);
    await res.body?.cancel();
  });
});

Deno.test("proxy: MX timeout is 504", async () => {
  await withHarness(async (h) => {
    h.sim.setSilent(["MakeCall"]);
    const res = await send(h, "POST", "/call", { from: "1", to: "3099" });
    assert.equal(res.status, 504);
    assert.match((await res.json()).error, /timeout/i);
  });
});
