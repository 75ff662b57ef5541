/**
 * Device-token store on Deno KV (mx-protocol §6.4, replacing the original's bolt DB).
 *
 * Key layout (two indexes, always written together in one atomic operation):
 *
 * - `["push", "token", kind, app, token]` → `{mx, jid, at}`: the owner of a token. A token
 *   belongs to exactly one user, across all MX systems, as in the original's per-bundle
 *   bucket *token → user id*.
 * - `["push", "user", mx, jid, kind, app, token]` → `{at}`: the user's tokens, listed by
 *   prefix `["push", "user", mx, jid]`; users of one MX by prefix `["push", "user", mx]`
 *   (the original's `#users` prefix scan at start-up).
 * - `["push", "seen", kind, app, token]` → ms: when a push to the device last succeeded,
 *   kept apart so a push never rewrites (or races with) the registration.
 *
 * `app` is the bundle id with `~` for the APNs sandbox, or the FCM app name; `at` is the
 * time of the last registration (ms). Both index values also hold the device's
 * `alertToken` when it has one (VoIP apps: the ordinary APNs token used for the follow-ups
 * of a call, next to the PushKit token that is the key). JIDs stay strings (they exceed
 * 2^53).
 *
 * @module
 */
import { retryLocked } from "./retry_locked.ts";

/** Push service family (the seed's `gfcm` is stored as `fcm`). */
export type TokenKind = "apns" | "fcm";

/** A token as {@link TokenStore.add} takes it. */
export interface TokenRegistration {
  /** MX serial number or config name. */
  mx: string;
  /** User JID (decimal string). */
  jid: string;
  kind: TokenKind;
  /** Bundle id (`~` suffix = APNs sandbox) or FCM app name. */
  app: string;
  /** The device token itself (for a VoIP app: the PushKit token). */
  token: string;
  /** VoIP apps: the device's ordinary APNs token, for the pushes after `incoming`. */
  alertToken?: string;
}

/** A stored token with its registration time. */
export interface StoredToken extends TokenRegistration {
  /** Last registration, ms since the epoch. */
  registeredAt: number;
  /** Last push the service accepted, ms since the epoch; absent before the first. */
  lastSuccessAt?: number;
}

/** The previous owner of a token that {@link TokenStore.add} moved. */
export interface MovedFrom {
  mx: string;
  jid: string;
}

interface OwnerValue {
  mx: string;
  jid: string;
  at: number;
  alertToken?: string;
}

interface UserValue {
  at: number;
  alertToken?: string;
}

const TOKEN = ["push", "token"] as const;
const USER = ["push", "user"] as const;
const SEEN = ["push", "seen"] as const;
/** `kv.getMany` reads at most this many keys at once. */
const GET_MANY_LIMIT = 10;

/**
 * Device tokens per user, with "a token belongs to one user" enforced atomically.
 *
 * @example
 * ```ts
 * const store = new TokenStore(await Deno.openKv(":memory:"));
 * await store.add({ mx: "63022", jid: "43884851147406145", kind: "apns", app: "com.app~", token });
 * await store.listForUser("63022", "43884851147406145");
 * ```
 */
export class TokenStore {
  #kv: Deno.Kv;
  #now: () => number;

