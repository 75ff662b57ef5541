/**
 * `/api/events` end to end (issue 12, "Streams"): HEAD answers headers without subscribing,
 * and concurrent streams are capped per token and per user (429 with Retry-After), with the
 * count released however a stream ends: the client leaving, logout, token expiry, a slow
 * consumer cut by the hub, shutdown.
 */
import assert from "node:assert/strict";
import { DMITRY, flexLogin, openEvents, type SseReader, withHarness } from "./helpers/harness.ts";
import { RawHttp } from "./helpers/raw_http.ts";
import { waitUntil } from "./helpers/wait.ts";
import { flexTopic } from "../lib/mx/flex_events.ts";

Deno.test("streams: 2,000 HEAD /api/events on one connection subscribe nothing", async () => {
  await withHarness(async (h) => {
    const token = await flexLogin(h.url);
    const c = await RawHttp.connect(Number(new URL(h.url).port));
    try {
      const head = { accept: "text/event-stream", authorization: `Bearer ${token}` };
      for (let sent = 0; sent < 2000; sent += 50) {
        // Pipelined in batches of 50: one connection, as the client did.
        let batch = "";
        for (let i = 0; i < 50; i++) {
          batch += "HEAD /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n";
          for (const [k, v] of Object.entries(head)) batch += `${k}: ${v}\r\n`;
          batch += "\r\n";
        }
        await c.write(batch);
        for (let i = 0; i < 50; i++) {
          const r = await c.readHead();
          assert.equal(r.status, 200);
          assert.equal(r.headers.get("content-type"), "text/event-stream");
        }
      }
      // A HEAD without a token is still refused.
      await c.sendHead("HEAD", "/api/events", { accept: "text/event-stream" });
      assert.equal((await c.readHead()).status, 401);
    } finally {
      c.close();
    }
    // Absence, proven after a later positive marker: one real stream makes the count 1.
    const sse = await openEvents(h.url, token);
    await waitUntil(() => h.server.hub.subscriberCount() > 0, { what: "the GET subscription" });
    assert.equal(h.server.hub.subscriberCount(), 1);
    assert.deepEqual(h.server.tokens.streamCounts(), { [DMITRY.ext]: 1 });
    await sse.cancel();
  });
});

/** Opens a stream and returns its status (and reader when 200). */
async function open(url: string, token: string): Promise<{ status: number; res: Response }> {
  const res = await fetch(`${url}/api/events`, {
    headers: { accept: "text/event-stream", authorization: `Bearer ${token}` },
  });
  return { status: res.status, res };
}

Deno.test("streams: capped per token and per user with 429 and Retry-After", async () => {
  const config = { rateLimits: { streams: { perToken: 2, perUser: 3 } } };
  await withHarness(async (h) => {
    const t1 = await flexLogin(h.url);
    const t2 = await flexLogin(h.url);
    const readers: SseReader[] = [await openEvents(h.url, t1), await openEvents(h.url, t1)];
    const over = await open(h.url, t1);
    assert.equal(over.status, 429);
    assert.equal(over.res.headers.get("retry-after"), "30");
    assert.deepEqual(await over.res.json(), { error: "too many event streams for this token" });
    // A second token of the same user gets one more: the user's cap is 3.
    readers.push(await openEvents(h.url, t2));
    const userOver = await open(h.url, t2);
    assert.equal(userOver.status, 429);
    assert.deepEqual(await userOver.res.json(), { error: "too many event streams for this user" });
    // Other users are not affected.
    const maxim = await flexLogin(h.url, "maxim", "secret");
    readers.push(await openEvents(h.url, maxim));
    assert.deepEqual(h.server.tokens.streamCounts(), { [DMITRY.ext]: 3, "3099": 1 });
    for (const r of readers) await r.cancel();
  }, { config });
});

Deno.test("streams: the count is released however a stream ends", async () => {
  const config = { rateLimits: { streams: { perToken: 1, perUser: 2 } } };
  await withHarness(async (h) => {
    const counts = () => h.server.tokens.streamCounts()[DMITRY.ext] ?? 0;
    const released = (n: number, how: string) =>
      waitUntil(() => counts() === n, { what: `stream count ${n} after ${how}` });

    // 1. The client leaves: its slot is free again.
    const t1 = await flexLogin(h.url);
    const a = await openEvents(h.url, t1);
    assert.equal((await open(h.url, t1)).status, 429);
    await a.cancel();
    await released(0, "the client left");
    const a2 = await openEvents(h.url, t1);

    // 2. Logout ends the token's streams and frees the user's slots.
    const t2 = await flexLogin(h.url);
    const b = await openEvents(h.url, t2);
    assert.equal(counts(), 2);
    assert.equal((await open(h.url, await flexLogin(h.url))).status, 429, "user cap reached");
    const out = await fetch(`${h.url}/api/logout`, { headers: { authorization: `Bearer ${t2}` } });
    assert.equal(out.status, 204);
    assert.ok(await b.ended());
    await released(1, "logout");

    // 3. Token expiry (the sweep) does the same.
    const t3 = await flexLogin(h.url);
    const c = await openEvents(h.url, t3);
    assert.equal(counts(), 2);
    h.server.tokens.sweep(Date.now() / 1000 + 7 * 86_400); // every token has expired by then
    assert.ok(await c.ended());
    assert.ok(await a2.ended());
    await released(0, "expiry");

    // 4. A client that stops reading is cut by the hub (slow consumer): released too.
    const t4 = await flexLogin(h.url);
    const slow = await fetch(`${h.url}/api/events`, {
      headers: { accept: "text/event-stream", authorization: `Bearer ${t4}` },
    });
    assert.equal(slow.status, 200);
    assert.equal(counts(), 1);
    const big = JSON.stringify({ pad: "x".repeat(60_000) });
    await waitUntil(() => {
      h.server.hub.publish(flexTopic(DMITRY.ext), "Padding", big);
      return counts() === 0;
    }, { what: "the slow consumer cut", timeoutMs: 20_000 });
    await slow.body?.cancel();

    // 5. Shutdown ends the rest.
    const t5 = await flexLogin(h.url);
    const e = await openEvents(h.url, t5);
    assert.equal(counts(), 1);
    await h.server.close();
    assert.ok(await e.ended());
    assert.deepEqual(h.server.tokens.streamCounts(), {});
  }, { config });
});
