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

/**
 * Runs `fn` with the path of a KV file in a fresh temporary directory (for several handles or
 * processes on one database) and removes the directory afterwards.
 *
 * @example
 * ```ts
 * await withKvFile(async (path) => { const a = await Deno.openKv(path); a.close(); });
 * ```
 */
export async function withKvFile(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(`${dir}/kv.db`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The `kid` of a JWT's header (which signing key made it).
 *
 * @example
 * ```ts
 * kidOf(token); // "0f6c…"
 * ```
 */
export function kidOf(token: string): string {
  return jwtPart(token, 0).kid as string;
}

/**
 * The claims of a JWT (its payload, not verified).
 *
 * @example
 * ```ts
 * claimsOf(token).jti; // "v3Lhcf…"
 * ```
 */
export function claimsOf(token: string): Record<string, unknown> {
  return jwtPart(token, 1);
}

function jwtPart(token: string, i: number): Record<string, unknown> {
  const h = token.split(".")[i].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(h + "=".repeat((4 - h.length % 4) % 4)));
}
