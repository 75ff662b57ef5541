/**
 * Reading the WAV files the simulator's voicemail serves (written by `lib/mxsim/wav.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";

/**
 * Reads a RIFF/WAVE header: format, channels, rate, bits and the audio's length in seconds;
 * asserts the layout (`RIFF`, `WAVE`, `fmt `, `data` covering the rest of the file).
 *
 * @example
 * ```ts
 * const { rate, seconds } = wavInfo(new Uint8Array(await res.arrayBuffer()));
 * ```
 */
export function wavInfo(
  b: Uint8Array,
): { pcm: boolean; ch: number; rate: number; bits: number; seconds: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ascii = (o: number, n: number) => String.fromCharCode(...b.subarray(o, o + n));
  assert.equal(ascii(0, 4), "RIFF");
  assert.equal(ascii(8, 4), "WAVE");
  assert.equal(ascii(12, 4), "fmt ");
  assert.equal(ascii(36, 4), "data");
  const rate = v.getUint32(24, true), bits = v.getUint16(34, true), ch = v.getUint16(22, true);
  const data = v.getUint32(40, true);
  assert.equal(data, b.length - 44, "data chunk covers the file");
  return {
    pcm: v.getUint16(20, true) === 1,
    ch,
    rate,
    bits,
    seconds: data / (rate * ch * bits / 8),
  };
}
