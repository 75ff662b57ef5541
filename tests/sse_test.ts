import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import { encodeEvent, SSE_HEADERS, SseHub, sseResponse } from "../lib/sse/hub.ts";

// ---------------------------------------------------------------- helpers

const dec = new TextDecoder();

// A guard against a hung test, not a performance threshold: if an expected chunk never
// arrives the test fails instead of hanging forever.
const GUARD_MS = 10_000;

function guard<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), GUARD_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Reads from a stream until the accumulated text contains `needle`. */
class TextReader {
  text = "";
  chunks: Uint8Array[] = [];
  reader: ReadableStreamDefaultReader<Uint8Array>;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader();
  }
  async until(needle: string): Promise<string> {
    await guard(
      (async () => {
        while (!this.text.includes(needle)) {
          const { value, done } = await this.reader.read();
          if (done) throw new Error(`stream ended before ${JSON.stringify(needle)}: ${this.text}`);
          this.chunks.push(value);
          this.text += dec.decode(value, { stream: true });
        }
      })(),
      JSON.stringify(needle),
    );
    return this.text;
  }
  /** Reads to the end; returns the full text. */
  async toEnd(): Promise<string> {
    await guard(
      (async () => {
        while (true) {
          const { value, done } = await this.reader.read();
          if (done) return;
          this.chunks.push(value);
          this.text += dec.decode(value, { stream: true });
        }
      })(),
      "end of stream",
    );
    return this.text;
  }
}

/** The epoch the unit tests pin, so ids are predictable. */
const E = "e0";

/** One frame; a numeric id is a sequence number of epoch {@link E}. */
function frame(id: number | string, event: string, data: string): string {
  return `id: ${typeof id === "number" ? `${E}.${id}` : id}\nevent: ${event}\ndata: ${data}\n\n`;
}

/** Counts onClose calls and lets a test await the first one. */
function closeCounter() {
  let calls = 0;
  let resolve!: () => void;
  const closed = new Promise<void>((r) => (resolve = r));
  return {
    onClose: () => {
      calls++;
      resolve();
    },
    get calls() {
      return calls;
    },
    closed: () => guard(closed, "onClose"),
  };
}

// ---------------------------------------------------------------- unit tests

Deno.test("sse: event format, retry on connect, monotonic ids", async () => {
  const hub = new SseHub({ epoch: E });
  try {
    const r = new TextReader(hub.subscribe("3095"));
    assert.equal(hub.subscriberCount("3095"), 1);
    assert.deepEqual(hub.topics(), ["3095"]);
    const a = hub.publish("3095", "OriginatedEvent", '{"callId":39}');
    const b = hub.publish("other", "X", "y"); // ids are per hub, across topics
    const c = hub.publish("3095", "ConnectionClearedEvent", '{"callId":39}');
    assert.deepEqual([a, b, c], ["e0.1", "e0.2", "e0.3"]);
    assert.equal(hub.lastId, "e0.3");
    assert.equal(hub.epoch, E);
    const text = await r.until("ConnectionCleared");
    assert.equal(
      text,
      "retry: 3000\n\n" + frame(1, "OriginatedEvent", '{"callId":39}') +
        frame(3, "ConnectionClearedEvent", '{"callId":39}'),
    );
    await r.reader.cancel();
  } finally {
    hub.close();
  }
});

Deno.test("sse: multi-line data becomes several data lines; event name cannot inject", () => {
  const text = dec.decode(encodeEvent("e0.5", "Ev\r\nid: 99", "a\nb\r\nc\rd\n"));
  assert.equal(text, "id: e0.5\nevent: Evid: 99\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \n\n");
  assert.equal(dec.decode(encodeEvent("e0.6", "", "x")), "id: e0.6\ndata: x\n\n");
});

Deno.test("sse: one encoded frame is shared by all subscribers", async () => {
  const hub = new SseHub({ epoch: E });
  try {
    const r1 = hub.subscribe("t").getReader();
    const r2 = hub.subscribe("t").getReader();
    await r1.read(); // retry
    await r2.read();
    hub.publish("t", "E", "d");
    const [c1, c2] = await Promise.all([r1.read(), r2.read()]);
    assert.equal(dec.decode(c1.value), frame(1, "E", "d"));
    assert.strictEqual(c1.value, c2.value);
    await r1.cancel();
    await r2.cancel();
  } finally {
    hub.close();
  }
});

