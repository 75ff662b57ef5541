/**
 * A fresh in-memory Deno KV per test.
 *
 * @module
 */

/**
 * Runs `fn` with a new `:memory:` KV and always closes it.
 *
 * @example
 * ```ts
 * Deno.test("store", () => withKv(async (kv) => { await kv.set(["k"], 1); }));
 * ```
 */
export async function withKv(fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}
