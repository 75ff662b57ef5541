/**
 * CSTA codec micro-benchmarks (`deno task bench`).
 *
 * Decode: one iteration feeds a buffer of {@link FRAMES} DeliveredEvent frames (the exact
 * bytes the simulator writes: `lib/mxsim/events.ts` body inside the `<DeliveredEvent>` root,
 * invoke id 9999) to a fresh {@link FrameDecoder}, then parses, decodes and JSON-encodes
 * every frame. Events/s = {@link FRAMES} / (avg time per iteration).
 *
 * Encode: `makeCall` + `encodeFrame` (the per-command cost of `POST /api/call`).
 *
 * @module
 */
import { encodeFrame, FrameDecoder } from "../lib/csta/frame.ts";
import { parseXml } from "../lib/csta/xml.ts";
import { type CallEvent, decodeCallEvent, encodeEventJson } from "../lib/csta/events.ts";
import { makeCall } from "../lib/csta/commands/mod.ts";
import { deliveredXml, eventBuffer, FRAMES, TLS_CHUNK } from "./csta_fixtures.ts";

const BUF = eventBuffer(FRAMES);
const CHUNKS: Uint8Array[] = [];
for (let off = 0; off < BUF.length; off += TLS_CHUNK) {
  CHUNKS.push(BUF.subarray(off, Math.min(off + TLS_CHUNK, BUF.length)));
}

// Sanity check before measuring: every frame decodes to a DeliveredEvent.
{
  const frames = new FrameDecoder().push(BUF);
  if (frames.length !== FRAMES) throw new Error(`expected ${FRAMES} frames, got ${frames.length}`);
  const ev = decodeCallEvent(parseXml(frames[0].payload));
  if (ev?.name !== "DeliveredEvent") throw new Error("not a DeliveredEvent");
}

/** Sink that keeps results observable so the JIT cannot drop the work. */
let sink = 0;

function decodeAll(chunks: Uint8Array[], json: boolean): void {
  const dec = new FrameDecoder();
  for (const chunk of chunks) {
    for (const f of dec.push(chunk)) {
      const ev = decodeCallEvent(parseXml(f.payload)) as CallEvent;
      sink += json ? encodeEventJson(ev).length : ev.callId;
    }
  }
}

Deno.bench({
  name: `decode ${FRAMES} DeliveredEvent: frame + parseXml + decodeCallEvent + JSON`,
  group: "decode",
  baseline: true,
  fn() {
    decodeAll([BUF], true);
  },
});

Deno.bench({
  name: `decode ${FRAMES} DeliveredEvent: frame + parseXml + decodeCallEvent (no JSON)`,
  group: "decode",
  fn() {
    decodeAll([BUF], false);
  },
});

Deno.bench({
  name: `decode ${FRAMES} DeliveredEvent in 16 KiB chunks: frame + parse + decode + JSON`,
  group: "decode",
  fn() {
    decodeAll(CHUNKS, true);
  },
});

Deno.bench({
  name: `frame split only (${FRAMES} frames, UTF-8 decode of payloads)`,
  group: "decode",
  fn() {
    sink += new FrameDecoder().push(BUF).length;
  },
});

const ONE_PAYLOAD = deliveredXml(4242);
Deno.bench({
  name: "parseXml only (1 DeliveredEvent)",
  group: "parts",
  fn() {
    sink += parseXml(ONE_PAYLOAD).children.length;
  },
});

const ONE_EL = parseXml(ONE_PAYLOAD);
Deno.bench({
  name: "decodeCallEvent only (1 DeliveredEvent)",
  group: "parts",
  fn() {
    sink += decodeCallEvent(ONE_EL)!.callId;
  },
});

const ONE_EV = decodeCallEvent(ONE_EL)!;
Deno.bench({
  name: "encodeEventJson only (1 DeliveredEvent)",
  group: "parts",
  fn() {
    sink += encodeEventJson(ONE_EV).length;
  },
});

let invoke = 0;
Deno.bench({
  name: "encode MakeCall: commands/calls.ts makeCall + encodeFrame",
  group: "encode",
  fn() {
    invoke = invoke === 9998 ? 1 : invoke + 1;
    sink += encodeFrame(invoke, makeCall("3095", "79031744445")).length;
  },
});

Deno.bench({
  name: "encode MakeCall with ecma-323 namespace (mxproxy form)",
  group: "encode",
  fn() {
    invoke = invoke === 9998 ? 1 : invoke + 1;
    sink += encodeFrame(invoke, makeCall("3095", "79031744445", { namespace: true })).length;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
