/**
 * Flex API (`/api/…`, seeds/mxflex-api.md): JWT login against the MX, live call events over
 * SSE, contacts, click-to-call and call control.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { MxSession } from "../lib/mx/session.ts";
import type { TokenClaims, TokenMonitors } from "../lib/mx/token_monitors.ts";
import type { FlexFeed } from "../lib/mx/flex_events.ts";
import { AuthError, type TokenIssuer } from "../lib/auth/jwt.ts";
import type { RateLimiter } from "../lib/auth/rate_limit.ts";
import { sseResponse } from "../lib/sse/hub.ts";
import {
  formatJson,
  HttpError,
  JSON_CONTENT_TYPE,
  jsonResponse,
  tooManyRequests,
} from "../lib/http/errors.ts";
import { type Fields, readFields, stringField } from "../lib/http/body.ts";
import { mxHttpError } from "../lib/http/mx_errors.ts";
import { checkPassword } from "../lib/http/password_limit.ts";
import { clientIp } from "../lib/http/client_ip.ts";
import { type CallAction, flexContact } from "../lib/mx/mod.ts";
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
  /** Failed-login limiter keyed by login name. */
  loginLimiter: RateLimiter;
  /** Login limiter keyed by client address. */
  ipLimiter: RateLimiter;
}

type Env = { Variables: { claims: TokenClaims; fields: Fields } };

/** Orders extensions naturally: numeric ones by value, then the rest as strings. */
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
 * app.route("/", flexRoutes({ mx, tokens, feed, issuer, log, loginLimiter, ipLimiter }));
 * ```
 */
export function flexRoutes(d: FlexDeps): Hono<Env> {
  const app = new Hono<Env>();
  const tokens = d.tokens;

  app.post("/api/login", async (c) => {
    const f = await readFields(c.req.raw);
    const login = stringField(f, "login");
    const password = typeof f.password === "string" ? f.password : "";
    if (!login) throw new HttpError(400, "login required");
    checkPassword(password);
    const ip = clientIp(c);
    // Every attempt counts per address; only failures count per login name.
    for (const r of [d.ipLimiter.hit(ip), d.loginLimiter.check(login)]) {
      if (!r.allowed) throw tooManyRequests("too many login attempts", r.retryAfterSeconds);
    }
    let info;
    try {
      info = await d.mx.verifyUser(login, password, { platform: "CRM", version: "1.0" });
    } catch (err) {
      // Only a refused login counts against the name; the error itself goes to onError.
      if (mxHttpError(err)?.status === 401) {
        d.loginLimiter.hit(login);
        d.log.info("login refused", { login, ip });
      }
      throw err;
    }
    // A successful login clears the failures recorded for this name.
    d.loginLimiter.reset(login);
    if (!info.ext) throw new HttpError(403, "account has no extension");
    const sn = d.mx.sn ?? info.sn;
    const { token, expiresIn } = await d.issuer.issue({ sub: info.jid, ext: info.ext, mx: sn });
    const { jti, exp } = await d.issuer.verify(token);
    await tokens.add(jti, info.ext, exp);
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
      if (err instanceof AuthError) {
        throw new HttpError(401, err.message, {
          "WWW-Authenticate": 'Bearer realm="MXFlex", error="invalid_token"',
        });
      }
      throw err;
    }
    // Logout and expiry are authoritative here, whatever the revocation list remembers.
    if (!tokens.has(claims.jti)) {
      throw new HttpError(401, "token revoked", {
        "WWW-Authenticate": 'Bearer realm="MXFlex", error="invalid_token"',
      });
    }
    c.set("claims", claims);
    await next();
  });

  app.get("/api/logout", async (c) => {
    const cl = c.get("claims");
    d.issuer.revoke(cl.jti, cl.exp);
    await tokens.remove(cl.jti);
    return c.body(null, 204);
  });

  app.get("/api/events", (c) => {
    const cl = c.get("claims");
    const accept = c.req.header("accept") ?? "";
    if (!/text\/event-stream|\*\/\*/.test(accept)) throw new HttpError(406, "only sse support");
    if (!tokens.has(cl.jti)) throw new HttpError(403, "not monitored");
    const ctl = new AbortController();
    const release = tokens.attachStream(cl.jti, ctl);
    const stream = d.feed.subscribe(cl.ext, {
      lastEventId: c.req.header("last-event-id") ?? c.req.query("lastEventId") ?? null,
      signal: ctl.signal,
      onClose: release,
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
    if ((c.req.header("if-none-match") ?? "").split(",").some((t) => t.trim() === etag)) {
      return new Response(null, { status: 304, headers: { ETag: etag } });
    }
    if (cached?.version !== version) {
      // contacts() is the one "address book not loaded yet" check (503).
      const list = d.mx.contacts().sort((a, b) => compareExt(a.ext, b.ext)).map(flexContact);
      cached = { version, etag, body: formatJson({ contacts: list }) };
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
    const to = stringField(c.get("fields"), "to") ?? stringField(c.get("fields"), "destination");
    if (!to) throw new HttpError(400, "destination phone required");
    return jsonResponse({ call: await d.mx.transferCall(callId, deviceId, to) });
  });

  return app;
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
