/**
 * Call pushes for the Proxy API: a registered device token keeps a persistent monitor on
 * its user's extension (restored from the token store after restarts and MX reconnects);
 * the call events of that extension go through {@link CallLifecycle}, and each step it
 * derives (`incoming`, then `answered`, `answered_elsewhere`, `cancelled` or `missed`) is
 * handed to the push dispatcher, which sends it once per device across processes.
 *
 * With several instances on one KV, every instance monitors every registered user (so each
 * one sees the call; the dispatcher's KV claim keeps the push single): a registration or
 * removal is announced on the `push` change feed, and the others re-read that user's tokens;
 * a resync (start-up, a missed update, periodically) reconciles all users of an MX.
 *
 * @module
 */
import type { MxSession } from "./session.ts";
import type { TokenStore } from "../store/tokens.ts";
import type { PushDispatcher } from "../push/dispatcher.ts";
import { CallLifecycle } from "./call_lifecycle.ts";
import type { Logger } from "../log.ts";
import type { ChangeFeed } from "../store/change_feed.ts";

/** One entry of the `push` feed: a user whose registrations changed. */
export interface PushChange {
  /** MX config name. */
  mx: string;
  jid: string;
  /** The announcing process (it applied the change itself already). */
  from: string;
}

/** Options for {@link PushMonitors}. */
export interface PushMonitorsOptions {
  store: TokenStore;
  dispatcher?: PushDispatcher;
  /** Configured push apps by key ("apns:<bundle>[~]", "fcm:<app>"). */
  apps: ReadonlySet<string>;
  log: Logger;
  /** Announces registration changes to the other instances and follows theirs. */
  feed?: ChangeFeed<PushChange>;
}

/**
 * @example
 * ```ts
 * const pm = new PushMonitors({ store, dispatcher, apps: new Set(["fcm:app"]), log });
 * pm.attach(mx);
 * await pm.register(mx, jid, ext, "fcm:app", token);
 * ```
 */
export class PushMonitors {
  #o: PushMonitorsOptions;
  /** Per MX: ext -> JIDs with tokens (one ext could belong to one user, kept general). */
  #users = new Map<string, Map<string, Set<string>>>();
  /** Per MX: JID -> the extension its monitor is held on. */
  #extOf = new Map<string, Map<string, string>>();
  /** Attached sessions by name. */
  #sessions = new Map<string, MxSession>();
  /** This process in the feed (its own announcements are not applied twice). */
  #origin = crypto.randomUUID();

  /** @param o store, dispatcher, configured apps, logger */
  constructor(o: PushMonitorsOptions) {
    this.#o = o;
  }