Deno.test("sse: Last-Event-ID replay inside the history", async () => {
  const hub = new SseHub({ epoch: E, historySize: 10, retryMs: 1000 });
  try {
    for (let i = 1; i <= 5; i++) {
      hub.publish("t", "E", `t${i}`);
      hub.publish("u", "E", `u${i}`);
    }
    // t got ids 1,3,5,7,9; the client saw up to 5
    const r = new TextReader(hub.subscribe("t", { lastEventId: "e0.5" }));
    hub.publish("t", "E", "live");
    const text = await r.until("live");
    assert.equal(
      text,
      "retry: 1000\n\n" + frame(7, "E", "t4") + frame(9, "E", "t5") + frame(11, "E", "live"),
    );
    await r.reader.cancel();

    // the newest id: nothing to replay
    const r2 = new TextReader(hub.subscribe("t", { lastEventId: "e0.11" }));
    hub.publish("t", "E", "next");
    assert.equal(await r2.until("next"), "retry: 1000\n\n" + frame(12, "E", "next"));
    await r2.reader.cancel();
  } finally {
    hub.close();
  }
});

Deno.test("sse: Last-Event-ID older than the history, unknown, absent or garbage (no snapshot)", async () => {
  const hub = new SseHub({ epoch: E, historySize: 3 });
  try {
    for (let i = 1; i <= 10; i++) hub.publish("t", "E", `e${i}`);
    const all = frame(8, "E", "e8") + frame(9, "E", "e9") + frame(10, "E", "e10");

    // Without a snapshot callback, an id that cannot be resumed replays everything retained:
    // older than the history, another epoch (a restart), a future seq, the old bare numbers,
    // garbage.
    for (const lastEventId of ["e0.2", "zz.9", "e0.123456", "9", "abc", "-1", "1e3"]) {
      const r = new TextReader(hub.subscribe("t", { lastEventId }));
      assert.equal(await r.until("e10"), "retry: 3000\n\n" + all, lastEventId);
      await r.reader.cancel();
    }

    // no id: live only
    for (const lastEventId of [undefined, null, "", "  "]) {
      const r = new TextReader(hub.subscribe("t", { lastEventId }));
      const id = hub.publish("t", "E", `live${id_(lastEventId)}`);
      assert.equal(
        await r.until(`live${id_(lastEventId)}`),
        "retry: 3000\n\n" + frame(id, "E", `live${id_(lastEventId)}`),
      );
      await r.reader.cancel();
    }
  } finally {
    hub.close();
  }
  function id_(v: unknown): string {
    return JSON.stringify(v ?? "none");
  }
});

Deno.test("sse: history expires after historyTtlMs (fake clock) and empty topics are dropped", async () => {
  let now = 0;
  const hub = new SseHub({ epoch: E, historyTtlMs: 1000, now: () => now });
  try {
    hub.publish("t", "E", "old");
    now = 500;
    hub.publish("t", "E", "newer");
    now = 1200; // "old" is past its TTL, "newer" is not
    const r = new TextReader(hub.subscribe("t", { lastEventId: "e0.0" }));
    assert.equal(await r.until("newer"), "retry: 3000\n\n" + frame(2, "E", "newer"));
    await r.reader.cancel();
    hub.closeTopic("t");
    assert.deepEqual(hub.topics(), []);
    assert.equal(hub.subscriberCount(), 0);
  } finally {
    hub.close();
  }
});

Deno.test("sse: heartbeat pings every client from one timer", async () => {
  const hub = new SseHub({ epoch: E, heartbeatMs: 5 });
  try {
    const r1 = new TextReader(hub.subscribe("a"));
    const r2 = new TextReader(hub.subscribe("b"));
    assert.ok((await r1.until(": ping\n\n")).startsWith("retry: 3000\n\n: ping\n\n"));
    assert.ok((await r2.until(": ping\n\n")).startsWith("retry: 3000\n\n: ping\n\n"));
    await r1.reader.cancel();
    await r2.reader.cancel();
  } finally {
    hub.close();
  }
});

