import assert from "node:assert/strict";
import { TokenStore } from "../lib/store/tokens.ts";
import { PushDedupe } from "../lib/store/dedupe.ts";
import { withKv, withKvFile } from "./helpers/kv.ts";
import { KvOpenError, openKv } from "../lib/store/open_kv.ts";

const MX = "63022";
const ALICE = "43884851147406145";
const BOB = "43884850646482261";
const TOKEN_A = "7C179108B7BF759AA0A1A2A3A4A5A6A7A8A9B0B1B2B3B4B5B6B7B8B9C0C1C2C3";
const TOKEN_B = "fcm-token-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

Deno.test("TokenStore: add and list a user's tokens", () =>
  withKv(async (kv) => {
    let now = 1000;
    const store = new TokenStore(kv, { now: () => now });
    await store.add({ mx: MX, jid: ALICE, kind: "apns", app: "com.app~", token: TOKEN_A });
    await store.add({ mx: MX, jid: ALICE, kind: "fcm", app: "app-name", token: TOKEN_B });
    now = 2000;
    // Re-registering refreshes the time and does not duplicate.
    await store.add({ mx: MX, jid: ALICE, kind: "apns", app: "com.app~", token: TOKEN_A });
    const list = await store.listForUser(MX, ALICE);
    assert.deepEqual(
      list.map((t) => [t.kind, t.app, t.token, t.registeredAt]).sort(),
      [["apns", "com.app~", TOKEN_A, 2000], ["fcm", "app-name", TOKEN_B, 1000]],
    );
    assert.equal(list[0].mx, MX);
    assert.equal(list[0].jid, ALICE);
  }));

Deno.test("TokenStore: re-registering a token for another user moves it", () =>
  withKv(async (kv) => {
    const store = new TokenStore(kv);
    await store.add({ mx: MX, jid: ALICE, kind: "apns", app: "com.app", token: TOKEN_A });
    await store.add({ mx: MX, jid: BOB, kind: "apns", app: "com.app", token: TOKEN_A });
    assert.deepEqual(await store.listForUser(MX, ALICE), []);
    assert.deepEqual((await store.listForUser(MX, BOB)).map((t) => t.token), [TOKEN_A]);
    assert.deepEqual(await store.listUsers(MX), [BOB]);
    // Moving across MX systems too: a device belongs to one user.
    await store.add({ mx: "other", jid: ALICE, kind: "apns", app: "com.app", token: TOKEN_A });
    assert.deepEqual(await store.listUsers(MX), []);
    assert.deepEqual(await store.listUsers("other"), [ALICE]);
  }));

Deno.test("TokenStore: the same token string under two apps is two registrations", () =>
  withKv(async (kv) => {
    const store = new TokenStore(kv);
    await store.add({ mx: MX, jid: ALICE, kind: "apns", app: "com.app", token: TOKEN_A });
    await store.add({ mx: MX, jid: BOB, kind: "apns", app: "com.app~", token: TOKEN_A });
    assert.equal((await store.listForUser(MX, ALICE)).length, 1);
    assert.equal((await store.listForUser(MX, BOB)).length, 1);
  }));

Deno.test("TokenStore: listUsers lists each user with tokens once, per MX", () =>
  withKv(async (kv) => {
    const store = new TokenStore(kv);
    await store.add({ mx: MX, jid: ALICE, kind: "apns", app: "com.app", token: TOKEN_A });
    await store.add({ mx: MX, jid: ALICE, kind: "fcm", app: "app-name", token: TOKEN_B });
    await store.add({ mx: MX, jid: BOB, kind: "fcm", app: "app-name", token: TOKEN_B + "2" });
    await store.add({ mx: "630220", jid: "1", kind: "fcm", app: "app-name", token: TOKEN_B + "3" });
    assert.deepEqual((await store.listUsers(MX)).sort(), [ALICE, BOB].sort());
    assert.deepEqual(await store.listUsers("630220"), ["1"]);
    assert.deepEqual(await store.listUsers("nope"), []);
  }));