  /**
   * The app key for a registration path, or undefined when that app is not configured.
   * `gfcm` (the seed's name) and `fcm` are the same Google app namespace.
   */
  appKey(kind: string, bundle: string, sandbox: boolean): string | undefined {
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(bundle)) return undefined;
    const key = kind === "apns" ? `apns:${bundle}${sandbox ? "~" : ""}` : `fcm:${bundle}`;
    return this.#o.apps.has(key) ? key : undefined;
  }

  /** Follows the other instances' registration changes (after {@link attach}). */
  async start(): Promise<void> {
    await this.#o.feed?.follow({
      apply: async (changes) => {
        for (const c of changes) {
          if (c.from === this.#origin) continue;
          const mx = this.#sessions.get(c.mx);
          // A session not connected yet restores everything when it connects.
          if (mx?.state === "connected") await this.#reconcileUser(mx, c.jid);
        }
      },
      resync: async () => {
        for (const mx of this.#sessions.values()) {
          if (mx.state === "connected") await this.#restore(mx);
        }
      },
    });
  }

  /** Stops following the feed. */
  close(): void {
    this.#o.feed?.close();
  }

  /** Watches an MX: restores monitors on every (re)connect and dispatches pushes. */
  attach(mx: MxSession): void {
    this.#sessions.set(mx.name, mx);
    mx.onState((s) => {
      if (s === "connected") void this.#restore(mx);
    });
    if (mx.state === "connected") void this.#restore(mx);
    // The calls ringing at (or finished for) this MX's monitored extensions.
    const life = new CallLifecycle();
    mx.onCallEvent((ext, ev) => {
      const jids = this.#users.get(mx.name)?.get(ext);
      if (!jids?.size || !this.#o.dispatcher) return;
      const step = life.next(ext, ev, Date.now());
      if (!step) return;
      for (const jid of jids) {
        this.#o.dispatcher.push({
          mx: mx.name,
          jid,
          callKey: step.callKey,
          event: step.event,
          payload: step.payload,
          eventAt: step.at,
        }).catch((err) => this.#o.log.warn(`push for ${ext} failed: ${(err as Error).message}`));
      }
    });
  }

  /**
   * Stores a token (with the device's alert token, for VoIP apps) and makes sure the user's
   * extension is monitored. A token that belonged to another user moves; that user's
   * monitor is released when it was their last token.
   */
  async register(
    mx: MxSession,
    jid: string,
    ext: string,
    app: string,
    token: string,
    alertToken?: string,
  ) {
    const [kind, bundle] = splitApp(app);
    const moved = await this.#o.store.add({
      mx: mx.name,
      jid,
      kind,
      app: bundle,
      token,
      ...(alertToken ? { alertToken } : {}),
    });
    await this.#track(mx, ext, jid);
    await mx.acquirePersistent(ext, holderOf(jid));
    if (moved?.mx === mx.name) await this.#releaseIfUnused(mx, moved.jid);
    await this.#announce(mx, jid);
  }

  /** Removes a token; the last token of a user releases the monitor. */
  async unregister(mx: MxSession, jid: string, _ext: string, app: string, token: string) {
    const [kind, bundle] = splitApp(app);
    await this.#o.store.removeForUser(mx.name, jid, kind, bundle, token);
    await this.#releaseIfUnused(mx, jid);
  }

  /** Releases `jid`'s monitor when no token of theirs is left; tells the other instances. */
  async #releaseIfUnused(mx: MxSession, jid: string): Promise<void> {
    const left = await this.#o.store.listForUser(mx.name, jid);
    if (left.length === 0) await this.#untrack(mx, jid);
    await this.#announce(mx, jid);
  }

  async #announce(mx: MxSession, jid: string): Promise<void> {
    try {
      await this.#o.feed?.append({ mx: mx.name, jid, from: this.#origin });
    } catch (err) {
      // The others converge at their next periodic resync.
      this.#o.log.warn(`push change not announced: ${(err as Error).message}`);
    }
  }

  /** Monitors a user while it has tokens, stops when it has none (another instance's change). */
  async #reconcileUser(mx: MxSession, jid: string): Promise<void> {
    try {
      const left = await this.#o.store.listForUser(mx.name, jid);
      if (left.length === 0) return await this.#untrack(mx, jid);
      const ext = mx.contact(jid)?.ext;
      if (!ext) return;
      await this.#track(mx, ext, jid);
      await mx.acquirePersistent(ext, holderOf(jid));
    } catch (err) {
      this.#o.log.warn(`push monitor for ${jid} not updated: ${(err as Error).message}`);
    }
  }

  async #restore(mx: MxSession): Promise<void> {
    let jids: string[];
    try {
      jids = await this.#o.store.listUsers(mx.name);
    } catch (err) {
      this.#o.log.error(`token store unreadable: ${(err as Error).message}`);
      return;
    }
    // Users whose last token went while this instance was not listening.
    const listed = new Set(jids);
    for (const jid of [...(this.#extOf.get(mx.name)?.keys() ?? [])]) {
      if (!listed.has(jid)) await this.#untrack(mx, jid).catch(() => {});
    }
    for (const jid of jids) {
      const ext = mx.contact(jid)?.ext;
      if (!ext) {
        this.#o.log.warn(`push user ${jid} not in the ${mx.name} address book; skipped`);
        continue;
      }
      try {
        await this.#track(mx, ext, jid);
        await mx.acquirePersistent(ext, holderOf(jid));
      } catch (err) {
        this.#o.log.warn(`push monitor ${ext} not started: ${(err as Error).message}`);
      }
    }
  }

  /** Records that `jid`'s pushes come from `ext`, moving it if its extension changed. */
  async #track(mx: MxSession, ext: string, jid: string): Promise<void> {
    const old = this.#extOf.get(mx.name)?.get(jid);
    if (old !== undefined && old !== ext) await this.#untrack(mx, jid);
    let byExt = this.#users.get(mx.name);
    if (!byExt) this.#users.set(mx.name, byExt = new Map());
    let set = byExt.get(ext);
    if (!set) byExt.set(ext, set = new Set());
    set.add(jid);
    let exts = this.#extOf.get(mx.name);
    if (!exts) this.#extOf.set(mx.name, exts = new Map());
    exts.set(jid, ext);
  }

  /** Forgets `jid` and releases its monitor reference. */
  async #untrack(mx: MxSession, jid: string): Promise<void> {
    const ext = this.#extOf.get(mx.name)?.get(jid);
    if (ext === undefined) return;
    this.#extOf.get(mx.name)!.delete(jid);
    const byExt = this.#users.get(mx.name);
    const set = byExt?.get(ext);
    set?.delete(jid);
    if (set && set.size === 0) byExt!.delete(ext);
    await mx.release(ext, holderOf(jid));
  }
}

function holderOf(jid: string): string {
  return `push:${jid}`;
}

function splitApp(app: string): ["apns" | "fcm", string] {
  const i = app.indexOf(":");
  return [app.slice(0, i) as "apns" | "fcm", app.slice(i + 1)];
}
