/**
 * Flex API (`/api/…`, seeds/mxflex-api.md): JWT login against the MX, live call events,
 * presence and address-book changes over SSE, contacts, current calls, click-to-call and call
 * control, and with the token's user session: own presence, call log and voicemail.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { AuthError, type TokenIssuer } from "../lib/auth/jwt.ts";
import type { LoginGuard } from "../lib/auth/login_guard.ts";
import { SSE_HEADERS, sseResponse } from "../lib/sse/hub.ts";
import {
  formatJson,
  HttpError,
  JSON_CONTENT_TYPE,
  jsonResponse,
  tooManyRequests,
} from "../lib/http/errors.ts";
import { boolField, type Fields, intField, readFields, stringField } from "../lib/http/body.ts";
import { mxHttpError } from "../lib/http/mx_errors.ts";
import { checkPassword } from "../lib/http/password_limit.ts";
import { clientIp } from "../lib/http/client_ip.ts";
import {
  type CallAction,
  flexContact,
  type FlexFeed,
  loginSecret,
  type MxSession,
  SETTABLE_PRESENCE,
  type StreamLimits,
  type TokenClaims,
  type TokenMonitors,
  type UserSession,
} from "../lib/mx/mod.ts";
import { CredentialVault } from "../lib/store/credentials.ts";
import {
  callLogJson,
  mailIdParam,
  parseTimestamp,
  voicemailJson,
  voicemailPatch,
} from "../lib/http/records.ts";
import { serveVoicemail, voicemailNotFound } from "../lib/http/voicemail_stream.ts";
import type { Logger } from "../lib/log.ts";

/** What the Flex router needs. */
export interface FlexDeps {
  mx: MxSession;
  /** Live tokens and their monitors and streams (built by the composition root). */
  tokens: TokenMonitors;
  /** Event streams and current calls (built by the composition root). */
  feed: FlexFeed;
  issuer: TokenIssuer;
  log: Logger;
  /** Failed-login limits (shared with the Proxy API through KV). */
  guard: LoginGuard;
  /** Caps on concurrent `/api/events` streams. */
  streamLimits: StreamLimits;
  /** Sealed MX credentials of the tokens (their user sessions). */
  vault: CredentialVault;
  /** Stall limit of voicemail downloads, ms (default in `lib/http/voicemail_stream.ts`). */
  voicemailIdleMs?: number;
}

/** `Retry-After` of a refused event stream: about two heartbeats, by which a dead one is gone. */
export const STREAM_RETRY_AFTER = 30;

/** loginRequest attributes of the token's user sessions (as the Proxy API's). */
const USER_ATTRS = { platform: "iPhone", version: "1.0" };

/** The longest presence note accepted. */
const MAX_NOTE = 200;

const INVALID_TOKEN = { "WWW-Authenticate": 'Bearer realm="MXFlex", error="invalid_token"' };

type Env = { Variables: { claims: TokenClaims; fields: Fields } };

/**
 * Orders extensions naturally: numeric ones by value, then the rest as strings.
 *
 * @example
 * ```ts
 * ["3100", "30", "ops", "3095"].sort(compareExt); // ["30", "3095", "3100", "ops"]
 * ```
 */
