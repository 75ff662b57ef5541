/**
 * Bounded fuzzing of the MX input path: FrameDecoder, parseXml, the event decoders, and a
 * whole CstaConnection fed garbage by a fake MX. Seeded (print the seed; rerun with
 * `FUZZ_SEED=<n> deno task test tests/fuzz_test.ts`), a couple of seconds in total.
 * `bench/fuzz_long.ts` runs the same fuzzers for minutes.
 *
 * The only exceptions allowed out of the codecs are FrameError and XmlError; decoders return
 * a value or undefined. A connection fed garbage must end (its `closed` resolves) and never
 * throw uncaught or hang.
 */
import assert from "node:assert/strict";
import { encodeFrame, type Frame, FrameDecoder } from "../lib/csta/frame.ts";
import { parseXml, type XmlElement } from "../lib/csta/xml.ts";
import { FrameError, XmlError } from "../lib/csta/errors.ts";
import {
  decodeAbEvent,
  decodeCallEvent,
  decodeLogout,
  decodeMailEvent,
  encodeEventJson,
  pushPayload,
} from "../lib/csta/events.ts";
import { CstaConnection } from "../lib/csta/connection.ts";

/** mulberry32: small, fast, seedable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from `FUZZ_SEED`, or a fresh one. */
export function fuzzSeed(): number {
  let env: string | undefined;
  try {
    env = Deno.env.get("FUZZ_SEED");
  } catch {
    env = undefined; // no --allow-env
  }
  return env && /^\d+$/.test(env) ? Number(env) : Math.floor(Math.random() * 2 ** 32);
}

/** Valid CSTA payloads the mutators start from. */
export const SAMPLES: readonly string[] = [
  `<DeliveredEvent><monitorCrossRefID>5</monitorCrossRefID><connection><callID>39</callID>` +
  `<deviceID>3095</deviceID><globalCallID>2808630435142227620</globalCallID></connection>` +
  `<alertingDevice><deviceIdentifier>79031744445</deviceIdentifier></alertingDevice>` +
  `<callingDevice><deviceIdentifier>3095</deviceIdentifier></callingDevice>` +
  `<calledDevice><deviceIdentifier>79031744445</deviceIdentifier></calledDevice>` +
  `<localConnectionInfo>alerting</localConnectionInfo><cause>normal</cause>` +
  `<callTypeFlags>170917889</callTypeFlags>` +
  `<cad name="__FIRST_CALL_ID__" type="string">63022-00-0000D-6A4</cad></DeliveredEvent>`,
  `<EstablishedEvent><monitorCrossRefID>5</monitorCrossRefID><establishedConnection>` +
  `<callID>39</callID><deviceID>3095</deviceID></establishedConnection>` +
  `<answeringDevice><deviceIdentifier>3044</deviceIdentifier></answeringDevice>` +
  `<answeringDisplayName>Jane &amp; Co</answeringDisplayName><cause>normal</cause>` +
  `</EstablishedEvent>`,
  `<ConnectionClearedEvent><monitorCrossRefID>5</monitorCrossRefID><droppedConnection>` +
  `<callID>39</callID><deviceID>3095</deviceID></droppedConnection><releasingDevice>` +
  `<deviceIdentifier>3095</deviceIdentifier></releasingDevice><cause>normal</cause>` +
  `</ConnectionClearedEvent>`,
  `<AbAddUserEvent><abentry jid="43884851147406145"><firstName>Dmitry</firstName>` +
  `<lastName>K</lastName><ext>3095</ext><email>d@example.com</email></abentry></AbAddUserEvent>`,
  `<AbDeleteUserEvent jid="43884851147406145"/>`,
  `<MailIncomingEvent><mailId>vm-1</mailId><from>3044</from><to>3095</to></MailIncomingEvent>`,
  `<Logout mode="forced"/>`,
  `<?xml version="1.0" encoding="UTF-8"?><loginResponce Code="0" sn="63022" apiversion="11" ` +
  `userId="43884851147406145" ext="3095"/>`,
  `<presence from="43884851147406145" status="1"><![CDATA[note <b>x</b>]]></presence>`,
];

