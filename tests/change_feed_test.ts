import assert from "node:assert/strict";
import { ChangeFeed } from "../lib/store/change_feed.ts";
import { kvChild } from "./helpers/kv_child.ts";
import { waitUntil } from "./helpers/wait.ts";
import { withKvFile } from "./helpers/kv.ts";

/** A consumer that records what it was given. */
function recorder<T>() {
  const r = {
    applied: [] as T[],
    resyncs: 0,
    consumer: {
      apply: (c: T[]) => void r.applied.push(...c),
      resync: () => void r.resyncs++,
    },
  };
  return r;
}

Deno.test("kv fact (Deno 2.9.6): watch does not see another process's write to the same file", () =>
  withKvFile(async (path) => {
    const kv = await Deno.openKv(path);
    try {
      await kv.set(["k"], "v1");
      const reader = kv.watch([["k"], ["marker"]]).getReader();
      const first = await reader.read();
      assert.equal(first.value?.[0].value, "v1");
      await kvChild("set", path, "k", "v2");
      // The write is there for a read...
      assert.equal((await kv.get(["k"])).value, "v2");
      // ...but the next emission is the one our own write causes: none came for the child's.
      await kv.set(["marker"], "m");
      const next = await reader.read();
      assert.equal(next.value?.[1].value, "m", "watch emitted for the other process's write");
      await reader.cancel();
    } finally {
      kv.close();
    }
  }));

Deno.test("change feed: followers apply appended changes in order, each once", async () => {
  const kv = await Deno.openKv(":memory:");
  const writer = new ChangeFeed<number>(kv, "t");
  const feed = new ChangeFeed<number>(kv, "t", { pollMs: 0 });
  const r = recorder<number>();
  try {
    await writer.append(1);
    await feed.follow(r.consumer);
    // Start-up is a resync: the change before it is in the data, not replayed.
    assert.equal(r.resyncs, 1);
    assert.deepEqual(r.applied, []);
    const seqs = [await writer.append(2), await writer.append(3, (op) => op.set(["x"], 3))];
    assert.deepEqual(seqs, [2, 3]);
    assert.equal((await kv.get(["x"])).value, 3);
    // pollMs 0: only the watch carries the changes here (one process).
    await waitUntil(() => r.applied.length === 2, { what: "changes 2 and 3 via watch" });
    await feed.catchUp();
    assert.deepEqual(r.applied, [2, 3]);
    assert.equal(feed.applied, 3);
    assert.equal(r.resyncs, 1);
  } finally {
    feed.close();
    kv.close();
  }
});

Deno.test("change feed: concurrent appends from two handles get distinct, gap-free numbers", () =>
  withKvFile(async (path) => {
    const [a, b] = [await Deno.openKv(path), await Deno.openKv(path)];
    try {
      const fa = new ChangeFeed<string>(a, "t"), fb = new ChangeFeed<string>(b, "t");
      const seqs = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? fa : fb).append(`c${i}`)),
      );
      assert.deepEqual(
        [...seqs].sort((x, y) => x - y),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
    } finally {
      a.close();
      b.close();
    }
  }));

Deno.test("change feed: a missing log entry (expired) or a head that went back means a resync", async () => {
  const kv = await Deno.openKv(":memory:");
  const feed = new ChangeFeed<number>(kv, "t", { pollMs: 0, watch: false });
  const r = recorder<number>();
  try {
    await feed.follow(r.consumer);
    await feed.append(1);
    await feed.append(2);
    await kv.delete(["feed", "t", "log", 1]); // as if it had expired meanwhile
    await feed.catchUp();
    assert.deepEqual(r.applied, []);
    assert.equal(r.resyncs, 2);
    assert.equal(feed.applied, 2);
    await feed.append(3);
    await feed.catchUp();
    assert.deepEqual(r.applied, [3]);
    // The database was replaced by an older one: the head is behind what was applied.
    await kv.set(["feed", "t", "head"], 1);
    await feed.catchUp();
    assert.equal(r.resyncs, 3);
    assert.equal(feed.applied, 1);
  } finally {
    feed.close();
    kv.close();
  }
});

Deno.test("change feed: a failing consumer does not stop the feed; the next run resyncs", async () => {
  const kv = await Deno.openKv(":memory:");
  const errors: unknown[] = [];
  const feed = new ChangeFeed<number>(kv, "t", {
    pollMs: 0,
    watch: false,
    onError: (e) => errors.push(e),
  });
  let fail = true, resyncs = 0;
  try {
    await feed.follow({
      apply: () => {
        if (fail) throw new Error("consumer broke");
      },
      resync: () => void resyncs++,
    });
    await feed.append(1);
    await feed.catchUp();
    assert.equal(errors.length, 1);
    assert.equal(feed.applied, 0);
    fail = false;
    await feed.catchUp();
    assert.equal(resyncs, 2);
    assert.equal(feed.applied, 1);
  } finally {
    feed.close();
    kv.close();
  }
});

Deno.test("change feed: the timer carries another process's changes (what watch does not)", () =>
  withKvFile(async (path) => {
    const kv = await Deno.openKv(path);
    const feed = new ChangeFeed<{ n: number }>(kv, "t", { pollMs: 50 });
    const r = recorder<{ n: number }>();
    try {
      await feed.follow(r.consumer);
      await kvChild("append", path, "t", JSON.stringify({ n: 1 }));
      await kvChild("append", path, "t", JSON.stringify({ n: 2 }));
      await waitUntil(() => r.applied.length === 2, { what: "the child's two changes" });
      assert.deepEqual(r.applied, [{ n: 1 }, { n: 2 }]);
    } finally {
      feed.close();
      kv.close();
    }
  }));
