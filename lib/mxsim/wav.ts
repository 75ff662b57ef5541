/**
 * Voicemail audio of the simulated MX, generated in code (no recorded files): 16-bit PCM mono
 * WAV at telephone quality (8 kHz, what an MX records), which every browser plays. A message is
 * a list of {@link Tone}s: plain tones, two-tone beeps, and gliding "syllables" with a
 * voice-like envelope and harmonics, so the demo's messages sound like someone speaking rather
 * than a test signal.
 *
 * @module
 */

/** Samples per second (narrowband telephony, as an MX records). */
export const SAMPLE_RATE = 8000;

/** One stretch of sound. */
export interface Tone {
  /** Duration in ms. */
  ms: number;
  /** Start frequency in Hz; 0 = silence. */
  hz: number;
  /** End frequency in Hz (a glide); default `hz`. */
  toHz?: number;
  /** A second frequency mixed in (two-tone beeps); default none. */
  hz2?: number;
  /** Harmonics above the fundamental, for a voice-like timbre; default 0. */
  harmonics?: number;
  /** Peak amplitude 0–1; default 0.5. */
  gain?: number;
}

/**
 * A WAV file (RIFF, PCM 16-bit mono, {@link SAMPLE_RATE}) of `tones` played one after another.
 *
 * @example
 * ```ts
 * const wav = toneWav([{ ms: 400, hz: 440 }, { ms: 200, hz: 0 }, { ms: 400, hz: 660 }]);
 * new Response(wav, { headers: { "content-type": "audio/wav" } });
 * ```
 */
export function toneWav(tones: readonly Tone[]): Uint8Array {
  const counts = tones.map((t) => Math.round((t.ms / 1000) * SAMPLE_RATE));
  const samples = counts.reduce((a, b) => a + b, 0);
  const out = new Uint8Array(44 + samples * 2);
  const v = new DataView(out.buffer);
  const ascii = (off: number, s: string) => {
    for (let i = 0; i < s.length; i++) out[off + i] = s.charCodeAt(i);
  };
  ascii(0, "RIFF");
  v.setUint32(4, 36 + samples * 2, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  v.setUint32(16, 16, true); // fmt chunk size
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, SAMPLE_RATE, true);
  v.setUint32(28, SAMPLE_RATE * 2, true); // byte rate
  v.setUint16(32, 2, true); // block align
  v.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  v.setUint32(40, samples * 2, true);
  let off = 44;
  tones.forEach((t, i) => {
    const n = counts[i];
    let phase = 0, phase2 = 0;
    for (let s = 0; s < n; s++) {
      const x = n > 1 ? s / (n - 1) : 0;
      let y = 0;
      if (t.hz > 0) {
        const hz = t.hz + ((t.toHz ?? t.hz) - t.hz) * x;
        phase += (2 * Math.PI * hz) / SAMPLE_RATE;
        for (let h = 0; h <= (t.harmonics ?? 0); h++) y += Math.sin(phase * (h + 1)) / (h + 1);
        if (t.hz2) {
          phase2 += (2 * Math.PI * t.hz2) / SAMPLE_RATE;
          y = (y + Math.sin(phase2)) / 2;
        }
      }
      // Smooth attack and release (no clicks between tones).
      const env = Math.min(1, s / (SAMPLE_RATE * 0.01), (n - s) / (SAMPLE_RATE * 0.02));
      const sample = Math.max(-1, Math.min(1, y * (t.gain ?? 0.5) * env));
      v.setInt16(off, Math.round(sample * 32767), true);
      off += 2;
    }
  });
  return out;
}

/**
 * Gliding, voice-like syllables at a speaking pitch (about 110–220 Hz), with short pauses
 * between words: `words` gives the number of syllables per word.
 *
 * @example
 * ```ts
 * const tones = speechLike([2, 1, 3], 150); // three "words"
 * ```
 */
export function speechLike(words: readonly number[], pitchHz: number): Tone[] {
  const tones: Tone[] = [];
  let k = 0;
  for (const syllables of words) {
    for (let s = 0; s < syllables; s++, k++) {
      // Intonation: a gentle rise and fall across each syllable, varying by position.
      const from = pitchHz * (1 + 0.15 * Math.sin(k * 1.7));
      tones.push({ ms: 140 + (k % 3) * 40, hz: from, toHz: from * 0.85, harmonics: 4, gain: 0.45 });
      tones.push({ ms: 30, hz: 0 });
    }
    tones.push({ ms: 140, hz: 0 });
  }
  return tones;
}

/**
 * Length of `tones` in whole seconds (at least 1), as a voicemail's `duration`.
 *
 * @example
 * ```ts
 * durationSeconds([{ ms: 1500, hz: 440 }]); // 2
 * ```
 */
export function durationSeconds(tones: readonly Tone[]): number {
  return Math.max(1, Math.round(tones.reduce((a, t) => a + t.ms, 0) / 1000));
}

/**
 * `tones` cut or padded with silence to exactly `ms`, so a message is as long as its listed
 * duration.
 *
 * @example
 * ```ts
 * toneWav(fitTo(speechLike([2, 1], 150), 3000)).length; // 44 + 3 * 8000 * 2
 * ```
 */
export function fitTo(tones: readonly Tone[], ms: number): Tone[] {
  const out: Tone[] = [];
  let left = ms;
  for (const t of tones) {
    if (left <= 0) break;
    out.push({ ...t, ms: Math.min(t.ms, left) });
    left -= t.ms;
  }
  if (left > 0) out.push({ ms: left, hz: 0 });
  return out;
}