Deno.test("sse: closeTopic ends the topic's streams (with a final retry) and forgets history", async () => {
  const hub = new SseHub({ epoch: E });
  try {
    const c1 = closeCounter();
    const c2 = closeCounter();
    const c3 = closeCounter();
    const r1 = new TextReader(hub.subscribe("t", { onClose: c1.onClose }));
    const r2 = new TextReader(hub.subscribe("t", { onClose: c2.onClose }));
    const r3 = new TextReader(hub.subscribe("keep", { onClose: c3.onClose }));
    hub.publish("t", "E", "x");
    hub.closeTopic("t", { retryMs: 60_000 });
    assert.equal(c1.calls, 1);
    assert.equal(c2.calls, 1);
    assert.equal(hub.subscriberCount("t"), 0);
    assert.equal(hub.subscriberCount(), 1);
    assert.equal(await r1.toEnd(), "retry: 3000\n\n" + frame(1, "E", "x") + "retry: 60000\n\n");
    assert.equal(await r2.toEnd(), "retry: 3000\n\n" + frame(1, "E", "x") + "retry: 60000\n\n");
    // history is gone: a reconnect replays nothing
    const r4 = new TextReader(hub.subscribe("t", { lastEventId: "e0.0" }));
    hub.closeTopic("t");
    assert.equal(await r4.toEnd(), "retry: 3000\n\n");
    // keepHistory keeps it
    hub.publish("keep", "E", "k");
    hub.closeTopic("keep", { keepHistory: true });
    assert.equal(c3.calls, 1);
    assert.equal(await r3.toEnd(), "retry: 3000\n\n" + frame(2, "E", "k"));
    const r5 = new TextReader(hub.subscribe("keep", { lastEventId: "e0.0" }));
    await r5.until("data: k");
    await r5.reader.cancel();
    // closing twice or an unknown topic is harmless
    hub.closeTopic("t");
    hub.closeTopic("nope");
    assert.equal(c1.calls, 1);
  } finally {
    hub.close();
  }
});

Deno.test("sse: a slow consumer is disconnected when its queue exceeds maxQueuedBytes", async () => {
  const hub = new SseHub({ epoch: E, maxQueuedBytes: 1024 });
  try {
    const slow = closeCounter();
    const fast = closeCounter();
    const slowStream = hub.subscribe("t", { onClose: slow.onClose }); // never read
    const fastReader = new TextReader(hub.subscribe("t", { onClose: fast.onClose }));
    const payload = "x".repeat(100);
    let last = "";
    for (let i = 0; i < 20; i++) {
      last = hub.publish("t", "E", payload);
      await fastReader.until(`id: ${last}\n`); // the fast one keeps up
    }
    assert.equal(slow.calls, 1);
    assert.equal(fast.calls, 0);
    assert.equal(hub.subscriberCount("t"), 1);
    // the slow stream is errored, its queue discarded
    await assert.rejects(slowStream.getReader().read(), /slow consumer/);
    await fastReader.reader.cancel();
    assert.equal(fast.calls, 1);
  } finally {
    hub.close();
  }
});

Deno.test("sse: a client just under the queue bound stays connected", async () => {
  const hub = new SseHub({ epoch: E, maxQueuedBytes: 10_000 });
  try {
    const c = closeCounter();
    const r = new TextReader(hub.subscribe("t", { onClose: c.onClose }));
    for (let i = 0; i < 5; i++) hub.publish("t", "E", "y".repeat(100)); // ~600 bytes queued
    assert.equal(c.calls, 0);
    await r.until("id: e0.5\n");
    await r.reader.cancel();
    assert.equal(c.calls, 1);
  } finally {
    hub.close();
  }
});

Deno.test("sse: abort releases the subscriber and onClose runs once", async () => {
  const hub = new SseHub({ epoch: E });
  try {
    const ac = new AbortController();
    const c = closeCounter();
    const r = new TextReader(hub.subscribe("t", { signal: ac.signal, onClose: c.onClose }));
    assert.equal(hub.subscriberCount(), 1);
    ac.abort();
    assert.equal(c.calls, 1);
    assert.equal(hub.subscriberCount(), 0);
    assert.deepEqual(hub.topics(), []);
    assert.equal(await r.toEnd(), "retry: 3000\n\n");
    hub.closeTopic("t");
    hub.closeAll();
    assert.equal(c.calls, 1);

    // cancel by the reader, then abort: still once
    const ac2 = new AbortController();
    const c2 = closeCounter();
    const s2 = hub.subscribe("t", { signal: ac2.signal, onClose: c2.onClose });
    await s2.cancel();
    ac2.abort();
    assert.equal(c2.calls, 1);
    assert.equal(hub.subscriberCount(), 0);

    // already aborted: closed at once
    const c3 = closeCounter();
    const s3 = hub.subscribe("t", { signal: AbortSignal.abort(), onClose: c3.onClose });
    assert.equal(c3.calls, 1);
    assert.equal(await new TextReader(s3).toEnd(), "");
    assert.equal(hub.subscriberCount(), 0);

    // a throwing onClose does not break the hub
    hub.subscribe("t", {
      onClose: () => {
        throw new Error("boom");
      },
    });
    hub.closeTopic("t");
    assert.equal(hub.subscriberCount(), 0);
  } finally {
    hub.close();
  }
});