const TOKENS = [
  "<",
  ">",
  "/",
  "=",
  '"',
  "'",
  "&",
  "&amp;",
  "&#x0;",
  "&#1114112;",
  "&unknown;",
  "<![CDATA[",
  "]]>",
  "<!--",
  "-->",
  "<?",
  "?>",
  "<!DOCTYPE x [<!ENTITY a 'b'>]>",
  "\u0000",
  "\uFFFF",
  "\uD800",
  "ü",
  "😀",
  " ",
  "\n",
  "callID",
  "monitorCrossRefID",
  "deviceIdentifier",
  "9".repeat(40),
  "-1",
  "NaN",
  "__proto__",
  "constructor",
];

/** One random mutation of `s`. */
export function mutate(s: string, rnd: () => number): string {
  const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)];
  const i = Math.floor(rnd() * (s.length + 1));
  const j = Math.min(s.length, i + Math.floor(rnd() * 16));
  switch (Math.floor(rnd() * 7)) {
    case 0:
      return s.slice(0, i) + s.slice(j); // delete
    case 1:
      return s.slice(0, i) + pick(TOKENS) + s.slice(i); // insert a token
    case 2:
      return s.slice(0, i) + String.fromCharCode(Math.floor(rnd() * 0x3000)) + s.slice(i + 1);
    case 3:
      return s.slice(0, i) + s.slice(i, j).repeat(2 + Math.floor(rnd() * 50)) + s.slice(j); // dup
    case 4:
      return s.slice(0, i); // truncate
    case 5: {
      const k = Math.floor(rnd() * s.length);
      return s.slice(0, i) + s.slice(k, k + 20) + s.slice(i); // splice in another part
    }
    default:
      return s.replace(/>[^<]*</, () => `>${pick(TOKENS)}<`); // replace a text node
  }
}

function randomString(rnd: () => number, max: number): string {
  let s = "";
  const n = Math.floor(rnd() * max);
  for (let i = 0; i < n; i++) {
    s += rnd() < 0.5
      ? TOKENS[Math.floor(rnd() * TOKENS.length)]
      : String.fromCharCode(32 + Math.floor(rnd() * 95));
  }
  return s;
}