Deno.test("TokenStore: remove deletes both index entries; users without tokens vanish", () =>
  withKv(async (kv) => {
    const store = new TokenStore(kv);
    await store.add({ mx: MX, jid: ALICE, kind: "apns", app: "com.app", token: TOKEN_A });
    await store.remove("apns", "com.app", TOKEN_A);
    await store.remove("apns", "com.app", TOKEN_A); // idempotent
    assert.deepEqual(await store.listForUser(MX, ALICE), []);
    assert.deepEqual(await store.listUsers(MX), []);
    const left = [];
    for await (const e of kv.list({ prefix: ["push"] })) left.push(e.key);
    assert.deepEqual(left, []);
  }));

Deno.test("TokenStore: removeForUser only removes the caller's own token", () =>
  withKv(async (kv) => {
    const store = new TokenStore(kv);
    await store.add({ mx: MX, jid: ALICE, kind: "apns", app: "com.app", token: TOKEN_A });
    assert.equal(await store.removeForUser(MX, BOB, "apns", "com.app", TOKEN_A), false);
    assert.equal(await store.removeForUser(MX, ALICE, "apns", "com.app~", TOKEN_A), false);
    assert.equal((await store.listForUser(MX, ALICE)).length, 1);
    assert.equal(await store.removeForUser(MX, ALICE, "apns", "com.app", TOKEN_A), true);
    assert.deepEqual(await store.listForUser(MX, ALICE), []);
  }));

Deno.test("TokenStore: concurrent registrations of one token leave one consistent owner", () =>
  withKv(async (kv) => {
    const store = new TokenStore(kv);
    const users = Array.from({ length: 10 }, (_, i) => `jid${i}`);
    await Promise.all(
      users.map((jid) => store.add({ mx: MX, jid, kind: "fcm", app: "a", token: TOKEN_B })),
    );
    const owners = [];
    for (const jid of users) {
      if ((await store.listForUser(MX, jid)).length > 0) owners.push(jid);
    }
    assert.equal(owners.length, 1);
    const owner = await kv.get<{ jid: string }>(["push", "token", "fcm", "a", TOKEN_B]);
    assert.equal(owner.value?.jid, owners[0]);
  }));

Deno.test("TokenStore: add reports the previous owner of a moved token", () =>
  withKv(async (kv) => {
    const store = new TokenStore(kv);
    const reg = { mx: MX, kind: "apns" as const, app: "com.app", token: TOKEN_A };
    assert.equal(await store.add({ ...reg, jid: ALICE }), undefined);
    assert.equal(await store.add({ ...reg, jid: ALICE }), undefined, "same owner: no move");
    assert.deepEqual(await store.add({ ...reg, jid: BOB }), { mx: MX, jid: ALICE });
    assert.deepEqual(await store.add({ ...reg, mx: "other", jid: BOB }), { mx: MX, jid: BOB });
  }));

Deno.test("TokenStore: alert tokens and last-success times per device", () =>
  withKv(async (kv) => {
    let now = 1000;
    const store = new TokenStore(kv, { now: () => now });
    const reg = { mx: MX, jid: ALICE, kind: "apns" as const, app: "com.voip" };
    await store.add({ ...reg, token: TOKEN_A, alertToken: "alert-" + TOKEN_A });
    await store.add({ ...reg, token: TOKEN_B });
    let list = await store.listForUser(MX, ALICE);
    const a = () => list.find((t) => t.token === TOKEN_A)!;
    const b = () => list.find((t) => t.token === TOKEN_B)!;
    assert.equal(a().alertToken, "alert-" + TOKEN_A);
    assert.equal(b().alertToken, undefined);
    assert.equal(a().lastSuccessAt, undefined);
    now = 5000;
    await store.markSuccess("apns", "com.voip", TOKEN_A);
    list = await store.listForUser(MX, ALICE);
    assert.equal(a().lastSuccessAt, 5000);
    assert.equal(b().lastSuccessAt, undefined);
    // Dropping another alert token changes nothing; the right one keeps the device.
    await store.removeAlertToken("apns", "com.voip", TOKEN_A, "something-else-entirely");
    assert.equal(
      (await store.listForUser(MX, ALICE)).find((t) => t.token === TOKEN_A)?.alertToken,
      "alert-" + TOKEN_A,
    );
    await store.removeAlertToken("apns", "com.voip", TOKEN_A, "alert-" + TOKEN_A);
    list = await store.listForUser(MX, ALICE);
    assert.equal(a().alertToken, undefined);
    assert.equal(a().lastSuccessAt, 5000);
    // Removing a device removes its last-success time; a late success writes nothing.
    await store.remove("apns", "com.voip", TOKEN_A);
    await store.markSuccess("apns", "com.voip", TOKEN_A);
    await store.removeForUser(MX, ALICE, "apns", "com.voip", TOKEN_B);
    const left = [];
    for await (const e of kv.list({ prefix: ["push"] })) left.push(e.key);
    assert.deepEqual(left, []);
  }));

