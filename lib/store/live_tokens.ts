/**
 * The Flex API's live tokens in Deno KV, shared by every instance: which token ids are valid
 * (not logged out, not expired), with the extension and expiry each one holds a monitor for.
 * Every change also goes to the `tokens` {@link ChangeFeed}, so the other instances apply a
 * login or logout within one poll period instead of reading KV on each request.
 *
 * Key layout: `["flex-token", jti]` → {@link LiveToken}, written with `expireIn` until the
 * token's `exp` (KV deletes expired entries lazily, so reads check `exp` as well).
 *
 * @example
 * ```ts
 * const store = new LiveTokenStore(kv);
 * await store.add({ jti, ext: "3095", sub: "43884851147406145", exp });
 * await store.get(jti); // the record, until logout or expiry
 * await store.remove(jti, exp);
 * ```
 *
 * @module
 */
import { ChangeFeed, type ChangeFeedOptions } from "./change_feed.ts";
import { retryLocked } from "./retry_locked.ts";

/** One live token. */
export interface LiveToken {
  /** Token id (the JWT's `jti`). */
  jti: string;
  /** The user's extension (its monitor is held while the token lives). */
  ext: string;
  /** The user's JID. */
  sub: string;
  /** Expiry, Unix seconds. */
  exp: number;
}

/** One entry of the `tokens` feed. */
export type TokenChange =
  | { op: "add"; token: LiveToken }
  | { op: "del"; jti: string; exp: number };

const PREFIX = ["flex-token"] as const;

/** Options for {@link LiveTokenStore}. */
export interface LiveTokenStoreOptions {
  /** Options of the `tokens` feed. */
  feed?: ChangeFeedOptions;
  /** Clock in ms (tests); default `Date.now`. */
  now?: () => number;
}

/**
 * Live tokens on KV with their change feed.
 *
 * @example
 * ```ts
 * const store = new LiveTokenStore(kv, { feed: { pollMs: 250 } });
 * for (const t of await store.list()) console.log(t.jti, t.ext);
 * ```
 */
export class LiveTokenStore {
  /** The `tokens` feed (followed by `TokenMonitors`). */
  readonly feed: ChangeFeed<TokenChange>;
  #kv: Deno.Kv;
  #now: () => number;

  /** @param kv the shared database; @param opts feed options and clock */
  constructor(kv: Deno.Kv, opts: LiveTokenStoreOptions = {}) {
    this.#kv = kv;
    this.#now = opts.now ?? Date.now;
    this.feed = new ChangeFeed(kv, "tokens", opts.feed);
  }

  /** Records a new token (login). */
  async add(t: LiveToken): Promise<void> {
    const token: LiveToken = { jti: t.jti, ext: t.ext, sub: t.sub, exp: t.exp };
    const expireIn = Math.max(1000, t.exp * 1000 - this.#now());
    await this.feed.append(
      { op: "add", token },
      (op) => op.set([...PREFIX, t.jti], token, { expireIn }),
    );
  }

  /** Ends a token (logout). */
  async remove(jti: string, exp: number): Promise<void> {
    await this.feed.append({ op: "del", jti, exp }, (op) => op.delete([...PREFIX, jti]));
  }

  /** One live token, or undefined when it was logged out, has expired or never existed. */
  async get(jti: string): Promise<LiveToken | undefined> {
    const e = await retryLocked(() => this.#kv.get<LiveToken>([...PREFIX, jti]));
    return e.value && this.#alive(e.value) ? e.value : undefined;
  }

  /** Every live token. */
  async list(): Promise<LiveToken[]> {
    const out: LiveToken[] = [];
    for await (const e of this.#kv.list<LiveToken>({ prefix: PREFIX }, { batchSize: 500 })) {
      if (this.#alive(e.value)) out.push(e.value);
    }
    return out;
  }

  #alive(t: LiveToken): boolean {
    return t.exp * 1000 > this.#now();
  }
}