Deno.test("sse: closeAll sends retry and ends everything; close() ends later subscriptions", async () => {
  const hub = new SseHub({ epoch: E, heartbeatMs: 1 });
  const r1 = new TextReader(hub.subscribe("a"));
  const r2 = new TextReader(hub.subscribe("b"));
  hub.closeAll(5000);
  assert.equal(hub.subscriberCount(), 0);
  assert.ok((await r1.toEnd()).endsWith("retry: 5000\n\n"));
  assert.ok((await r2.toEnd()).endsWith("retry: 5000\n\n"));
  hub.close();
  const c = closeCounter();
  const s = hub.subscribe("a", { onClose: c.onClose });
  assert.equal(c.calls, 1);
  assert.equal(await new TextReader(s).toEnd(), "");
  assert.equal(hub.publish("a", "E", "x"), "e0.1");
  assert.deepEqual(hub.topics(), []);
});

Deno.test("sse: a broadcast topic reaches every attached stream with one shared frame", async () => {
  const hub = new SseHub({ epoch: E });
  try {
    hub.reserveTopic("all", { historySize: 8 });
    const a = hub.subscribe("a", { broadcast: "all" }).getReader();
    const b = hub.subscribe("b", { broadcast: "all" }).getReader();
    const other = new TextReader(hub.subscribe("c"));
    await a.read(); // retry
    await b.read();
    assert.equal(hub.subscriberCount("all"), 2);
    assert.equal(hub.subscriberCount(), 3); // a stream counts once
    const id = hub.publish("all", "presence", '{"ext":"3099"}');
    const [ca, cb] = await Promise.all([a.read(), b.read()]);
    assert.equal(dec.decode(ca.value), frame(id, "presence", '{"ext":"3099"}'));
    assert.strictEqual(ca.value, cb.value); // encoded once
    hub.publish("c", "E", "only c");
    assert.equal(
      await other.until("only c"),
      "retry: 3000\n\n" + frame(2, "E", "only c"),
      "a stream without the broadcast does not get it",
    );
    // an own event still goes to its stream only
    hub.publish("a", "E", "own");
    assert.equal(dec.decode((await a.read()).value), frame(3, "E", "own"));
    await a.cancel();
    await b.cancel();
    await other.reader.cancel();
    assert.equal(hub.subscriberCount("all"), 0);
    assert.deepEqual(hub.topics(), []);
    assert.throws(() => hub.subscribe("a", { broadcast: "nope" }), /not reserved/);
    await hub.subscribe("a").cancel();
    hub.publish("a", "E", "x"); // "a" exists now (with history)
    assert.throws(() => hub.reserveTopic("a", { historySize: 1 }), /already exists/);
    assert.equal(hub.reserveTopic("all", { historySize: 8 }), "all", "reserving again is fine");
    // After close(), a subscription to a broadcast topic ends at once instead of throwing.
    hub.close();
    const late = new TextReader(hub.subscribe("a", { broadcast: "all" }));
    assert.equal(await late.toEnd(), "");
  } finally {
    hub.close();
  }
});

Deno.test("sse: replay merges the own and the broadcast history in id order", async () => {
  const hub = new SseHub({ epoch: E });
  try {
    hub.reserveTopic("all", { historySize: 8 });
    hub.publish("a", "E", "a1"); // 1
    hub.publish("all", "P", "p2"); // 2
    hub.publish("b", "E", "b3"); // 3: not a's
    hub.publish("a", "E", "a4"); // 4
    hub.publish("all", "P", "p5"); // 5
    const r = new TextReader(hub.subscribe("a", { broadcast: "all", lastEventId: "e0.1" }));
    assert.equal(
      await r.until("p5"),
      "retry: 3000\n\n" + frame(2, "P", "p2") + frame(4, "E", "a4") + frame(5, "P", "p5"),
    );
    await r.reader.cancel();
  } finally {
    hub.close();
  }
});