Deno.test("TokenStore: many tokens list with their last-success times (batched reads)", () =>
  withKv(async (kv) => {
    const store = new TokenStore(kv);
    for (let i = 0; i < 23; i++) {
      const token = `tok-${String(i).padStart(2, "0")}`.padEnd(30, "z");
      await store.add({ mx: MX, jid: ALICE, kind: "fcm", app: "app", token });
      if (i % 2) await store.markSuccess("fcm", "app", token, 100 + i);
    }
    const list = await store.listForUser(MX, ALICE);
    assert.equal(list.length, 23);
    for (const t of list) {
      const i = Number(t.token.slice(4, 6));
      assert.equal(t.lastSuccessAt, i % 2 ? 100 + i : undefined, t.token);
    }
  }));

Deno.test("PushDedupe: one claim wins, even when racing", () =>
  withKv(async (kv) => {
    const dedupe = new PushDedupe(kv);
    const results = await Promise.all(Array.from({ length: 20 }, () => dedupe.claim("k")));
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal(await dedupe.claim("k"), false);
    assert.equal(await dedupe.claim("other"), true);
  }));

Deno.test("PushDedupe: a claim can be taken again after its TTL", () =>
  withKv(async (kv) => {
    let now = 1_000_000;
    const dedupe = new PushDedupe(kv, { ttlMs: 60_000, now: () => now });
    assert.equal(await dedupe.claim("call"), true);
    now += 59_999;
    assert.equal(await dedupe.claim("call"), false);
    now += 2;
    assert.equal(await dedupe.claim("call"), true);
    assert.equal(await dedupe.claim("call"), false);
  }));

Deno.test("PushDedupe: two KV handles on one file share claims", async () => {
  const dir = await Deno.makeTempDir();
  const kv1 = await Deno.openKv(`${dir}/kv.db`);
  const kv2 = await Deno.openKv(`${dir}/kv.db`);
  try {
    const a = new PushDedupe(kv1);
    const b = new PushDedupe(kv2);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).claim("shared")),
    );
    assert.equal(results.filter(Boolean).length, 1);
  } finally {
    kv1.close();
    kv2.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openKv: 'database is locked' (instances creating a new KV file at once) is retried", () =>
  withKvFile(async (path) => {
    // Measured: four processes opening one new file at once, about one round in 60 loses with
    // this error; a supervisor treats a child's start-up error as fatal for all of them.
    let calls = 0;
    const kv = await openKv(path, (p) => {
      if (++calls < 3) return Promise.reject(new TypeError("database is locked"));
      return Deno.openKv(p);
    });
    try {
      await kv.set(["k"], 1);
      assert.equal(calls, 3);
    } finally {
      kv.close();
    }
    // Anything else still fails at once, explained.
    await assert.rejects(
      openKv(path, () => Promise.reject(new Error("file is not a database"))),
      (e: Error) => e instanceof KvOpenError && /is not a Deno KV database/.test(e.message),
    );
  }));