function randomBytes(rnd: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/** Everything the MX-input path does with one payload; throws only Xml/other bugs. */
function decodeAll(payload: string): void {
  let el: XmlElement;
  try {
    el = parseXml(payload);
  } catch (err) {
    if (err instanceof XmlError) return;
    throw err;
  }
  assert.equal(typeof el.name, "string");
  const ev = decodeCallEvent(el);
  if (ev) {
    JSON.parse(encodeEventJson(ev));
    JSON.stringify(pushPayload(ev, 0));
  }
  decodeAbEvent(el);
  decodeMailEvent(el);
  decodeLogout(el);
}

/** Counters of one fuzz run. */
export interface FuzzStats {
  cases: number;
  frameErrors: number;
  xmlErrors: number;
}

/**
 * Fuzzes parseXml and the event decoders with mutated samples and random strings for `ms`.
 * @throws the first unexpected error, with the case in its message
 */
export function fuzzXml(seed: number, ms: number): FuzzStats {
  const rnd = prng(seed);
  const st: FuzzStats = { cases: 0, frameErrors: 0, xmlErrors: 0 };
  const end = performance.now() + ms;
  while (performance.now() < end) {
    for (let k = 0; k < 100; k++) {
      let s = rnd() < 0.85 ? SAMPLES[Math.floor(rnd() * SAMPLES.length)] : randomString(rnd, 200);
      const rounds = 1 + Math.floor(rnd() * 6);
      for (let r = 0; r < rounds; r++) s = mutate(s, rnd);
      st.cases++;
      try {
        parseXml(s);
      } catch (err) {
        if (!(err instanceof XmlError)) {
          throw new Error(`parseXml threw ${String(err)} (seed ${seed}) on ${JSON.stringify(s)}`);
        }
        st.xmlErrors++;
      }
      try {
        decodeAll(s);
      } catch (err) {
        throw new Error(`decoders threw ${String(err)} (seed ${seed}) on ${JSON.stringify(s)}`);
      }
    }
  }
  return st;
}

/** Splits `bytes` into random chunks. */
function chunks(bytes: Uint8Array, rnd: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.length) {
    const n = 1 + Math.floor(rnd() * (rnd() < 0.2 ? 4 : 3000));
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

/**
 * Fuzzes FrameDecoder for `ms`: random bytes, mutated frame streams, and valid streams split
 * at random points (which must decode to exactly the frames encoded).
 * @throws the first unexpected error or mismatch
 */
export function fuzzFrames(seed: number, ms: number): FuzzStats {
  const rnd = prng(seed);
  const st: FuzzStats = { cases: 0, frameErrors: 0, xmlErrors: 0 };
  const end = performance.now() + ms;
  while (performance.now() < end) {
    for (let k = 0; k < 50; k++) {
      st.cases++;
      // A valid stream of a few frames.
      const sent: Frame[] = [];
      const parts: Uint8Array[] = [];
      for (let n = 1 + Math.floor(rnd() * 5); n > 0; n--) {
        const f = {
          invokeId: Math.floor(rnd() * 10000),
          payload: SAMPLES[Math.floor(rnd() * SAMPLES.length)],
        };
        sent.push(f);
        parts.push(encodeFrame(f.invokeId, f.payload));
      }
      const stream = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      let o = 0;
      for (const p of parts) {
        stream.set(p, o);
        o += p.length;
      }
      const mode = rnd();
      let input: Uint8Array = stream;
      if (mode < 0.3) {
        input = randomBytes(rnd, Math.floor(rnd() * 4000));
      } else if (mode < 0.7) {
        input = stream.slice();
        for (let m = 1 + Math.floor(rnd() * 4); m > 0; m--) {
          input[Math.floor(rnd() * input.length)] = Math.floor(rnd() * 256);
        }
      }
      const dec = new FrameDecoder();
      const got: Frame[] = [];
      try {
        for (const c of chunks(input, rnd)) got.push(...dec.push(c));
      } catch (err) {
        if (!(err instanceof FrameError)) {
          throw new Error(`FrameDecoder threw ${String(err)} (seed ${seed})`);
        }
        st.frameErrors++;
        continue;
      }
      for (const f of got) {
        assert.ok(Number.isInteger(f.invokeId) && f.invokeId >= 0 && f.invokeId <= 9999);
        try {
          decodeAll(f.payload);
        } catch (err) {
          throw new Error(`decoders threw ${String(err)} (seed ${seed})`);
        }
      }
      if (input === stream) {
        assert.deepEqual(got, sent, `valid stream decoded differently (seed ${seed})`);
        assert.equal(dec.buffered, 0);
      }
    }
  }
  return st;
}

const LOGIN_REPLY = '<loginResponce Code="0" sn="1" apiversion="11" userId="1" ext="100"/>';

/**
 * Runs `count` sessions against a fake MX (plain TCP on 127.0.0.1) that answers the login and
 * then sends random garbage (sometimes valid frames with junk XML first) and closes. Each
 * connection must end, its pending request must settle, nothing may throw uncaught.
 * @returns how each session ended
 */
export async function fuzzClient(seed: number, count: number): Promise<Map<string, number>> {
  const rnd = prng(seed);
  const endings = new Map<string, number>();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    for (let i = 0; i < count; i++) {
      const garbage: Uint8Array[] = [];
      for (let n = 1 + Math.floor(rnd() * 4); n > 0; n--) {
        const r = rnd();
        if (r < 0.4) garbage.push(randomBytes(rnd, 1 + Math.floor(rnd() * 3000)));
        else if (r < 0.8) {
          let s = SAMPLES[Math.floor(rnd() * SAMPLES.length)];
          for (let m = Math.floor(rnd() * 4); m > 0; m--) s = mutate(s, rnd);
          const bytes = new TextEncoder().encode(s);
          if (bytes.length < 60_000) garbage.push(encodeFrame(Math.floor(rnd() * 10000), bytes));
        } else {
          garbage.push(new Uint8Array([0, 0, 0, 8 + Math.floor(rnd() * 20), 0x30, 0x30, 0x30]));
        }
      }
      const server = (async () => {
        const c = await listener.accept();
        try {
          const buf = new Uint8Array(65536);
          if ((await c.read(buf)) === null) return;
          await c.write(encodeFrame(1, LOGIN_REPLY));
          // Wait for the client's request so the garbage does not share a read with the login.
          if ((await c.read(buf)) === null) return;
          for (const g of garbage) await c.write(g);
        } catch {
          // the client may close first
        } finally {
          try {
            c.close();
          } catch {
            // already closed
          }
        }
      })();
      const conn = await CstaConnection.connect({
        hostname: "127.0.0.1",
        port,
        tls: false,
        requestTimeoutMs: 3000,
        onBadMessage: () => {},
      });
      try {
        await conn.login({ type: "Server", userName: "s", password: "p" });
        conn.onMessage(() => {});
        const req = conn.request("<GetSomething/>").then(() => "reply", (e) => e.name);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const reason = await Promise.race([
          conn.closed,
          new Promise<never>((_, rej) => {
            timer = setTimeout(
              () => rej(new Error(`session hung (seed ${seed}, case ${i})`)),
              5000,
            );
          }),
        ]).finally(() => clearTimeout(timer));
        assert.ok(reason instanceof Error);
        const outcome = await req;
        assert.ok(["reply", "ConnectionClosedError", "TimeoutError"].includes(outcome), outcome);
        const key = reason.message.startsWith("protocol error") ? "protocol error" : reason.message;
        endings.set(key, (endings.get(key) ?? 0) + 1);
      } finally {
        conn.destroy();
        await server;
      }
    }
  } finally {
    listener.close();
  }
  return endings;
}

Deno.test("fuzz: FrameDecoder (random, mutated, split streams)", () => {
  const seed = fuzzSeed();
  console.log(`fuzz FrameDecoder seed=${seed}`);
  const st = fuzzFrames(seed, 1000);
  assert.ok(st.cases > 100, `only ${st.cases} cases`);
  assert.ok(st.frameErrors > 0, "the fuzzer never produced a bad frame");
});

Deno.test("fuzz: parseXml and the event decoders", () => {
  const seed = fuzzSeed();
  console.log(`fuzz parseXml seed=${seed}`);
  const st = fuzzXml(seed, 1000);
  assert.ok(st.cases > 100, `only ${st.cases} cases`);
  assert.ok(st.xmlErrors > 0 && st.xmlErrors < st.cases, "mutations should sometimes parse");
});

Deno.test("fuzz: a fake MX sending garbage after login ends the session cleanly", async () => {
  const seed = fuzzSeed();
  console.log(`fuzz client seed=${seed}`);
  const endings = await fuzzClient(seed, 25);
  let total = 0;
  for (const n of endings.values()) total += n;
  assert.equal(total, 25);
});

Deno.test("fuzz: the PRNG is deterministic per seed", () => {
  const a = prng(42), b = prng(42);
  for (let i = 0; i < 10; i++) assert.equal(a(), b());
  assert.deepEqual(fuzzXml(7, 0), { cases: 0, frameErrors: 0, xmlErrors: 0 });
});
