/**
 * Demo content for a simulated user: a call history and voicemails (with real, playable WAV
 * audio), so the web client's History and Voicemail views have something to show from the
 * first login. Used by `deno task demo`; tests add their own records.
 *
 * @example
 * ```ts
 * const sim = await MxSimulator.start();
 * seedDemoUser(sim, "3095");
 * sim.voicemails("3095").length; // 3
 * ```
 *
 * @module
 */
import type { MxSimulator } from "./server.ts";

/**
 * A mono 16-bit PCM WAV file: a tone of `hz` for `ms`, fading in and out.
 *
 * @example
 * ```ts
 * const wav = wavTone(1000, 440); // 1 s of A4 at 8 kHz: 16 044 bytes
 * ```
 */
export function wavTone(ms: number, hz = 440, rate = 8000): Uint8Array {
  const samples = Math.max(1, Math.round((rate * ms) / 1000));
  const out = new Uint8Array(44 + samples * 2);
  const v = new DataView(out.buffer);
  const ascii = (at: number, s: string) => {
    for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
  };
  ascii(0, "RIFF");
  v.setUint32(4, 36 + samples * 2, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  v.setUint32(16, 16, true); // fmt chunk size
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true); // bytes per second
  v.setUint16(32, 2, true); // block align
  v.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  v.setUint32(40, samples * 2, true);
  const fade = Math.min(samples / 2, rate / 20);
  for (let i = 0; i < samples; i++) {
    const env = Math.min(1, i / fade, (samples - 1 - i) / fade);
    v.setInt16(44 + i * 2, Math.round(Math.sin((2 * Math.PI * hz * i) / rate) * 8000 * env), true);
  }
  return out;
}

/**
 * Gives `ext` a call history of the last days (missed, answered, outgoing, internal and
 * external) and three voicemails (one read, one with a note).
 *
 * @param now clock in ms
 */
export function seedDemoUser(sim: MxSimulator, ext: string, now = Date.now()): void {
  const at = (minutesAgo: number) => Math.floor(now / 1000) - minutesAgo * 60;
  const history: Array<[number, "incoming" | "outgoing", string, boolean, number]> = [
    // minutes ago, direction, other party, missed, seconds talked
    [2 * 24 * 60, "outgoing", "3099", false, 312],
    [26 * 60, "incoming", "+14155550123", false, 95],
    [5 * 60, "incoming", "3044", true, 0],
    [3 * 60, "outgoing", "+442071838750", false, 41],
    [42, "incoming", "+79031744445", true, 0],
    [12, "incoming", "3099", false, 180],
  ];
  const users = new Map(sim.users().map((u) => [u.ext, u]));
  for (const [i, [ago, direction, other, missed, talked]] of history.entries()) {
    const u = users.get(other);
    const end = at(ago);
    sim.addCallLog(ext, {
      gcid: `${sim.sn}-00-0000D-${(0x100 + i).toString(16).toUpperCase()}`,
      direction,
      missed,
      callingPartyNo: direction === "incoming" ? other : ext,
      originalCalledPartyNo: direction === "incoming" ? ext : other,
      connectTimestamp: missed ? 0 : end - talked,
      disconnectTimestamp: end,
      firstName: u?.firstName ?? "",
      lastName: u?.lastName ?? "",
      extension: u?.ext ?? "",
      legType: missed ? 1 : 3,
    });
  }
  const mails: Array<[number, string, string, number, number, boolean, string]> = [
    // minutes ago, from, name, seconds, tone Hz, read, note
    [26 * 60 + 5, "+14155550123", "", 4, 523, true, "called back"],
    [5 * 60, "3044", "Peter Hyde", 3, 440, false, ""],
    [41, "+79031744445", "", 5, 392, false, ""],
  ];
  for (const [ago, from, fromName, secs, hz, read, note] of mails) {
    sim.addVoicemail(ext, {
      from,
      fromName,
      duration: secs,
      received: at(ago),
      read,
      note,
      content: wavTone(secs * 1000, hz),
    });
  }
}
