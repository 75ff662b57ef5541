/**
 * Proxy API (`/mx/<name>/…`, seeds/mxproxy-api.md): HTTP Basic auth against a named MX,
 * address book, call log, callback call, voicemail, and device-token registration for
 * incoming-call pushes.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import {
  type CallLogRecord,
  type Contact,
  type MxSession,
  type PushMonitors,
  type UserSession,
  type Voicemail,
  withOptionalFields,
} from "../lib/mx/mod.ts";
import { parseBasicAuth, type VerifiedCache } from "../lib/auth/basic.ts";
import type { RateLimiter } from "../lib/auth/rate_limit.ts";
import { BodyCutError, HttpError, jsonResponse, tooManyRequests } from "../lib/http/errors.ts";
import { boolField, intField, readFields, stringField } from "../lib/http/body.ts";
import { mxHttpError } from "../lib/http/mx_errors.ts";
import { checkPassword } from "../lib/http/password_limit.ts";
import { clientIp } from "../lib/http/client_ip.ts";
import type { Logger } from "../lib/log.ts";
import { mimeForFormat } from "../lib/http/mime.ts";

/** A voicemail download whose client reads nothing for this long is cancelled. */
export const VOICEMAIL_IDLE_MS = 60_000;

/**
 * `Content-Disposition` for a file name from the MX: an ASCII `filename` (quotes and
 * non-ASCII replaced) plus RFC 5987 `filename*` with the exact UTF-8 name.
 */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** Identity established by Basic auth. */
export interface ProxyUser {
  login: string;
  password: string;
  jid: string;
  ext: string;
}

/** What the Proxy router needs. */
export interface ProxyDeps {
  sessions: Map<string, MxSession>;
  /** Successful verifications (identity only), keyed by a hash of MX+login+password. */
  authCache: VerifiedCache<{ jid: string; ext: string }>;
  /** Failed Basic-auth attempts by client address. */
  failLimiter: RateLimiter;
  push: PushMonitors;
  log: Logger;
  /** Stall limit of voicemail downloads, ms; default {@link VOICEMAIL_IDLE_MS}. */
  voicemailIdleMs?: number;
}

type Env = { Variables: { mx: MxSession; user: ProxyUser } };

/** login attributes of the per-request user sessions (mxproxy v0.14/v0.15). */
const USER_ATTRS = { platform: "iPhone", version: "1.0" };

/** Proxy address-book entry: no jid/status inside (the JID is the key). */
export function proxyContact(c: Contact): Record<string, string> {
  return withOptionalFields({ firstName: c.firstName, lastName: c.lastName, ext: c.ext }, c);
}

/** Call-log item in the seed's field order with its omitempty rules (mx-protocol §6.3). */
export function proxyCallLog(r: CallLogRecord): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (r.missed) o.missed = true;
  o.direction = r.direction;
  o.recordId = r.recordId;
  o.gcid = r.gcid;
  if (r.connect) o.connect = r.connect;
  if (r.disconnect) o.disconnect = r.disconnect;
  o.callingPartyNo = r.callingPartyNo;
  o.originalCalledPartyNo = r.originalCalledPartyNo;
  if (r.firstName) o.firstName = r.firstName;
  if (r.lastName) o.lastName = r.lastName;
  if (r.ext) o.ext = r.ext;
  if (r.serviceName) o.serviceName = r.serviceName;
  if (r.serviceExtension) o.serviceExtension = r.serviceExtension;
  if (r.callType) o.callType = r.callType;
  if (r.legType) o.legType = r.legType;
  if (r.selfLegType) o.selfLegType = r.selfLegType;
  if (r.monitorType) o.monitorType = r.monitorType;
  return o;
}

/** Voicemail list item (mx-protocol §6.3). */
export function proxyVoicemail(v: Voicemail): Record<string, unknown> {
  const o: Record<string, unknown> = { from: v.from };
  if (v.fromName) o.fromName = v.fromName;
  if (v.callerName) o.callerName = v.callerName;
  o.to = v.to;
  o.ownerType = v.ownerType;
  o.id = v.id;
  o.received = v.received;
  if (v.duration) o.duration = v.duration;
  if (v.read) o.read = true;
  if (v.note) o.note = v.note;
  return o;
}

/**
 * Parses the call-log `timestamp` query: Unix seconds or RFC 3339.
 * @throws {HttpError} 400 "bad timestamp format"
 */