  /**
   * @param kv the database (shared with other stores; keys live under `["push", …]`)
   * @param opts.now clock in ms (tests)
   */
  constructor(kv: Deno.Kv, opts: { now?: () => number } = {}) {
    this.#kv = kv;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Stores a token for a user, or refreshes its registration (time, alert token). A token
   * registered to another user before is moved: its old user entry is deleted in the same
   * transaction, and the old owner is returned.
   */
  add(t: TokenRegistration): Promise<MovedFrom | undefined> {
    return retryLocked(() => this.#add(t));
  }

  async #add(t: TokenRegistration): Promise<MovedFrom | undefined> {
    const ownerKey = [...TOKEN, t.kind, t.app, t.token];
    for (;;) {
      const prev = await this.#kv.get<OwnerValue>(ownerKey);
      const at = this.#now();
      const alert = t.alertToken ? { alertToken: t.alertToken } : {};
      const op = this.#kv.atomic().check(prev)
        .set(ownerKey, { mx: t.mx, jid: t.jid, at, ...alert } satisfies OwnerValue)
        .set([...USER, t.mx, t.jid, t.kind, t.app, t.token], { at, ...alert } satisfies UserValue);
      const old = prev.value;
      const moved = old && (old.mx !== t.mx || old.jid !== t.jid);
      if (moved) op.delete([...USER, old.mx, old.jid, t.kind, t.app, t.token]);
      // A concurrent writer changed the owner between get and commit: read again.
      if ((await op.commit()).ok) return moved ? { mx: old.mx, jid: old.jid } : undefined;
    }
  }

  /**
   * Records that a push to the token succeeded (per-device last-success time). Nothing is
   * written when the token was removed meanwhile.
   */
  markSuccess(kind: TokenKind, app: string, token: string, at = this.#now()): Promise<void> {
    return retryLocked(async () => {
      const owner = await this.#kv.get<OwnerValue>([...TOKEN, kind, app, token]);
      if (!owner.value) return;
      await this.#kv.atomic().check(owner).set([...SEEN, kind, app, token], at).commit();
    });
  }

  /**
   * Drops a device's alert token (the service called it dead) and keeps the device: its
   * VoIP token still rings. Nothing happens when the stored alert token is another one.
   */
  removeAlertToken(kind: TokenKind, app: string, token: string, alertToken: string): Promise<void> {
    return retryLocked(async () => {
      const ownerKey = [...TOKEN, kind, app, token];
      for (;;) {
        const prev = await this.#kv.get<OwnerValue>(ownerKey);
        const o = prev.value;
        if (!o || o.alertToken !== alertToken) return;
        const res = await this.#kv.atomic().check(prev)
          .set(ownerKey, { mx: o.mx, jid: o.jid, at: o.at } satisfies OwnerValue)
          .set([...USER, o.mx, o.jid, kind, app, token], { at: o.at } satisfies UserValue)
          .commit();
        if (res.ok) return;
      }
    });
  }

  /** Deletes a token whoever owns it (push feedback said it is dead). */
  remove(kind: TokenKind, app: string, token: string): Promise<void> {
    return retryLocked(() => this.#remove(kind, app, token));
  }

  async #remove(kind: TokenKind, app: string, token: string): Promise<void> {
    const ownerKey = [...TOKEN, kind, app, token];
    for (;;) {
      const prev = await this.#kv.get<OwnerValue>(ownerKey);
      if (!prev.value) return;
      const res = await this.#kv.atomic().check(prev).delete(ownerKey)
        .delete([...USER, prev.value.mx, prev.value.jid, kind, app, token])
        .delete([...SEEN, kind, app, token]).commit();
      if (res.ok) return;
    }
  }

  /**
   * Deletes a token only if it belongs to this user (an explicit unregister must not
   * remove another user's registration). Returns whether it was deleted.
   */
  removeForUser(
    mx: string,
    jid: string,
    kind: TokenKind,
    app: string,
    token: string,
  ): Promise<boolean> {
    return retryLocked(() => this.#removeForUser(mx, jid, kind, app, token));
  }

  async #removeForUser(
    mx: string,
    jid: string,
    kind: TokenKind,
    app: string,
    token: string,
  ): Promise<boolean> {
    const ownerKey = [...TOKEN, kind, app, token];
    for (;;) {
      const prev = await this.#kv.get<OwnerValue>(ownerKey);
      if (!prev.value || prev.value.mx !== mx || prev.value.jid !== jid) return false;
      const res = await this.#kv.atomic().check(prev).delete(ownerKey)
        .delete([...USER, mx, jid, kind, app, token])
        .delete([...SEEN, kind, app, token]).commit();
      if (res.ok) return true;
    }
  }

  /** All tokens of one user, with their alert tokens and last-success times. */
  async listForUser(mx: string, jid: string): Promise<StoredToken[]> {
    const out: StoredToken[] = [];
    for await (const e of this.#kv.list<UserValue>({ prefix: [...USER, mx, jid] })) {
      const [, , , , kind, app, token] = e.key as string[];
      const t: StoredToken = {
        mx,
        jid,
        kind: kind as TokenKind,
        app,
        token,
        registeredAt: e.value.at,
      };
      if (e.value.alertToken) t.alertToken = e.value.alertToken;
      out.push(t);
    }
    for (let i = 0; i < out.length; i += GET_MANY_LIMIT) {
      const batch = out.slice(i, i + GET_MANY_LIMIT);
      const seen = await this.#kv.getMany<number[]>(
        batch.map((t) => [...SEEN, t.kind, t.app, t.token]),
      );
      seen.forEach((s, j) => {
        if (typeof s.value === "number") batch[j].lastSuccessAt = s.value;
      });
    }
    return out;
  }

  /** JIDs with at least one token on this MX, for restoring call monitors after a restart. */
  async listUsers(mx: string): Promise<string[]> {
    const jids: string[] = [];
    // Entries are sorted by key, so one user's tokens are adjacent.
    for await (const e of this.#kv.list({ prefix: [...USER, mx] }, { batchSize: 500 })) {
      const jid = e.key[3] as string;
      if (jids.at(-1) !== jid) jids.push(jid);
    }
    return jids;
  }
}
