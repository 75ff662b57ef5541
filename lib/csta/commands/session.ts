/**
 * Session commands (mx-protocol §1.7, §2): `loginRequest` and its reply, the plain-password
 * retry rule, `logout`, keep-alive. The login exchange itself (hash, send, retry once) runs in
 * `CstaConnection.login`, which owns the invoke ids.
 *
 * @example
 * ```ts
 * loginRequest({ type: "Server", userName: "server", password: hashed });
 * ```
 *
 * @module
 */
import { el, type XmlElement } from "../xml.ts";
import { LoginFailedError, ProtocolError } from "../errors.ts";
import type { LoginInfo } from "../types.ts";
import { attr, opt, toInt } from "./_util.ts";

/**
 * Keep-alive payload, sent with invoke id 0000 (mx-protocol §1.7); no reply is expected.
 *
 * @example
 * ```ts
 * encodeFrame(KEEPALIVE_INVOKE_ID, KEEPALIVE);
 * ```
 */
export const KEEPALIVE = "<keepalive />";

/** Options of {@link loginRequest}. */
export interface LoginRequestOptions {
  /** Session type. */
  type: "User" | "Server" | "Mobile";
  /** MX login. */
  userName: string;
  /** Sent as given: callers hash it first (see `password.ts`) or pass a plain retry. */
  password: string;
  /** e.g. `CRM`, `iPhone`. */
  platform?: string;
  /** Client version, e.g. `1.0`. */
  version?: string;
  /** `Mobile`, `Desktop`, `CRM`. */
  clientType?: string;
  /** `SMS` for an SMS server session. */
  serverType?: string;
  /** e.g. `Audio|Video`. */
  loginCapab?: string;
  /** e.g. `Voicemail|CallRec`. */
  mediaCapab?: string;
}

/**
 * Builds a `loginRequest`. Attributes are written in the Go encoders' order (type,
 * clientType, serverType, platform, version, loginCapab, mediaCapab); empty ones are omitted.
 *
 * @example
 * ```ts
 * loginRequest({ type: "User", userName: "user_login", password: "W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
 *   platform: "CRM", version: "1.0" });
 * // <loginRequest type="User" platform="CRM" version="1.0"><userName>user_login</userName>
 * //   <pwd>W6ph5Mm5Pz8GgiULbPgzG37mj9g=&#xA;</pwd></loginRequest>   (one line)
 * ```
 */
export function loginRequest(o: LoginRequestOptions): string {
  return el(
    "loginRequest",
    {
      type: o.type,
      clientType: opt(o.clientType),
      serverType: opt(o.serverType),
      platform: opt(o.platform),
      version: opt(o.version),
      loginCapab: opt(o.loginCapab),
      mediaCapab: opt(o.mediaCapab),
    },
    el("userName", {}, o.userName),
    el("pwd", {}, o.password),
  ).xml;
}

/**
 * Reads the login reply.
 * @throws {LoginFailedError} for `loginFailed`
 * @throws {ProtocolError} for any other element ("unknown login response <name>")
 *
 * @example
 * ```ts
 * parseLoginReply(parseXml('<loginResponce Code="0" sn="631HC" apiversion="11" ext="273" userId="43892780322813134">Login OK</loginResponce>'));
 * // { sn: "631HC", ext: "273", jid: "43892780322813134", apiVersion: 11 }
 * ```
 */
export function parseLoginReply(e: XmlElement): LoginInfo {
  if (e.name === "loginFailed") {
    throw new LoginFailedError(
      toInt(attr(e, "Code", "code")),
      toInt(attr(e, "apiversion", "apiVersion")),
      attr(e, "sn"),
      e.text.trim() || "login failed",
    );
  }
  // "loginResponce" is the server's own spelling; the correct one is accepted just in case.
  if (e.name !== "loginResponce" && e.name !== "loginResponse") {
    throw new ProtocolError(`unknown login response ${e.name}`);
  }
  const jid = attr(e, "userId", "userID");
  const info: LoginInfo = {
    sn: attr(e, "sn"),
    ext: attr(e, "ext"),
    jid: jid === "0" ? "" : jid,
    apiVersion: toInt(attr(e, "apiversion", "apiVersion")),
  };
  if (e.attrs.softPhonePwd) info.softPhonePwd = e.attrs.softPhonePwd;
  if (e.attrs.mxCapab) info.mxCapab = e.attrs.mxCapab;
  return info;
}

/**
 * Whether a failed hashed login should be repeated once with the plain password: the rule
 * the originals intended but never executed (code 2 or 4 and API version above 2).
 *
 * @example
 * ```ts
 * shouldRetryPlain(new LoginFailedError(2, 11, "631HC", "")); // true
 * ```
 */
export function shouldRetryPlain(err: LoginFailedError): boolean {
  return (err.code === 2 || err.code === 4) && err.apiVersion > 2;
}

/**
 * `<logout/>`: sent before closing a session; no reply.
 *
 * @example
 * ```ts
 * logout(); // "<logout/>"
 * ```
 */
export function logout(): string {
  return "<logout/>";
}
