// @ts-check
/**
 * The ring of an incoming call, made with WebAudio (no sound file): two mixed sine tones
 * (440 and 480 Hz, the North American ring) for {@link RING_SECONDS}, with soft edges.
 *
 * @example
 * ```js
 * const audio = new AudioContext();
 * playRing(audio); // one short ring, now
 * ```
 *
 * @module
 */

/** Length of one ring (s). */
export const RING_SECONDS = 0.8;

/** Loudness of the ring (0..1). */
const VOLUME = 0.12;

/**
 * Plays one ring on `audio` now.
 * @param {BaseAudioContext} audio
 */
export function playRing(audio) {
  const t = audio.currentTime;
  const gain = audio.createGain();
  gain.gain.setValueAtTime(0, t);
  gain.gain.linearRampToValueAtTime(VOLUME, t + 0.02);
  gain.gain.setValueAtTime(VOLUME, t + RING_SECONDS - 0.05);
  gain.gain.linearRampToValueAtTime(0, t + RING_SECONDS);
  gain.connect(audio.destination);
  for (const hz of [440, 480]) {
    const osc = audio.createOscillator();
    osc.frequency.value = hz;
    osc.connect(gain);
    osc.start(t);
    osc.stop(t + RING_SECONDS);
  }
}