Deno.test("sse: busy broadcasts never push a user's own events out of its history", async () => {
  const hub = new SseHub({ epoch: E, historySize: 4 });
  try {
    hub.reserveTopic("all", { historySize: 2 });
    hub.publish("a", "E", "own"); // 1
    for (let i = 0; i < 100; i++) hub.publish("all", "P", `p${i}`); // 2..101
    // The user's own history is intact, but presence changes were lost: a snapshot, since
    // the client cannot know which presence changed.
    const snap = new TextReader(
      hub.subscribe("a", {
        broadcast: "all",
        lastEventId: "e0.0",
        snapshot: () => '{"calls":[],"presence":[]}',
      }),
    );
    assert.equal(
      await snap.until("presence"),
      "retry: 3000\n\n" + frame(101, "snapshot", '{"calls":[],"presence":[]}'),
    );
    await snap.reader.cancel();
    // Caught up with the broadcasts (saw 99): the rest is replayed, no snapshot.
    const r = new TextReader(
      hub.subscribe("a", { broadcast: "all", lastEventId: "e0.99", snapshot: () => "{}" }),
    );
    assert.equal(
      await r.until("p99"),
      "retry: 3000\n\n" + frame(100, "P", "p98") + frame(101, "P", "p99"),
    );
    await r.reader.cancel();
  } finally {
    hub.close();
  }
});

Deno.test("sse: an id that cannot be resumed starts with the snapshot, then live events", async () => {
  const hub = new SseHub({ epoch: E, historySize: 3 });
  try {
    hub.reserveTopic("all", { historySize: 3 });
    for (let i = 1; i <= 10; i++) hub.publish("t", "E", `e${i}`);
    let calls = 0;
    const snapshot = () => {
      calls++;
      return '{"calls":[{"callId":1}],"presence":[]}';
    };
    const snap = frame(10, "snapshot", '{"calls":[{"callId":1}],"presence":[]}');
    // too old (e0.2 < retained 8..10), another epoch (a restart or another instance), a
    // future seq of this epoch, the pre-epoch numeric ids, garbage
    for (const lastEventId of ["e0.2", "k3f9.9", "e0.11", "9", "abc", "e0.-1", "e0.x"]) {
      const r = new TextReader(hub.subscribe("t", { broadcast: "all", lastEventId, snapshot }));
      assert.equal(await r.until("presence"), "retry: 3000\n\n" + snap, lastEventId);
      await r.reader.cancel();
    }
    assert.equal(calls, 7);
    // a known id replays and never asks for the snapshot
    const r = new TextReader(
      hub.subscribe("t", { broadcast: "all", lastEventId: "e0.9", snapshot }),
    );
    assert.equal(await r.until("e10"), "retry: 3000\n\n" + frame(10, "E", "e10"));
    await r.reader.cancel();
    // no id: live only, no snapshot
    const fresh = new TextReader(hub.subscribe("t", { broadcast: "all", snapshot }));
    hub.publish("t", "E", "live");
    assert.equal(await fresh.until("live"), "retry: 3000\n\n" + frame(11, "E", "live"));
    await fresh.reader.cancel();
    assert.equal(calls, 7);
    // The snapshot's id resumes: nothing was missed after it.
    const after = new TextReader(
      hub.subscribe("t", { broadcast: "all", lastEventId: "e0.11", snapshot }),
    );
    hub.publish("t", "E", "next");
    assert.equal(await after.until("next"), "retry: 3000\n\n" + frame(12, "E", "next"));
    await after.reader.cancel();
    assert.equal(calls, 7);
  } finally {
    hub.close();
  }
});

Deno.test("sse: a snapshot given as byte parts shares them between streams", async () => {
  const hub = new SseHub({ epoch: E });
  try {
    hub.publish("gone", "E", "x");
    hub.closeTopic("gone"); // history forgotten: ids up to 1 are lost for "gone"
    const shared = new TextEncoder().encode('[{"ext":"3099"}]');
    const parts = () => [new TextEncoder().encode('{"calls":[],"presence":'), shared, enc("}")];
    const r1 = new TextReader(hub.subscribe("gone", { lastEventId: "e0.0", snapshot: parts }));
    const r2 = new TextReader(hub.subscribe("gone", { lastEventId: "e0.0", snapshot: parts }));
    const want = "retry: 3000\n\n" +
      frame(1, "snapshot", '{"calls":[],"presence":[{"ext":"3099"}]}');
    assert.equal(await r1.until("}\n\n"), want);
    assert.equal(await r2.until("}\n\n"), want);
    assert.ok(r1.chunks.includes(shared) && r2.chunks.includes(shared));
    await r1.reader.cancel();
    await r2.reader.cancel();
  } finally {
    hub.close();
  }
  function enc(t: string) {
    return new TextEncoder().encode(t);
  }
});

