/**
 * Proxy API (`/mx/<name>/…`, seeds/mxproxy-api.md): HTTP Basic auth against a named MX,
 * address book, call log, callback call, voicemail, and device-token registration for
 * incoming-call pushes.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import {
  type Contact,
  type MxSession,
  type PushMonitors,
  type UserSession,
  withOptionalFields,
} from "../lib/mx/mod.ts";
import { parseBasicAuth, type VerifiedCache } from "../lib/auth/basic.ts";
import type { LoginAttempt, LoginGuard } from "../lib/auth/login_guard.ts";
import { HttpError, jsonResponse, tooManyRequests } from "../lib/http/errors.ts";
import { intField, readFields, stringField } from "../lib/http/body.ts";
import { mxHttpError } from "../lib/http/mx_errors.ts";
import { checkPassword } from "../lib/http/password_limit.ts";
import { clientIp } from "../lib/http/client_ip.ts";
import type { Logger } from "../lib/log.ts";
import {
  callLogJson,
  mailIdParam,
  parseTimestamp,
  voicemailJson,
  voicemailPatch,
} from "../lib/http/records.ts";
import { serveVoicemail, voicemailNotFound } from "../lib/http/voicemail_stream.ts";

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
  /** Failed-login limits (shared with the Flex API through KV). */
  guard: LoginGuard;
  push: PushMonitors;
  log: Logger;
  /** Stall limit of voicemail downloads, ms; default `VOICEMAIL_IDLE_MS` (60 s). */
  voicemailIdleMs?: number;
}

type Env = { Variables: { mx: MxSession; user: ProxyUser } };

/** login attributes of the per-request user sessions (mxproxy v0.14/v0.15). */
const USER_ATTRS = { platform: "iPhone", version: "1.0" };

/**
 * Proxy address-book entry: no jid/status inside (the JID is the key).
 *
 * @example
 * ```ts
 * proxyContact(contact); // { firstName: "Peter", lastName: "Hyde", ext: "3044", … }
 * ```
 */
export function proxyContact(c: Contact): Record<string, string> {
  return withOptionalFields({ firstName: c.firstName, lastName: c.lastName, ext: c.ext }, c);
}

/**
 * Builds the router.
 *
 * @example
 * ```ts
 * app.route("/", proxyRoutes({ sessions, authCache, guard, push, log }));
 * ```
 */
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
    const attempt = await begin(c);
    try {
      const info = await mx.verifyUser(u.login, u.password, USER_ATTRS);
      await attempt.succeeded();
      const id = { jid: info.jid, ext: info.ext };
      await d.authCache.set(mx.name, u.login, u.password, id);
      return { ...u, ...id };
    } catch (err) {
      throw await authFailure(c, attempt, err);
    }
  };

  /**
   * Runs `fn` on a fresh session logged in as the user (closed afterwards unless `keepOpen`,
   * see `MxSession.withUser`); a successful login also refreshes the auth cache. Credentials
   * the cache verified recently skip the limit check (they are right).
   */
  const withUser = async <T>(
    c: Context<Env>,
    fn: (user: UserSession) => Promise<T>,
    keepOpen = false,
  ): Promise<T> => {
    const mx = c.get("mx");
    const u = c.get("user");
    const cached = await d.authCache.get(mx.name, u.login, u.password) !== undefined;
    const attempt = cached ? undefined : await begin(c);
    try {
      return await mx.withUser(u.login, u.password, async (user) => {
        await attempt?.succeeded();
        await d.authCache.set(mx.name, u.login, u.password, { jid: user.jid, ext: user.ext });
        return await fn(user);
      }, { attrs: USER_ATTRS, keepOpen });
    } catch (err) {
      throw await authFailure(c, attempt, err);
    }
  };

  /** Checks the login limits; 429 when refused. */
  const begin = async (c: Context<Env>): Promise<LoginAttempt> => {
    const attempt = await d.guard.begin(c.get("mx").name, c.get("user").login, clientIp(c));
    if (attempt.refused) {
      throw tooManyRequests("too many failed logins", attempt.refused.retryAfterSeconds);
    }
    return attempt;
  };

  /**
   * A refused login counts against the limits and gets the Basic challenge; any other error
   * is returned unchanged for the app's one error path (onError + mxHttpError). Errors after
   * a successful login (the attempt already settled) count nothing.
   */
  const authFailure = async (c: Context<Env>, attempt: LoginAttempt | undefined, err: unknown) => {
    const h = mxHttpError(err);
    if (h?.status !== 401) {
      attempt?.abandon();
      return err;
    }
    await attempt?.failed();
    // Cached credentials the MX now refuses (password changed): forget them, so the next
    // try goes through the limits.
    if (!attempt) d.authCache.delete(c.get("mx").name, c.get("user").login);
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
    return jsonResponse({ callog: log.map(callLogJson) });
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
    return jsonResponse({ voicemails: list.map(voicemailJson) });
  });

  app.get("/mx/:name/voicemail/:id", async (c) => {
    const id = mailIdParam(c.req.param("id"));
    // The user session lives as long as the download's stream.
    return await serveVoicemail(c.req.raw, id, (fn) => withUser(c, fn, true), {
      log: d.log,
      idleMs: d.voicemailIdleMs,
    });
  });

  app.patch("/mx/:name/voicemail/:id", async (c) => {
    const id = mailIdParam(c.req.param("id"));
    const patch = voicemailPatch(await readFields(c.req.raw));
    // No such message: 404, as for GET (UserSession decides from the MX's refusal).
    const found = await withUser(c, (user) => user.updateVoicemail(id, patch));
    if (!found) throw voicemailNotFound();
    return c.body(null, 204);
  });

  app.delete("/mx/:name/voicemail/:id", async (c) => {
    const id = mailIdParam(c.req.param("id"));
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
    const token = pushToken(f.token, MAX_PUSH_TOKEN);
    if (!token) throw new HttpError(400, "bad push token");
    // VoIP apps: the device's ordinary APNs token, for the pushes after `incoming`.
    const alertToken = remove ? "" : pushToken(f.alertToken, MAX_ALERT_TOKEN);
    if (alertToken === undefined) throw new HttpError(400, "bad alert token");
    const mx = c.get("mx");
    // Unregistering answers 204 whether or not the token was registered.
    if (remove) await d.push.unregister(mx, u.jid, u.ext, app, token);
    else await d.push.register(mx, u.jid, u.ext, app, token, alertToken || undefined);
    return c.body(null, 204);
  };
  app.post("/mx/:name/token/:kind/:bundle", (c) => tokenRoute(c, false));
  app.delete("/mx/:name/token/:kind/:bundle", (c) => tokenRoute(c, true));

  return app;
}

/**
 * Longest device token (docs/openapi.yaml `PushToken.token`). The token is part of its Deno KV
 * keys (lib/store/tokens.ts), which hold at most 2 KiB; real tokens are 64 (APNs) to about
 * 200 (FCM) characters.
 */
const MAX_PUSH_TOKEN = 1024;
/** Longest `alertToken`: an ordinary APNs token (docs/openapi.yaml `PushToken.alertToken`). */
const MAX_ALERT_TOKEN = 256;

/**
 * A device token from the body: a string of 20 to `max` printable ASCII characters without
 * spaces once trimmed (what APNs and FCM issue). `""` when absent or empty, `undefined` when
 * anything else (a number included).
 */
function pushToken(v: unknown, max: number): string | undefined {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") return undefined;
  const t = v.trim();
  if (t === "") return "";
  return t.length >= 20 && t.length <= max && /^[\x21-\x7e]+$/.test(t) ? t : undefined;
}
