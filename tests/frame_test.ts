import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder, MAX_FRAME_SIZE } from "../lib/csta/frame.ts";
import { FrameError } from "../lib/csta/errors.ts";

const LOGIN =
  `<loginRequest type="User" platform="CRM" version="1.0"><userName>user_login</userName><pwd>W6ph5Mm5Pz8GgiULbPgzG37mj9g=&#xA;</pwd></loginRequest>`;

Deno.test("frame: header of the seed login example is 00 00 00 99 '0001'", () => {
  const f = encodeFrame(1, LOGIN);
  assert.equal(LOGIN.length, 145);
  assert.deepEqual([...f.subarray(0, 8)], [0, 0, 0, 0x99, 0x30, 0x30, 0x30, 0x31]);
});

Deno.test("frame: keep-alive is exactly 21 bytes with id 0000", () => {
  const f = encodeFrame(0, "<keepalive />");
  assert.equal(f.length, 21);
  assert.deepEqual([...f.subarray(0, 8)], [0, 0, 0, 0x15, 0x30, 0x30, 0x30, 0x30]);
});

Deno.test("frame: round trip of several frames in one chunk", () => {
  const a = encodeFrame(1, "<a/>"), b = encodeFrame(9999, "<b>é</b>"), c = encodeFrame(42, "");
  const buf = new Uint8Array(a.length + b.length + c.length);
  buf.set(a);
  buf.set(b, a.length);
  buf.set(c, a.length + b.length);
  const frames = new FrameDecoder().push(buf);
  assert.deepEqual(frames, [
    { invokeId: 1, payload: "<a/>" },
    { invokeId: 9999, payload: "<b>é</b>" },
    { invokeId: 42, payload: "" },
  ]);
});

Deno.test("frame: byte-at-a-time and random splits give the same frames", () => {
  const payloads = Array.from({ length: 50 }, (_, i) => `<m i="${i}">${"x".repeat(i * 37)}</m>`);
  const parts = payloads.map((p, i) => encodeFrame((i * 7) % 10000, p));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  // Deterministic pseudo-random splitting so a failure is reproducible.
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let round = 0; round < 30; round++) {
    const dec = new FrameDecoder();
    const got: string[] = [];
    let i = 0;
    while (i < all.length) {
      const n = round === 0 ? 1 : 1 + Math.floor(rnd() * 300);
      for (const f of dec.push(all.subarray(i, i + n))) got.push(f.payload);
      i += n;
    }
    assert.deepEqual(got, payloads);
    assert.equal(dec.buffered, 0);
  }
});

Deno.test("frame: oversize payload is refused on encode", () => {
  assert.throws(() => encodeFrame(1, "x".repeat(MAX_FRAME_SIZE)), FrameError);
  assert.throws(() => encodeFrame(10000, "<a/>"), FrameError);
});

Deno.test("frame: garbage headers are rejected with FrameError", () => {
  assert.throws(
    () => new FrameDecoder().push(new TextEncoder().encode("GET / HTTP/1.1\r\n")),
    FrameError,
  );
  const bad = encodeFrame(1, "<a/>");
  bad[5] = 0x41; // non-digit invoke id
  assert.throws(() => new FrameDecoder().push(bad), /non-numeric invoke id/);
  const short = encodeFrame(1, "<a/>");
  short[3] = 4; // length below the header size
  assert.throws(() => new FrameDecoder().push(short), /bad frame length/);
  const big = new Uint8Array([0, 1, 0, 0, 0x30, 0x30, 0x30, 0x31]); // 65 536 bytes
  assert.throws(() => new FrameDecoder().push(big), /bad frame length/);
});

Deno.test("frame: complete frames before garbage in one read are still delivered", () => {
  const good = encodeFrame(7, "<reply/>");
  const buf = new Uint8Array(good.length + 8);
  buf.set(good);
  buf.set(new TextEncoder().encode("GARBAGE!"), good.length);
  const dec = new FrameDecoder();
  const frames = dec.push(buf);
  assert.deepEqual(frames, [{ invokeId: 7, payload: "<reply/>" }]);
  assert.ok(dec.error instanceof FrameError, "the decoder reports the bad header");
  assert.throws(() => dec.push(new Uint8Array(1)), FrameError);
});