Deno.test("sse: a topic dropped while empty still knows what it lost", async () => {
  let now = 0;
  const hub = new SseHub({ epoch: E, historyTtlMs: 1000, now: () => now, heartbeatMs: 0 });
  try {
    hub.publish("t", "E", "a"); // 1
    now = 2000; // "a" expired
    hub.publish("u", "E", "u"); // 2: prunes nothing of t, t still listed
    // A subscriber comes and goes: t is pruned (floor 1) and dropped as idle.
    await hub.subscribe("t", { lastEventId: "e0.1" }).cancel();
    assert.deepEqual(hub.topics(), []);
    const r = new TextReader(
      hub.subscribe("t", { lastEventId: "e0.0", snapshot: () => "lost" }),
    );
    assert.equal(await r.until("lost"), "retry: 3000\n\n" + frame(2, "snapshot", "lost"));
    await r.reader.cancel();
    // A topic that never had events has lost nothing.
    const n = new TextReader(
      hub.subscribe("never", { lastEventId: "e0.1", snapshot: () => "lost" }),
    );
    hub.publish("never", "E", "first");
    assert.equal(await n.until("first"), "retry: 3000\n\n" + frame(3, "E", "first"));
    await n.reader.cancel();
  } finally {
    hub.close();
  }
});

Deno.test("sse: the default history holds 3 minutes of a very busy user", async () => {
  // A receptionist taking a call every 4 s: 45 calls in 3 minutes, each ringing,
  // answered, held, retrieved and cleared (5 events), while 20 presence changes per
  // second go to everyone on the broadcast topic (3,600 in those 3 minutes).
  let now = 0;
  const hub = new SseHub({ epoch: E, now: () => now, heartbeatMs: 0 });
  try {
    hub.reserveTopic("all", { historySize: 4096 });
    const first = hub.publish("flex:3095", "DeliveredEvent", "{}");
    for (let s = 0; s < 180; s++) {
      now = s * 1000;
      for (let p = 0; p < 20; p++) hub.publish("all", "presence", "{}");
      if (s % 4 === 0) {
        for (const name of ["EstablishedEvent", "HeldEvent", "RetrievedEvent"]) {
          hub.publish("flex:3095", name, "{}");
        }
        hub.publish("flex:3095", "ConnectionClearedEvent", "{}");
        hub.publish("flex:3095", "DeliveredEvent", "{}");
      }
    }
    const r = new TextReader(
      hub.subscribe("flex:3095", {
        broadcast: "all",
        lastEventId: first,
        snapshot: () => "SNAPSHOT",
      }),
    );
    const last = hub.publish("flex:3095", "Live", "{}");
    const text = await r.until(`id: ${last}\n`);
    assert.ok(!text.includes("SNAPSHOT"), "replayed, not a snapshot");
    assert.equal(text.split("event: ConnectionClearedEvent").length - 1, 45);
    assert.equal(text.split("event: presence").length - 1, 3600);
    await r.reader.cancel();
  } finally {
    hub.close();
  }
});

Deno.test("sse: the heartbeat pings a stream once, also with a broadcast topic", async () => {
  const hub = new SseHub({ epoch: E, heartbeatMs: 5 });
  try {
    hub.reserveTopic("all");
    const r = new TextReader(hub.subscribe("a", { broadcast: "all" }));
    await r.until(": ping\n\n: ping\n\n");
    assert.ok(r.text.startsWith("retry: 3000\n\n: ping\n\n: ping\n\n"));
    // each tick's ping arrives in its own chunk, never two in one tick
    assert.ok(r.chunks.every((c) => dec.decode(c).split(": ping").length <= 2));
    await r.reader.cancel();
  } finally {
    hub.close();
  }
});

// ---------------------------------------------------------------- end to end

interface TestServer {
  url: string;
  hub: SseHub;
  lastEventIds: (string | null)[];
  closes: number;
  nextClose(): Promise<void>;
  stop(): Promise<void>;
}