export function compareExt(a: string, b: string): number {
  const na = /^\d+$/.test(a), nb = /^\d+$/.test(b);
  if (na && nb) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  if (na !== nb) return na ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Builds the router. The events it streams come from the feed the composition root linked
 * to the MX (`FlexFeed`).
 *
 * @example
 * ```ts
 * app.route("/", flexRoutes({ mx, tokens, feed, issuer, log, guard, streamLimits, vault }));
 * ```
 */
export function flexRoutes(d: FlexDeps): Hono<Env> {
  const app = new Hono<Env>();
  const tokens = d.tokens;

  app.post("/api/login", async (c) => {
    const f = await readFields(c.req.raw);
    const login = stringField(f, "login");
    const password = passwordField(f);
    if (!login) throw new HttpError(400, "login required");
    checkPassword(password);
    const ip = clientIp(c);
    const attempt = await d.guard.begin(d.mx.name, login, ip);
    if (attempt.refused) {
      throw tooManyRequests("too many login attempts", attempt.refused.retryAfterSeconds);
    }
    let info;
    try {
      info = await d.mx.verifyUser(login, password, { platform: "CRM", version: "1.0" });
    } catch (err) {
      // Only a refused login counts; the error itself goes to onError.
      if (mxHttpError(err)?.status === 401) {
        await attempt.failed();
        d.log.info("login refused", { login, ip });
      } else {
        attempt.abandon();
      }
      throw err;
    }
    await attempt.succeeded();
    if (!info.ext) throw new HttpError(403, "account has no extension");
    const sn = d.mx.sn ?? info.sn;
    // The key of the token's sealed MX credential travels only inside the token.
    const ck = CredentialVault.newKey();
    const { token, expiresIn } = await d.issuer.issue({ sub: info.jid, ext: info.ext, mx: sn, ck });
    const { jti, exp } = await d.issuer.verify(token);
    // Live on every instance from here on (KV), and monitored here.
    await tokens.add({ jti, ext: info.ext, sub: info.jid, exp });
    try {
      await d.vault.seal(jti, ck, { login, secret: await loginSecret(password, info) }, exp);
    } catch (err) {
      await tokens.remove(jti, exp);
      throw err;
    }
    d.log.info("login", { login, ext: info.ext, ip });
    return jsonResponse({ token_type: "Bearer", access_token: token, expires_in: expiresIn });
  });

  // Everything below needs a token.
  app.use("/api/*", async (c, next) => {
    if (c.req.path === "/api/login" || c.req.path === "/api/openapi.yaml") return await next();
    const fields = await readFields(c.req.raw);
    c.set("fields", fields);
    const token = c.req.query("access_token") ||
      (typeof fields.access_token === "string" ? fields.access_token : "") ||
      bearer(c.req.header("authorization"));
    if (!token) {
      throw new HttpError(401, "unauthorized", { "WWW-Authenticate": 'Bearer realm="MXFlex"' });
    }
    let claims: TokenClaims;
    try {
      claims = await d.issuer.verify(token);
    } catch (err) {
      if (err instanceof AuthError) throw new HttpError(401, err.message, INVALID_TOKEN);
      throw err;
    }
    // Logout (on any instance) and expiry are decided by the shared live-token table.
    if (!(await tokens.isLive(claims.jti, claims.exp))) {
      throw new HttpError(401, "token revoked", INVALID_TOKEN);
    }
    c.set("claims", claims);
    await next();
  });

  app.get("/api/logout", async (c) => {
    const cl = c.get("claims");
    // The user session can no longer be opened with this token, even if it leaks later.
    await d.vault.wipe(cl.jti);
    await tokens.remove(cl.jti, cl.exp);
    return c.body(null, 204);
  });

  app.get("/api/events", (c) => {
    const cl = c.get("claims");
    const accept = c.req.header("accept") ?? "";
    if (!/text\/event-stream|\*\/\*/.test(accept)) throw new HttpError(406, "only sse support");
    if (!tokens.has(cl.jti)) throw new HttpError(403, "not monitored");
    // hono answers HEAD with the GET handler and drops the body without cancelling it: a
    // subscription made here would live on unread. HEAD gets the headers only.
    if (c.req.raw.method === "HEAD") return new Response(null, { headers: SSE_HEADERS });
    const ctl = new AbortController();
    const slot = tokens.attachStream(cl.jti, ctl, d.streamLimits);
    if (!slot.ok) {
      if (slot.full === "gone") throw new HttpError(403, "not monitored");
      throw tooManyRequests(`too many event streams for this ${slot.full}`, STREAM_RETRY_AFTER);
    }
    const stream = d.feed.subscribe(cl.ext, {
      lastEventId: c.req.header("last-event-id") ?? c.req.query("lastEventId") ?? null,
      signal: ctl.signal,
      onClose: slot.release,
    });
    return sseResponse(stream, { "Access-Control-Allow-Origin": "*" });
  });

  // The encoded body is built once per address-book version: contacts are read far more
  // often than they change, and building the JSON was most of a request's cost.
  let cached: { version: number; etag: string; body: string } | undefined;
  // Versions restart at 0 in every instance: the nonce keeps old ETags from matching.
  const etagNonce = crypto.randomUUID().slice(0, 8);
  app.get("/api/contacts", (c) => {
    const version = d.mx.contactsVersion;
    const etag = `W/"${etagNonce}-${d.mx.name}-${version}"`;
    if (cached?.version !== version) {
      // contacts() is the one "address book not loaded yet" check (503).
      const list = d.mx.contacts().sort((a, b) => compareExt(a.ext, b.ext)).map(flexContact);
      cached = { version, etag, body: formatJson({ contacts: list }) };
    }
    // After the not-loaded check, so `*` ("any current representation") never answers 304
    // for a book that is not there; weak comparison (RFC 9110 §13.1.2).
    if (notModified(c.req.header("if-none-match"), etag)) {
      return new Response(null, { status: 304, headers: { ETag: etag } });
    }
    return new Response(cached.body, {
      headers: { "Content-Type": JSON_CONTENT_TYPE, ETag: etag, "Cache-Control": "no-cache" },
    });
  });

  app.get("/api/calls", (c) => {
    return jsonResponse({ calls: d.feed.currentCalls(c.get("claims").ext) });
  });

  app.post("/api/call", async (c) => {
    const cl = c.get("claims");
    const f = c.get("fields");
    const to = stringField(f, "to");
    if (!to) throw new HttpError(400, "to field is empty");
    const from = stringField(f, "from") ?? cl.ext;
    // `from` may be any of the user's own phones (the seed's callback use), but not a
    // colleague's extension: that would ring someone else's desk phone.
    if (from !== cl.ext && d.mx.contacts().some((ct) => ct.ext === from && ct.jid !== cl.sub)) {
      throw new HttpError(403, "from is another user's extension");
    }
    return jsonResponse({ call: await d.mx.makeCall(from, to) });
  });

  const control = (action: CallAction) => async (c: Context<Env>) => {
    const cl = c.get("claims");
    const { callId, deviceId } = callTarget(c, cl);
    await d.mx.callControl(action, callId, deviceId);
    return c.body(null, 204);
  };
  app.post("/api/calls/:callId/hold", control("hold"));
  app.post("/api/calls/:callId/retrieve", control("retrieve"));
  app.post("/api/calls/:callId/answer", control("answer"));
  app.delete("/api/calls/:callId", control("clear"));
  app.post("/api/calls/:callId/transfer", async (c) => {
    const cl = c.get("claims");
    const { callId, deviceId } = callTarget(c, cl);
    const f = c.get("fields");
    const to = stringField(f, "to") ?? stringField(f, "destination");
    if (!to) throw new HttpError(400, "destination phone required");
    if (boolField(f, "consult")) {
      return jsonResponse(await d.mx.consultTransfer(callId, deviceId, to));
    }
    return jsonResponse({ call: await d.mx.transferCall(callId, deviceId, to) });
  });
  app.post("/api/calls/:callId/complete", async (c) => {
    const cl = c.get("claims");
    const { callId, deviceId } = callTarget(c, cl);
    let consult = intField(c.get("fields"), "consultCallId", 0, 1, 9_999_999_999);
    if (!consult) {
      // Default: the user's only other current call (the consultation call).
      const others = d.feed.currentCalls(cl.ext).filter((k) => k.callId !== callId);
      if (others.length !== 1) throw new HttpError(400, "consultCallId required");
      consult = others[0].callId;
    }
    await d.mx.completeTransfer(callId, consult, deviceId);
    return c.body(null, 204);
  });

  /**
   * Runs `fn` on a short session logged in as the token's user, with the credential sealed
   * for this token at login (closed afterwards unless `keepOpen`, see `MxSession.withUser`).
   * When the MX refuses that credential (the password changed since), it is wiped: the token
   * gets the same 401 as one without a credential, and the MX is not asked with it again
   * (an MX may lock an account after repeated failed logins).
   */
  const asUser = async <T>(
    c: Context<Env>,
    fn: (user: UserSession) => Promise<T>,
    keepOpen = false,
  ): Promise<T> => {
    const cl = c.get("claims");
    const cred = cl.ck ? await d.vault.open(cl.jti, cl.ck) : undefined;
    if (!cred) throw sessionUnavailable();
    try {
      return await d.mx.withUser(cred.login, cred.secret, fn, { attrs: USER_ATTRS, keepOpen });
    } catch (err) {
      // A 401 from the MX layer is its refusal of the login (lib/http/mx_errors.ts).
      if (err instanceof HttpError || mxHttpError(err)?.status !== 401) throw err;
      await d.vault.wipe(cl.jti);
      d.log.info("user session refused by the MX, credential dropped", { ext: cl.ext });
      throw sessionUnavailable();
    }
  };

  app.put("/api/presence", async (c) => {
    const f = c.get("fields");
    const status = stringField(f, "status") ?? "";
    if (!SETTABLE_PRESENCE.includes(status)) throw new HttpError(400, "bad presence status");
    // An empty or absent note clears it; stringField trims and refuses non-strings.
    const note = stringField(f, "note") ?? "";
    // deno-lint-ignore no-control-regex
    if (note.length > MAX_NOTE || /[\x00-\x1f\x7f]/.test(note)) {
      throw new HttpError(400, "bad presence note");
    }
    await asUser(c, (user) => user.setPresence(status, note));
    return c.body(null, 204);
  });

  app.get("/api/calllog", async (c) => {
    const ts = parseTimestamp(c.req.query("timestamp"));
    const log = await asUser(c, (user) => user.callLog(ts));
    return jsonResponse({ calllog: log.map(callLogJson) });
  });

  app.get("/api/voicemail", async (c) => {
    const list = await asUser(c, (user) => user.voicemails());
    return jsonResponse({ voicemails: list.map(voicemailJson) });
  });

  app.get("/api/voicemail/:id", async (c) => {
    const id = mailIdParam(c.req.param("id"));
    // The user session lives as long as the download's stream.
    return await serveVoicemail(c.req.raw, id, (fn) => asUser(c, fn, true), {
      log: d.log,
      idleMs: d.voicemailIdleMs,
    });
  });

  app.patch("/api/voicemail/:id", async (c) => {
    const id = mailIdParam(c.req.param("id"));
    const patch = voicemailPatch(c.get("fields"));
    // No such message: 404, as for GET (UserSession decides from the MX's refusal).
    const found = await asUser(c, (user) => user.updateVoicemail(id, patch));
    if (!found) throw voicemailNotFound();
    return c.body(null, 204);
  });

  app.delete("/api/voicemail/:id", async (c) => {
    const id = mailIdParam(c.req.param("id"));
    await asUser(c, (user) => user.deleteVoicemail(id));
    return c.body(null, 204);
  });

  return app;
}

/**
 * The login password: a string as given (not trimmed), a JSON number as its decimal text (a
 * PIN-like password), `""` when absent.
 * @throws {HttpError} 400 for another type (it used to be tried as an empty password)
 */
function passwordField(f: Fields): string {
  const v = f.password;
  if (v === undefined || v === null) return "";
  if (typeof v === "number") return String(v);
  if (typeof v !== "string") throw new HttpError(400, "password must be a string");
  return v;
}

/** The 401 of a token whose user session cannot be opened (no credential, or refused). */
function sessionUnavailable(): HttpError {
  return new HttpError(401, "user session unavailable, log in again", INVALID_TOKEN);
}

function bearer(h: string | undefined): string {
  const m = h?.match(/^Bearer\s+(\S+)\s*$/i);
  return m ? m[1] : "";
}

/** Call id from the path and device from the body (default and only allowed: own ext). */
function callTarget(c: Context<Env>, cl: TokenClaims): { callId: number; deviceId: string } {
  const raw = c.req.param("callId") ?? "";
  const callId = Number(raw);
  if (!/^\d{1,10}$/.test(raw) || !Number.isSafeInteger(callId)) {
    throw new HttpError(400, "bad call id");
  }
  const deviceId = stringField(c.get("fields"), "deviceId") ?? cl.ext;
  // A user controls only the legs of their own extension.
  if (deviceId !== cl.ext) throw new HttpError(403, "device is not yours");
  return { callId, deviceId };
}

/**
 * Whether an `If-None-Match` header matches `etag` by weak comparison (RFC 9110 §13.1.2):
 * `*`, or any listed tag equal to it once the `W/` prefixes are set aside.
 *
 * @example
 * ```ts
 * notModified('"a", W/"b"', 'W/"b"'); // true
 * ```
 */
export function notModified(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const weak = (t: string) => t.trim().replace(/^W\//, "");
  return header.split(",").some((t) => t.trim() === "*" || weak(t) === weak(etag));
}
