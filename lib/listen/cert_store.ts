/**
 * Persistent cache for the ACME account key and issued certificates, so a
 * restart reuses them instead of asking the CA again (Let's Encrypt rate
 * limits repeated orders). Values are PEM text and include private keys:
 * keep the backing storage private.
 *
 * @module
 */

/** A named PEM cache; see {@linkcode KvCertStore} and {@linkcode DirCertStore}. */
export interface CertStore {
  /** The PEM stored under `name`, or `undefined` when there is none. */
  get(name: string): Promise<string | undefined>;
  /** Stores (replaces) the PEM under `name`. */
  set(name: string, pem: string): Promise<void>;
}

/**
 * Keeps entries in Deno KV under `[...prefix, name]` (default prefix
 * `["acme"]`). Suits Deno Deploy, where there is no writable disk.
 *
 * @example
 * ```ts
 * const store = new KvCertStore(await Deno.openKv());
 * await store.set("example.com.pem", pem);
 * ```
 */
export class KvCertStore implements CertStore {
  #kv: Deno.Kv;
  #prefix: Deno.KvKey;

  /** Wraps an open KV handle; the caller keeps ownership and closes it. */
  constructor(kv: Deno.Kv, prefix: Deno.KvKey = ["acme"]) {
    this.#kv = kv;
    this.#prefix = prefix;
  }

  /** Reads one entry. */
  async get(name: string): Promise<string | undefined> {
    const entry = await this.#kv.get<string>([...this.#prefix, name]);
    return typeof entry.value === "string" ? entry.value : undefined;
  }

  /** Writes one entry (a chain plus key is a few KiB, well under KV's 64 KiB value limit). */
  async set(name: string, pem: string): Promise<void> {
    await this.#kv.set([...this.#prefix, name], pem);
  }
}

/**
 * Keeps each entry as a file `<dir>/<name>` with mode 0600 in a 0700
 * directory (the seed's `letsEncrypt.cache`). Writes go to a temporary file
 * that is renamed into place, so a crash never leaves half a key behind.
 *
 * @example
 * ```ts
 * const store = new DirCertStore("letsEncrypt.cache");
 * ```
 */
export class DirCertStore implements CertStore {
  #dir: string;

  /** `dir` is created on first write. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Reads one entry; a missing file is simply `undefined`. */
  async get(name: string): Promise<string | undefined> {
    try {
      return await Deno.readTextFile(this.#path(name));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
  }

  /** Writes one entry atomically with owner-only permissions. */
  async set(name: string, pem: string): Promise<void> {
    const path = this.#path(name);
    await Deno.mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${crypto.randomUUID()}.tmp`;
    try {
      // mode applies at creation, before any byte of a key is written.
      await Deno.writeTextFile(tmp, pem, { mode: 0o600, createNew: true });
      await Deno.rename(tmp, path);
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
  }

  /** Entry names become file names, so reject anything that could escape `dir`. */
  #path(name: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+@-]*$/.test(name)) {
      throw new TypeError(`invalid cert store name ${JSON.stringify(name)}`);
    }
    return `${this.#dir}/${name}`;
  }
}