function startServer(): TestServer {
  const hub = new SseHub({ epoch: E, retryMs: 10 });
  const lastEventIds: (string | null)[] = [];
  let waiters: (() => void)[] = [];
  const state = { closes: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const topic = new URL(req.url).searchParams.get("topic") ?? "t";
    const lastEventId = req.headers.get("last-event-id");
    lastEventIds.push(lastEventId);
    return sseResponse(
      hub.subscribe(topic, {
        lastEventId,
        // No request.signal: Deno.serve cancels the body stream when the client goes away,
        // which is enough (and avoids the legacy-abort warning of Deno 2.9).
        onClose: () => {
          state.closes++;
          const w = waiters;
          waiters = [];
          for (const f of w) f();
        },
      }),
    );
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/events`,
    hub,
    lastEventIds,
    get closes() {
      return state.closes;
    },
    nextClose: () => guard(new Promise<void>((r) => waiters.push(r)), "server-side close"),
    stop: async () => {
      hub.close();
      await server.shutdown();
    },
  };
}

Deno.test("sse e2e: Deno.serve + fetch", async () => {
  const srv = startServer();
  try {
    const res = await fetch(srv.url + "?topic=3095", {
      headers: { Accept: "text/event-stream" },
    });
    assert.equal(res.status, 200);
    for (const [k, v] of Object.entries(SSE_HEADERS)) assert.equal(res.headers.get(k), v);
    // no compression of the stream
    assert.equal(res.headers.get("content-encoding"), null);
    const r = new TextReader(res.body!);
    await r.until("retry: 10\n\n");
    assert.equal(srv.hub.subscriberCount("3095"), 1);
    const id = srv.hub.publish("3095", "DeliveredEvent", '{"callId":39,"deviceId":"3095"}');
    await r.until("callId");
    assert.equal(
      r.text,
      "retry: 10\n\n" + frame(id, "DeliveredEvent", '{"callId":39,"deviceId":"3095"}'),
    );
    // client disconnect releases the server-side subscriber
    const closed = srv.nextClose();
    await r.reader.cancel();
    await closed;
    assert.equal(srv.hub.subscriberCount(), 0);
  } finally {
    await srv.stop();
  }
});

Deno.test("sse e2e: eventsource client, reconnect with Last-Event-ID replays missed events", async () => {
  const srv = startServer();
  const es = new EventSource(srv.url + "?topic=3095");
  try {
    const received: { type: string; data: string; id: string }[] = [];
    let wake: (() => void) | undefined;
    const onEvent = (ev: MessageEvent) => {
      received.push({ type: ev.type, data: ev.data, id: ev.lastEventId });
      wake?.();
    };
    es.addEventListener("DeliveredEvent", onEvent);
    es.addEventListener("ConnectionClearedEvent", onEvent);
    const waitFor = (n: number) =>
      guard(
        new Promise<void>((resolve) => {
          const check = () => (received.length >= n ? resolve() : (wake = check));
          check();
        }),
        `${n} events`,
      );
    const opened = () =>
      guard(
        new Promise<void>((resolve) =>
          es.addEventListener("open", () => resolve(), { once: true })
        ),
        "open",
      );

    await opened();
    const id1 = srv.hub.publish("3095", "DeliveredEvent", "line1\nline2");
    await waitFor(1);
    assert.deepEqual(received[0], {
      type: "DeliveredEvent",
      data: "line1\nline2",
      id: String(id1),
    });

    // Server ends the stream (e.g. a restart of the route); the event published while the
    // client is away must arrive through Last-Event-ID replay after the reconnect.
    const reopened = opened();
    srv.hub.closeTopic("3095", { retryMs: 10, keepHistory: true });
    const id2 = srv.hub.publish("3095", "ConnectionClearedEvent", '{"callId":39}');
    await reopened;
    await waitFor(2);
    assert.deepEqual(received[1], {
      type: "ConnectionClearedEvent",
      data: '{"callId":39}',
      id: String(id2),
    });
    assert.deepEqual(srv.lastEventIds, [null, String(id1)]);
    assert.equal(received.length, 2); // no duplicates

    const closed = srv.nextClose();
    es.close();
    await closed;
    assert.equal(srv.hub.subscriberCount(), 0);
  } finally {
    es.close();
    await srv.stop();
  }
});
