/**
 * Waiting in tests: {@link waitUntil} polls for a positive marker with a bound that only
 * guards against hangs (never a timing assertion), and {@link sleep} for the few places that
 * really model elapsed time.
 *
 * @module
 */

/** Options of {@link waitUntil}. */
export interface WaitOptions {
  /**
   * What is awaited, for the timeout error ("timed out after 5000 ms waiting for <what>"); a
   * function is called only then (e.g. to append a child process's log).
   */
  what: string | (() => string);
  /** Bound against hangs, default 5000 ms. */
  timeoutMs?: number;
  /** Poll period, default 10 ms. */
  intervalMs?: number;
}

/**
 * Resolves once `pred` returns true (it may be async). An exception from `pred` ends the wait
 * with that exception (e.g. "the child process exited"), so a predicate can fail early.
 *
 * @throws {Error} `timed out after <timeoutMs> ms waiting for <what>`
 *
 * @example
 * ```ts
 * await waitUntil(() => sim.sessionCount() === 0, { what: "MX sessions closed" });
 * ```
 */
export async function waitUntil(
  pred: () => boolean | Promise<boolean>,
  opts: WaitOptions,
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() >= deadline) {
      const what = typeof opts.what === "function" ? opts.what() : opts.what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(opts.intervalMs ?? 10);
  }
}

/**
 * Resolves after `ms`. Only for tests that model elapsed time (say why at the call); to wait
 * for something, use {@link waitUntil} on its marker.
 *
 * @example
 * ```ts
 * await sleep(150); // past the 100 ms request timeout
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Options of {@link waitForUrl}. */
export interface WaitForUrlOptions extends Partial<WaitOptions> {
  /** Whether the answer counts; default any answer. */
  ok?: (res: Response) => boolean;
  /** HTTP client for the requests (extra trusted CAs). */
  client?: Deno.HttpClient;
  /** Called before each attempt; throws to end the wait early (e.g. a child process exited). */
  check?: () => void;
}

/**
 * Polls `url` until it answers and `ok(response)` holds: a server (child process or not) is
 * ready. Connection errors count as "not yet".
 *
 * @throws {Error} `timed out after … waiting for <what>`, or whatever `check` throws
 *
 * @example
 * ```ts
 * await waitForUrl(`${url}/readyz`, { ok: (r) => r.status === 200, timeoutMs: 20_000 });
 * ```
 */
export function waitForUrl(url: string, o: WaitForUrlOptions = {}): Promise<void> {
  return waitUntil(async () => {
    o.check?.();
    try {
      const res = await fetch(url, o.client ? { client: o.client } : {});
      await res.body?.cancel();
      return o.ok ? o.ok(res) : true;
    } catch {
      return false; // not listening yet
    }
  }, { what: o.what ?? url, timeoutMs: o.timeoutMs, intervalMs: o.intervalMs });
}
