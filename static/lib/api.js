// @ts-check
/**
 * The Flex API over `fetch`: login and logout, and a client bound to one token for the
 * calls a signed-in page makes. Every failure is an {@link ApiError} whose message is the
 * server's `{"error": "..."}` text (or a plain sentence when the server cannot be reached).
 *
 * @example
 * ```js
 * const { token } = await login("dmitry", "secret");
 * const api = createApi(token, () => console.log("session over"));
 * const { contacts } = await api.contacts();
 * await api.call("3099");
 * await api.setPresence("Away", "back at 3");
 * audio.src = api.voicemailUrl("80"); // the token goes in the query: <audio> sends no headers
 * ```
 *
 * @module
 */

/**
 * A contact of the address book as `GET /api/contacts` sends it.
 * @typedef {{jid: string, status?: string, note?: string, firstName: string, lastName: string,
 *   ext: string, homePhone?: string, cellPhone?: string, email?: string, did?: string}} Contact
 */

/** Shown when the token is refused or runs out. */
export const SESSION_EXPIRED = "Your session has expired, please log in again.";

/** An HTTP error with the server's text; `status` 0 when the server could not be reached. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/**
 * The error text of a failed reply: the JSON `error` field, else the status line.
 * @param {Response} res
 * @returns {Promise<string>}
 */
export async function errorText(res) {
  try {
    const j = await res.json();
    if (j && typeof j.error === "string" && j.error) return j.error;
  } catch {
    // not JSON
  }
  return `${res.status} ${res.statusText || "error"}`.trim();
}

/**
 * @param {string} path
 * @param {RequestInit} init
 */
async function send(path, init) {
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, "Cannot reach the server.");
  }
}

/**
 * Logs in; the message of a refusal is written for the login form.
 * @param {string} user
 * @param {string} password
 * @returns {Promise<{token: string, expiresIn: number}>} `expiresIn` in seconds
 */
export async function login(user, password) {
  const res = await send("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ login: user, password }),
  });
  if (!res.ok) throw new ApiError(res.status, await loginErrorText(res));
  const body = await res.json();
  const token = String(body?.access_token ?? "");
  if (!token) throw new ApiError(res.status, "The server sent no token.");
  return { token, expiresIn: Number(body.expires_in) || 3600 };
}

/** @param {Response} res */
async function loginErrorText(res) {
  const msg = await errorText(res);
  switch (res.status) {
    case 401:
      return `Wrong login or password (${msg}).`;
    case 429: {
      const after = res.headers.get("Retry-After");
      return `Too many attempts; try again ${after ? `in ${after} s` : "later"}.`;
    }
    case 503:
    case 504:
      return `The phone system is not available right now (${msg}). Try again later.`;
    default:
      return msg;
  }
}

/**
 * Ends the token on the server; errors are ignored (the token is dropped locally anyway).
 * @param {string} token
 */
export async function logout(token) {
  try {
    const res = await fetch("/api/logout", { headers: { Authorization: `Bearer ${token}` } });
    await res.body?.cancel();
  } catch {
    // offline: nothing more to do
  }
}

/**
 * What `POST /api/calls/{id}/transfer` answers: the call at the destination (blind), or
 * the consultation call and the held one (`consult`).
 * @typedef {{call?: {callId?: number, deviceId?: string, called?: string},
 *   heldCall?: {callId?: number, deviceId?: string}}} TransferReply
 */

/**
 * @typedef {object} FlexApi
 * @property {() => Promise<{contacts: Contact[]}>} contacts the address book
 * @property {() => Promise<{calls?: import("./calls.js").CurrentCall[]}>} currentCalls the
 *   user's calls now (`GET /api/calls`)
 * @property {(since: number) => Promise<{calllog?: unknown[]}>} callLog call history
 *   from `since` (Unix seconds) on
 * @property {() => Promise<{voicemails?: unknown[]}>} voicemails
 * @property {(id: string, change: {read?: boolean, note?: string}) => Promise<void>}
 *   updateVoicemail sets the read flag and/or the note
 * @property {(id: string) => Promise<void>} deleteVoicemail
 * @property {(id: string) => string} voicemailUrl where an `<audio>` element plays it
 * @property {(status: string, note: string) => Promise<void>} setPresence the user's own
 *   presence (`PUT /api/presence`)
 * @property {(to: string) => Promise<{call?: {callId?: number}}>} call places a call from
 *   the user's extension
 * @property {(callId: number) => Promise<void>} answer
 * @property {(callId: number) => Promise<void>} hold
 * @property {(callId: number) => Promise<void>} retrieve
 * @property {(callId: number, to: string, consult?: boolean) => Promise<TransferReply>}
 *   transfer blind, or (`consult`) holds the call and calls `to` first
 * @property {(callId: number) => Promise<void>} completeTransfer connects held call
 *   `callId` with the consultation call
 * @property {(callId: number) => Promise<void>} hangup
 * @property {() => void} close stops reporting 401s (the session ended)
 */

/**
 * A client for one token. A 401 calls `onUnauthorized` once (unless closed) and rejects
 * with {@link SESSION_EXPIRED}.
 * @param {string} token
 * @param {() => void} onUnauthorized
 * @returns {FlexApi}
 */
export function createApi(token, onUnauthorized) {
  let open = true;
  /**
   * @param {string} method
   * @param {string} path
   * @param {Record<string, unknown>} [body]
   * @returns {Promise<any>} parsed JSON, or null for an empty reply
   */
  const request = async (method, path, body) => {
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
    if (body) headers["Content-Type"] = "application/json";
    const res = await send(path, {
      method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
    });
    if (res.status === 401) {
      await res.body?.cancel();
      if (open) {
        open = false;
        onUnauthorized();
      }
      throw new ApiError(401, SESSION_EXPIRED);
    }
    if (!res.ok) throw new ApiError(res.status, await errorText(res));
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  };
  /** @param {number} id */
  const callPath = (id) => `/api/calls/${encodeURIComponent(id)}`;
  /** @param {string} id */
  const vmPath = (id) => `/api/voicemail/${encodeURIComponent(id)}`;
  return {
    contacts: () => request("GET", "/api/contacts"),
    currentCalls: () => request("GET", "/api/calls"),
    callLog: (since) => request("GET", `/api/calllog?timestamp=${Math.floor(since)}`),
    voicemails: () => request("GET", "/api/voicemail"),
    updateVoicemail: (id, change) => request("PATCH", vmPath(id), change),
    deleteVoicemail: (id) => request("DELETE", vmPath(id)),
    voicemailUrl: (id) => `${vmPath(id)}?${new URLSearchParams({ access_token: token })}`,
    setPresence: (status, note) => request("PUT", "/api/presence", { status, note }),
    call: (to) => request("POST", "/api/call", { to }),
    answer: (id) => request("POST", `${callPath(id)}/answer`),
    hold: (id) => request("POST", `${callPath(id)}/hold`),
    retrieve: (id) => request("POST", `${callPath(id)}/retrieve`),
    transfer: (id, to, consult = false) =>
      request("POST", `${callPath(id)}/transfer`, consult ? { to, consult } : { to }),
    completeTransfer: (id) => request("POST", `${callPath(id)}/complete`),
    hangup: (id) => request("DELETE", callPath(id)),
    close() {
      open = false;
    },
  };
}
