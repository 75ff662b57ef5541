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

function frame(id: number, event: string, data: string): string {
  return `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`;
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
  const hub = new SseHub();
  try {
    const r = new TextReader(hub.subscribe("3095"));
    assert.equal(hub.subscriberCount("3095"), 1);
    assert.deepEqual(hub.topics(), ["3095"]);
    const a = hub.publish("3095", "OriginatedEvent", '{"callId":39}');
    const b = hub.publish("other", "X", "y"); // ids are per hub, across topics
    const c = hub.publish("3095", "ConnectionClearedEvent", '{"callId":39}');
    assert.deepEqual([a, b, c], [1, 2, 3]);
    assert.equal(hub.lastId, 3);
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
  const text = dec.decode(encodeEvent(5, "Ev\r\nid: 99", "a\nb\r\nc\rd\n"));
  assert.equal(text, "id: 5\nevent: Evid: 99\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \n\n");
  assert.equal(dec.decode(encodeEvent(6, "", "x")), "id: 6\ndata: x\n\n");
});

Deno.test("sse: one encoded frame is shared by all subscribers", async () => {
  const hub = new SseHub();
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
  const hub = new SseHub({ historySize: 10, retryMs: 1000 });
  try {
    for (let i = 1; i <= 5; i++) {
      hub.publish("t", "E", `t${i}`);
      hub.publish("u", "E", `u${i}`);
    }
    // t got ids 1,3,5,7,9; the client saw up to 5
    const r = new TextReader(hub.subscribe("t", { lastEventId: "5" }));
    hub.publish("t", "E", "live");
    const text = await r.until("live");
    assert.equal(
      text,
      "retry: 1000\n\n" + frame(7, "E", "t4") + frame(9, "E", "t5") + frame(11, "E", "live"),
    );
    await r.reader.cancel();

    // the newest id: nothing to replay
    const r2 = new TextReader(hub.subscribe("t", { lastEventId: "11" }));
    hub.publish("t", "E", "next");
    assert.equal(await r2.until("next"), "retry: 1000\n\n" + frame(12, "E", "next"));
    await r2.reader.cancel();
  } finally {
    hub.close();
  }
});

Deno.test("sse: Last-Event-ID older than the history, unknown, absent or garbage", async () => {
  const hub = new SseHub({ historySize: 3 });
  try {
    for (let i = 1; i <= 10; i++) hub.publish("t", "E", `e${i}`);
    const all = frame(8, "E", "e8") + frame(9, "E", "e9") + frame(10, "E", "e10");

    // older than the history: replay everything we have
    const r1 = new TextReader(hub.subscribe("t", { lastEventId: "2" }));
    assert.equal(await r1.until("e10"), "retry: 3000\n\n" + all);
    await r1.reader.cancel();

    // an id this hub never issued (e.g. from before a restart): replay everything
    const r2 = new TextReader(hub.subscribe("t", { lastEventId: "123456" }));
    assert.equal(await r2.until("e10"), "retry: 3000\n\n" + all);
    await r2.reader.cancel();

    // no id or a garbage id: live only
    for (const lastEventId of [undefined, null, "", "abc", "-1", "1e3"]) {
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
  const hub = new SseHub({ historyTtlMs: 1000, now: () => now });
  try {
    hub.publish("t", "E", "old");
    now = 500;
    hub.publish("t", "E", "newer");
    now = 1200; // "old" is past its TTL, "newer" is not
    const r = new TextReader(hub.subscribe("t", { lastEventId: "0" }));
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
  const hub = new SseHub({ heartbeatMs: 5 });
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
  const hub = new SseHub();
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
    const r4 = new TextReader(hub.subscribe("t", { lastEventId: "0" }));
    hub.closeTopic("t");
    assert.equal(await r4.toEnd(), "retry: 3000\n\n");
    // keepHistory keeps it
    hub.publish("keep", "E", "k");
    hub.closeTopic("keep", { keepHistory: true });
    assert.equal(c3.calls, 1);
    assert.equal(await r3.toEnd(), "retry: 3000\n\n" + frame(2, "E", "k"));
    const r5 = new TextReader(hub.subscribe("keep", { lastEventId: "0" }));
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
  const hub = new SseHub({ maxQueuedBytes: 1024 });
  try {
    const slow = closeCounter();
    const fast = closeCounter();
    const slowStream = hub.subscribe("t", { onClose: slow.onClose }); // never read
    const fastReader = new TextReader(hub.subscribe("t", { onClose: fast.onClose }));
    const payload = "x".repeat(100);
    let last = 0;
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
  const hub = new SseHub({ maxQueuedBytes: 10_000 });
  try {
    const c = closeCounter();
    const r = new TextReader(hub.subscribe("t", { onClose: c.onClose }));
    for (let i = 0; i < 5; i++) hub.publish("t", "E", "y".repeat(100)); // ~600 bytes queued
    assert.equal(c.calls, 0);
    await r.until("id: 5\n");
    await r.reader.cancel();
    assert.equal(c.calls, 1);
  } finally {
    hub.close();
  }
});

Deno.test("sse: abort releases the subscriber and onClose runs once", async () => {
  const hub = new SseHub();
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
  const hub = new SseHub({ heartbeatMs: 1 });
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
  assert.equal(hub.publish("a", "E", "x"), 1);
  assert.deepEqual(hub.topics(), []);
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
  const hub = new SseHub({ retryMs: 10 });
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
