/**
 * Opens the Deno KV database, turning SQLite's "unable to open database file" into a line an
 * operator can act on: which path, and why (missing directory, not writable, a directory, not
 * a database).
 *
 * @module
 */
import { retryLocked } from "./retry_locked.ts";

/**
 * The KV database could not be opened; the message names the path and the cause.
 *
 * @example
 * ```ts
 * try {
 *   await openKv("/read-only/mxflex.db");
 * } catch (err) {
 *   if (err instanceof KvOpenError) console.error(err.message); // names the path and why
 * }
 * ```
 */
export class KvOpenError extends Error {
  /** The path or URL given. */
  readonly path: string;

  /**
   * @param path the path or KV Connect URL
   * @param why the cause, in words
   * @param options `cause`: the runtime's error
   */
  constructor(path: string, why: string, options?: ErrorOptions) {
    super(`cannot open the Deno KV database ${path}: ${why}`, options);
    this.name = "KvOpenError";
    this.path = path;
  }
}

/**
 * `Deno.openKv(path)` with a {@link KvOpenError} that says why it failed. SQLite's "database is
 * locked" is retried: instances started together on a new KV file all create its tables at once,
 * and the losers are refused instead of waiting.
 * @param open the opener (tests); default `Deno.openKv`
 * @throws {KvOpenError}
 *
 * @example
 * ```ts
 * const kv = await openKv("mxproxy.db");
 * // cannot open the Deno KV database /srv/none/mxproxy.db: directory /srv/none does not exist
 * ```
 */
export async function openKv(
  path: string,
  open: (path: string) => Promise<Deno.Kv> = Deno.openKv,
): Promise<Deno.Kv> {
  try {
    return await retryLocked(() => open(path));
  } catch (err) {
    throw new KvOpenError(path, await explain(path, err), { cause: err });
  }
}

async function explain(path: string, err: unknown): Promise<string> {
  const text = err instanceof Error ? err.message : String(err);
  if (/^[a-z]+:\/\//i.test(path) || path === ":memory:") return text;
  if (/not a database/i.test(text)) return `${path} is not a Deno KV database (${text})`;
  try {
    if ((await Deno.stat(path)).isDirectory) return `${path} is a directory`;
  } catch {
    // does not exist yet: look at its directory
  }
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
  try {
    if (!(await Deno.stat(dir)).isDirectory) return `${dir} is not a directory`;
  } catch {
    return `directory ${dir} does not exist`;
  }
  // The database and its journal live in that directory: can we create a file there?
  const probe = `${dir}/.mxflex-kv-probe-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(probe, "", { createNew: true });
    await Deno.remove(probe);
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied) return `directory ${dir} is not writable`;
  }
  try {
    await Deno.open(path, { read: true, write: true }).then((f) => f.close());
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied) return `${path} is not writable`;
  }
  return text;
}
