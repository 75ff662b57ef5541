/**
 * Timers of the simulated MX (auto-answer, auto-hangup, delayed command handling), tracked so
 * that `close()` can cancel every one of them (Deno's test sanitizers fail on a left-over
 * timer).
 *
 * @module
 */
import type { TimerHandle, TimerHost } from "./calls.ts";

/**
 * A {@link TimerHost} that remembers its pending timers.
 *
 * @example
 * ```ts
 * const timers = new Timers();
 * timers.set(() => console.log("answered"), 50);
 * timers.clearAll(); // nothing fires
 * ```
 */
export class Timers implements TimerHost {
  #ids = new Set<TimerHandle>();

  /** Runs `fn` after `ms` (negative counts as 0); returns the handle. */
  set(fn: () => void, ms: number): TimerHandle {
    const id = setTimeout(() => {
      this.#ids.delete(id);
      fn();
    }, Math.max(0, ms));
    this.#ids.add(id);
    return id;
  }

  /** Cancels one timer; `undefined` and fired timers are ignored. */
  clear(id: TimerHandle | undefined): void {
    if (id === undefined) return;
    clearTimeout(id);
    this.#ids.delete(id);
  }

  /** Cancels every pending timer. */
  clearAll(): void {
    for (const id of this.#ids) clearTimeout(id);
    this.#ids.clear();
  }
}
