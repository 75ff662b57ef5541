/**
 * Inputs shared by the CSTA codec benchmarks: the DeliveredEvent payload exactly as the
 * simulator writes it, and buffers of many such frames.
 *
 * @module
 */
import { encodeFrame, EVENT_INVOKE_ID } from "../lib/csta/frame.ts";
import { type CallView, delivered } from "../lib/mxsim/events.ts";

/** Frames per decode iteration. */
export const FRAMES = 1000;
/** TLS delivers at most one 16 KiB record per read; the chunked variants slice like that. */
export const TLS_CHUNK = 16 * 1024;

/** The DeliveredEvent payload of call `id` for monitor 5, as the simulator writes it. */
export function deliveredXml(id: number): string {
  const c: CallView = {
    id,
    globalCallId: (2808630435142227000n + BigInt(id)).toString(),
    firstCallId: `63022-00-0000D-${id.toString(16).toUpperCase()}`,
    calling: "79031744445",
    called: "3095",
    callee: "3095",
    callingName: "79031744445",
    calleeName: "Dmitry Ivanov",
  };
  return `<DeliveredEvent><monitorCrossRefID>5</monitorCrossRefID>${
    delivered(c, "3095")
  }</DeliveredEvent>`;
}

/** `count` event frames concatenated into one buffer (distinct call ids). */
export function eventBuffer(count: number): Uint8Array {
  const frames = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const f = encodeFrame(EVENT_INVOKE_ID, deliveredXml(1000 + i));
    frames.push(f);
    total += f.length;
  }
  const buf = new Uint8Array(total);
  let off = 0;
  for (const f of frames) {
    buf.set(f, off);
    off += f.length;
  }
  return buf;
}
