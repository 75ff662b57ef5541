/**
 * The live-token table of one instance against the shared store: a token another instance
 * issued is found in KV before the feed brings it, a logout elsewhere reaches this instance
 * through the feed (ending its streams and monitor), and the store keeps tokens across
 * restarts until they expire.
 */
import assert from "node:assert/strict";
import { DMITRY, withHarness } from "./helpers/harness.ts";
import { LiveTokenStore } from "../lib/store/live_tokens.ts";
import { TokenMonitors } from "../lib/mx/token_monitors.ts";
import { silentLogger } from "../lib/log.ts";
import { waitUntil } from "./helpers/wait.ts";

const nowSec = () => Math.floor(Date.now() / 1000);

Deno.test("live tokens: another instance's login is found in KV; its logout arrives by the feed", () =>
  withHarness(async (h) => {
    const mx = h.server.sessions.get("test")!;
    // "Instance B": its own table on the same KV, following the feed by timer only.
    const store = new LiveTokenStore(h.kv, { feed: { pollMs: 0, watch: false } });
    const b = new TokenMonitors(mx, store, silentLogger);
    await b.start();
    try {
      // "Instance A" logs in.
      const a = new LiveTokenStore(h.kv);
      const exp = nowSec() + 600;
      await a.add({ jti: "t1", ext: DMITRY.ext, sub: DMITRY.jid, exp });
      assert.equal(b.has("t1"), false); // the feed has not run here
      assert.equal(await b.isLive("t1", exp), true); // one KV read
      assert.equal(b.has("t1"), true);
      assert.ok(mx.holds(DMITRY.ext, "jwt:t1"));
      const ctl = new AbortController();
      b.attachStream("t1", ctl);
      // A logs out: B learns it from the feed, not from a read per request.
      await a.remove("t1", exp);
      assert.equal(await b.isLive("t1", exp), true);
      await store.feed.catchUp();
      assert.equal(await b.isLive("t1", exp), false);
      assert.ok(ctl.signal.aborted, "the token's stream ended");
      await waitUntil(() => !mx.holds(DMITRY.ext, "jwt:t1"), { what: "monitor released" });
      // Unknown ids are refused, and a re-announced add of a dead id does not bring it back.
      assert.equal(await b.isLive("never", exp), false);
      await a.add({ jti: "t1", ext: DMITRY.ext, sub: DMITRY.jid, exp });
      await store.feed.catchUp();
      assert.equal(b.has("t1"), false);
    } finally {
      await b.close();
    }
  }));

Deno.test("live tokens: the store keeps tokens until they expire; a resync drops what is gone", () =>
  withHarness(async (h) => {
    const mx = h.server.sessions.get("test")!;
    const store = new LiveTokenStore(h.kv);
    await store.add({ jti: "live", ext: DMITRY.ext, sub: DMITRY.jid, exp: nowSec() + 600 });
    await store.add({ jti: "gone", ext: DMITRY.ext, sub: DMITRY.jid, exp: nowSec() - 1 });
    assert.deepEqual((await store.list()).map((t) => t.jti), ["live"]);
    assert.equal(await store.get("gone"), undefined);
    // A restarted instance takes the live tokens (and their monitors) from the store.
    const mine = new LiveTokenStore(h.kv, { feed: { pollMs: 0, watch: false } });
    const tm = new TokenMonitors(mx, mine, silentLogger);
    await tm.start();
    try {
      assert.equal(tm.has("live"), true);
      assert.equal(tm.has("gone"), false);
      assert.ok(mx.holds(DMITRY.ext, "jwt:live"));
      // Logged out while this instance missed the log entries (they expired): the head moved
      // past entries that are not there, so the next run resyncs from the store.
      await h.kv.delete(["flex-token", "live"]);
      await h.kv.set(["feed", "tokens", "head"], mine.feed.applied + 5);
      await mine.feed.catchUp();
      assert.equal(tm.has("live"), false);
      await waitUntil(() => !mx.holds(DMITRY.ext, "jwt:live"), { what: "monitor released" });
    } finally {
      await tm.close();
    }
  }));