export function parseTimestamp(q: string | undefined): number {
  if (q === undefined || q === "") return -1;
  if (/^-?\d{1,12}$/.test(q)) return Number(q);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(q)) {
    const ms = Date.parse(q);
    if (Number.isFinite(ms)) return Math.floor(ms / 1000);
  }
  throw new HttpError(400, "bad timestamp format");
}

/** Builds the router. */
export function proxyRoutes(d: ProxyDeps): Hono<Env> {
  const app = new Hono<Env>();

  app.use("/mx/:name/*", async (c, next) => {
    const mx = d.sessions.get(c.req.param("name"));
    if (!mx) throw new HttpError(404, "not found");
    c.set("mx", mx);
    const creds = parseBasicAuth(c.req.header("authorization"));
    if (!creds || !creds.login) {
      throw new HttpError(401, "unauthorized", { "WWW-Authenticate": 'Basic realm="mxproxy"' });
    }
    checkPassword(creds.password);
    c.set("user", { login: creds.login, password: creds.password, jid: "", ext: "" });
    await next();
  });

  /** Identity via the cache, else a throw-away user session. */
  const identify = async (c: Context<Env>): Promise<ProxyUser> => {
    const mx = c.get("mx");
    const u = c.get("user");
    const hit = await d.authCache.get(mx.name, u.login, u.password);
    if (hit) return { ...u, ...hit };
    guardFailures(c);
    try {
      const info = await mx.verifyUser(u.login, u.password, USER_ATTRS);
      const id = { jid: info.jid, ext: info.ext };
      await d.authCache.set(mx.name, u.login, u.password, id);
      return { ...u, ...id };
    } catch (err) {
      throw authFailure(c, err);
    }
  };

  /**
   * Runs `fn` on a fresh session logged in as the user (closed afterwards unless `keepOpen`,
   * see `MxSession.withUser`); a successful login also refreshes the auth cache.
   */
  const withUser = async <T>(
    c: Context<Env>,
    fn: (user: UserSession) => Promise<T>,
    keepOpen = false,
  ): Promise<T> => {
    const mx = c.get("mx");
    const u = c.get("user");
    guardFailures(c);
    try {
      return await mx.withUser(u.login, u.password, async (user) => {
        await d.authCache.set(mx.name, u.login, u.password, { jid: user.jid, ext: user.ext });
        return await fn(user);
      }, { attrs: USER_ATTRS, keepOpen });
    } catch (err) {
      throw authFailure(c, err);
    }
  };

  const guardFailures = (c: Context<Env>) => {
    const r = d.failLimiter.check(clientIp(c));
    if (!r.allowed) throw tooManyRequests("too many failed logins", r.retryAfterSeconds);
  };

  /**
   * A refused login counts against the client address and gets the Basic challenge; any other
   * error is returned unchanged for the app's one error path (onError + mxHttpError).
   */
  const authFailure = (c: Context<Env>, err: unknown): unknown => {
    const h = mxHttpError(err);
    if (h?.status !== 401) return err;
    d.failLimiter.hit(clientIp(c));
    return new HttpError(401, h.message, { "WWW-Authenticate": 'Basic realm="mxproxy"' });
  };

  app.get("/mx/:name/addressbook", async (c) => {
    const mx = c.get("mx");
    await identify(c);
    const book: Record<string, Record<string, string>> = {};
    const list = mx.contacts().sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
    for (const ct of list) book[ct.jid] = proxyContact(ct);
    return jsonResponse({ addressbook: book });
  });

  app.get("/mx/:name/calllog", async (c) => {
    const ts = parseTimestamp(c.req.query("timestamp"));
    const log = await withUser(c, (user) => user.callLog(ts));
    return jsonResponse({ callog: log.map(proxyCallLog) });
  });

  app.post("/mx/:name/call", async (c) => {
    const f = await readFields(c.req.raw);
    const from = stringField(f, "from");
    const to = stringField(f, "to");
    if (!from) throw new HttpError(400, "from required");
    if (!to) throw new HttpError(400, "to required");
    const ringDelay = intField(f, "ringDelay", 1, 0, 255);
    const vmDelay = intField(f, "vmDelay", 30, 0, 255);
    const call = await withUser(c, (user) => user.callback({ from, to, ringDelay, vmDelay }));
    return jsonResponse(call);
  });

  app.get("/mx/:name/voicemail", async (c) => {
    const list = await withUser(c, (user) => user.voicemails());
    return jsonResponse({ voicemails: list.map(proxyVoicemail) });
  });

  app.get("/mx/:name/voicemail/:id", async (c) => {
    const id = mailId(c);
    const dl = await withUser(c, async (user) => {
      const dl = await user.downloadVoicemail(id);
      if (!dl) throw new HttpError(404, "voicemail not found");
      return dl;
    }, true);
    // The user session lives as long as the download's stream, which closes it at its end, on
    // error and when cancelled (after MailCancelReceive): here when the client leaves, or
    // stops reading for VOICEMAIL_IDLE_MS (a stalled client must not hold an MX session
    // forever).
    const src = dl.stream.getReader();
    let idle: ReturnType<typeof setTimeout> | undefined;
    const stopIdle = () => clearTimeout(idle);
    const armIdle = (ctl: ReadableStreamDefaultController<Uint8Array>) => {
      stopIdle();
      idle = setTimeout(() => {
        d.log.info(`voicemail ${id}: client stalled, download cancelled`);
        src.cancel().catch(() => {});
        try {
          ctl.error(new BodyCutError("client stalled"));
        } catch {
          // already closed
        }
      }, d.voicemailIdleMs ?? VOICEMAIL_IDLE_MS);
    };
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        armIdle(ctl);
      },
      async pull(ctl) {
        stopIdle();
        try {
          const { done, value } = await src.read();
          if (done) {
            ctl.close();
          } else {
            ctl.enqueue(value);
            armIdle(ctl);
          }
        } catch (err) {
          d.log.warn(`voicemail ${id} stream failed: ${(err as Error).message}`);
          ctl.error(err);
        }
      },
      async cancel() {
        stopIdle();
        await src.cancel().catch(() => {});
      },
    }, { highWaterMark: 0 });
    try {
      return new Response(body, {
        headers: {
          "Content-Type": mimeForFormat(dl.fileFormat),
          "Content-Disposition": contentDisposition(
            dl.documentName || `${id}.${dl.fileFormat || "wav"}`,
          ),
          "Cache-Control": "private, no-store",
        },
      });
    } catch (err) {
      stopIdle();
      await src.cancel().catch(() => {});
      throw err;
    }
  });

  app.patch("/mx/:name/voicemail/:id", async (c) => {
    const id = mailId(c);
    const f = await readFields(c.req.raw);
    const note = f.note === undefined ? undefined : String(stringField(f, "note") ?? "");
    const read = boolField(f, "readed") ?? boolField(f, "read");
    if (note === undefined && read === undefined) throw new HttpError(400, "bad request");
    await withUser(c, (user) => user.updateVoicemail(id, { read, note }));
    return c.body(null, 204);
  });

  app.delete("/mx/:name/voicemail/:id", async (c) => {
    const id = mailId(c);
    // The seed: deleting an absent or foreign message is not an error (UserSession ignores
    // the MX's refusal).
    await withUser(c, (user) => user.deleteVoicemail(id));
    return c.body(null, 204);
  });

  const tokenRoute = async (c: Context<Env>, remove: boolean) => {
    const kind = c.req.param("kind");
    const bundle = c.req.param("bundle") ?? "";
    if (kind !== "apns" && kind !== "gfcm" && kind !== "fcm") {
      throw new HttpError(404, "bad push type");
    }
    const sandbox = c.req.query("sandbox") !== undefined;
    const app = d.push.appKey(kind, bundle, sandbox);
    if (!app) {
      throw new HttpError(
        400,
        kind === "apns" ? "unsupported apns bundle id" : "unsupported google bundle id",
      );
    }
    const u = await identify(c);
    const f = await readFields(c.req.raw);
    const token = stringField(f, "token") ?? "";
    if (token.length < 20 || token.length > 4096 || /\s/.test(token)) {
      throw new HttpError(400, "bad push token");
    }
    const mx = c.get("mx");
    if (remove) await d.push.unregister(mx, u.jid, u.ext, app, token);
    else await d.push.register(mx, u.jid, u.ext, app, token);
    return c.body(null, 204);
  };
  app.post("/mx/:name/token/:kind/:bundle", (c) => tokenRoute(c, false));
  app.delete("/mx/:name/token/:kind/:bundle", (c) => tokenRoute(c, true));

  return app;
}

function mailId(c: Context<Env>): string {
  const id = c.req.param("id") ?? "";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new HttpError(400, "bad voicemail id");
  return id;
}
