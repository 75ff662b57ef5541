/**
 * MXFlex built-in web client: login, live calls over Server-Sent Events, contacts with
 * presence, click-to-call and call control. Plain ES module, no build step, no framework.
 *
 * Test hooks (stable): #login-form, #login-error, #login-notice, #contacts,
 * [data-testid=contact-<ext>], #dial-input, #dial-button, [data-testid=call-<callId>] with
 * data-state (originated | delivered | ringing | established | held | remote-held | cleared |
 * failed) and data-history, buttons [data-action=answer|hold|retrieve|transfer|hangup|call],
 * #conn-status with data-state (connecting | live | reconnecting | offline).
 *
 * @module
 */

const TOKEN_KEY = "mxflex.token";
const EXPIRES_KEY = "mxflex.expires";
const LAST_EVENT_KEY = "mxflex.lastEventId";
/** How long a cleared call stays visible (ms) before it is removed. */
const CLEARED_LINGER_MS = 4000;
/** Contacts are re-read this often (ms) to refresh presence. */
const CONTACTS_REFRESH_MS = 60_000;
/** Every call event the server may send. */
const CALL_EVENTS = [
  "OriginatedEvent",
  "DivertedEvent",
  "DeliveredEvent",
  "EstablishedEvent",
  "ConnectionClearedEvent",
  "HeldEvent",
  "RetrievedEvent",
  "TransferredEvent",
  "FailedEvent",
  "NetworkReachedEvent",
  "ServiceInitiatedEvent",
  "RecordingStateEvent",
];
const STATE_LABELS = {
  originated: "Dialling…",
  delivered: "Ringing…",
  ringing: "Incoming call",
  established: "Connected",
  held: "On hold",
  "remote-held": "Held by other party",
  cleared: "Call ended",
  failed: "Call failed",
};
const SESSION_EXPIRED = "Your session has expired, please log in again.";

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const ui = {
  loginView: $("login-view"),
  loginForm: /** @type {HTMLFormElement} */ ($("login-form")),
  loginInput: /** @type {HTMLInputElement} */ ($("login-input")),
  passwordInput: /** @type {HTMLInputElement} */ ($("password-input")),
  loginButton: /** @type {HTMLButtonElement} */ ($("login-button")),
  loginError: $("login-error"),
  loginNotice: $("login-notice"),
  appView: $("app-view"),
  sessionInfo: $("session-info"),
  connStatus: $("conn-status"),
  me: $("me"),
  logoutButton: $("logout-button"),
  dialForm: /** @type {HTMLFormElement} */ ($("dial-form")),
  dialInput: /** @type {HTMLInputElement} */ ($("dial-input")),
  dialButton: /** @type {HTMLButtonElement} */ ($("dial-button")),
  actionError: $("action-error"),
  calls: $("calls"),
  callsEmpty: $("calls-empty"),
  contacts: $("contacts"),
  contactsEmpty: $("contacts-empty"),
  contactsCount: $("contacts-count"),
  search: /** @type {HTMLInputElement} */ ($("contact-search")),
};

/**
 * @typedef {{jid: string, status?: string, note?: string, firstName: string, lastName: string,
 *   ext: string, homePhone?: string, cellPhone?: string, email?: string, did?: string}} Contact
 * @typedef {{id: number, state: string, history: string[], direction: "in" | "out",
 *   remote: string, remoteName: string, since: number, connectedAt: number, note: string,
 *   el?: HTMLLIElement, removeTimer?: number}} Call
 */

const session = {
  /** @type {string} */ token: "",
  /** @type {string} */ ext: "",
  /** @type {number} */ expiresAt: 0,
  /** @type {number | undefined} */ expiryTimer: undefined,
  /** @type {EventSource | undefined} */ events: undefined,
  /** @type {number | undefined} */ reconnectTimer: undefined,
  reconnectDelay: 1000,
  /** @type {number | undefined} */ contactsTimer: undefined,
  /** @type {number | undefined} */ clockTimer: undefined,
  /** Bumped on every login / logout so stale async work can tell it is stale. */
  epoch: 0,
};

/** @type {Contact[]} */
let contacts = [];
/** @type {Map<string, Contact>} */
const contactsByExt = new Map();
/** @type {Map<number, Call>} */
const calls = new Map();
/** Calls that ended (so a late reply or replayed event does not resurrect them). */
const ended = new Set();

// ---------------------------------------------------------------------------------------
// HTTP

/** An HTTP error with the server's `{"error": "..."}` text. */
class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {Response} [res]
   */
  constructor(status, message, res) {
    super(message);
    this.status = status;
    this.res = res;
  }
}

/**
 * Calls the Flex API with the session token. A 401 ends the session.
 * @param {string} method
 * @param {string} path
 * @param {Record<string, unknown>} [body]
 * @returns {Promise<any>} parsed JSON, or null for an empty reply
 */
async function api(method, path, body) {
  const epoch = session.epoch;
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json", Authorization: `Bearer ${session.token}` };
  if (body) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  } catch {
    throw new ApiError(0, "Cannot reach the server.");
  }
  if (res.status === 401 && epoch === session.epoch && session.token) {
    sessionExpired();
    throw new ApiError(401, SESSION_EXPIRED, res);
  }
  if (!res.ok) throw new ApiError(res.status, await errorText(res), res);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/**
 * The error message of a failed reply.
 * @param {Response} res
 */
async function errorText(res) {
  try {
    const j = await res.json();
    if (j && typeof j.error === "string" && j.error) return j.error;
  } catch {
    // not JSON
  }
  return `${res.status} ${res.statusText || "error"}`.trim();
}

// ---------------------------------------------------------------------------------------
// Session

/**
 * Payload of a JWT (no verification: the server does that).
 * @param {string} token
 * @returns {{ext?: string, exp?: number, sub?: string}}
 */
function jwtPayload(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const pad = part + "===".slice((part.length + 3) % 4);
    return JSON.parse(atob(pad));
  } catch {
    return {};
  }
}

/** Reads a stored session; true when one is there and not yet expired. */
function restoreSession() {
  const token = sessionStorage.getItem(TOKEN_KEY) ?? "";
  const expiresAt = Number(sessionStorage.getItem(EXPIRES_KEY) ?? "0");
  if (!token) return false;
  if (expiresAt && expiresAt <= Date.now()) {
    clearStoredSession();
    showLogin(SESSION_EXPIRED);
    return false;
  }
  session.token = token;
  session.expiresAt = expiresAt;
  return true;
}

function clearStoredSession() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  sessionStorage.removeItem(LAST_EVENT_KEY);
}

/**
 * Login form submit.
 * @param {SubmitEvent} e
 */
async function onLogin(e) {
  e.preventDefault();
  const login = ui.loginInput.value.trim();
  const password = ui.passwordInput.value;
  hide(ui.loginError);
  if (!login) {
    showText(ui.loginError, "Enter your login.");
    ui.loginInput.focus();
    return;
  }
  ui.loginButton.disabled = true;
  ui.loginButton.textContent = "Signing in…";
  try {
    let res;
    try {
      res = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ login, password }),
      });
    } catch {
      throw new Error("Cannot reach the server.");
    }
    if (!res.ok) throw new Error(await loginErrorText(res));
    const body = await res.json();
    const token = String(body.access_token ?? "");
    if (!token) throw new Error("The server sent no token.");
    const expiresIn = Number(body.expires_in) || 3600;
    clearStoredSession();
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + expiresIn * 1000));
    ui.passwordInput.value = "";
    hide(ui.loginNotice);
    session.token = token;
    session.expiresAt = Date.now() + expiresIn * 1000;
    await enterApp();
  } catch (err) {
    showText(ui.loginError, err instanceof Error ? err.message : String(err));
  } finally {
    ui.loginButton.disabled = false;
    ui.loginButton.textContent = "Sign in";
  }
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

/** Shows the main view and starts contacts, events and timers. */
async function enterApp() {
  session.epoch++;
  const epoch = session.epoch;
  const claims = jwtPayload(session.token);
  session.ext = String(claims.ext ?? "");
  if (claims.exp) {
    const fromClaim = claims.exp * 1000;
    if (!session.expiresAt || fromClaim < session.expiresAt) session.expiresAt = fromClaim;
  }
  ui.me.textContent = session.ext ? `Ext ${session.ext}` : "";
  ui.loginView.hidden = true;
  ui.appView.hidden = false;
  ui.sessionInfo.hidden = false;
  armExpiryTimer();
  setConn("connecting", "Connecting…");
  try {
    await loadContacts();
  } catch (err) {
    if (epoch !== session.epoch) return;
    if (err instanceof ApiError && err.status !== 401) showActionError(err.message);
  }
  if (epoch !== session.epoch) return;
  openEvents();
  session.contactsTimer = setInterval(() => {
    loadContacts().catch(() => {});
  }, CONTACTS_REFRESH_MS);
  session.clockTimer = setInterval(tickDurations, 1000);
}

function armExpiryTimer() {
  clearTimeout(session.expiryTimer);
  if (!session.expiresAt) return;
  // setTimeout's limit is ~24.8 days; tokens live far less.
  const ms = Math.max(0, Math.min(session.expiresAt - Date.now(), 2 ** 31 - 1));
  session.expiryTimer = setTimeout(sessionExpired, ms);
}

/** Token expired or refused: back to the login form with a notice. */
function sessionExpired() {
  leaveApp();
  clearStoredSession();
  showLogin(SESSION_EXPIRED);
}

/** The user logs out. */
async function onLogout() {
  const token = session.token;
  leaveApp();
  clearStoredSession();
  showLogin("");
  try {
    await fetch("/api/logout", { headers: { Authorization: `Bearer ${token}` } });
  } catch {
    // the token is gone locally either way
  }
}

/** Stops everything that belongs to the current session. */
function leaveApp() {
  session.epoch++;
  session.token = "";
  session.ext = "";
  session.expiresAt = 0;
  clearTimeout(session.expiryTimer);
  clearTimeout(session.reconnectTimer);
  clearInterval(session.contactsTimer);
  clearInterval(session.clockTimer);
  session.events?.close();
  session.events = undefined;
  session.reconnectDelay = 1000;
  for (const c of calls.values()) clearTimeout(c.removeTimer);
  calls.clear();
  ended.clear();
  ui.calls.replaceChildren();
  updateCallsEmpty();
  setConn("offline", "Offline");
}

/** @param {string} notice */
function showLogin(notice) {
  ui.appView.hidden = true;
  ui.sessionInfo.hidden = true;
  ui.loginView.hidden = false;
  hide(ui.loginError);
  if (notice) showText(ui.loginNotice, notice);
  else hide(ui.loginNotice);
  ui.loginInput.focus();
}

// ---------------------------------------------------------------------------------------
// Events (SSE)

function openEvents() {
  clearTimeout(session.reconnectTimer);
  session.events?.close();
  const params = new URLSearchParams({ access_token: session.token });
  const last = sessionStorage.getItem(LAST_EVENT_KEY);
  if (last) params.set("lastEventId", last);
  const es = new EventSource(`/api/events?${params}`);
  session.events = es;
  const epoch = session.epoch;
  es.onopen = () => {
    if (es !== session.events) return;
    session.reconnectDelay = 1000;
    setConn("live", "Live");
  };
  es.onerror = () => {
    if (es !== session.events || epoch !== session.epoch) return;
    setConn("reconnecting", "Reconnecting…");
    probeAfterError(es, epoch);
  };
  for (const name of CALL_EVENTS) {
    es.addEventListener(name, (e) => {
      if (es !== session.events) return;
      const me = /** @type {MessageEvent} */ (e);
      if (me.lastEventId) sessionStorage.setItem(LAST_EVENT_KEY, me.lastEventId);
      let data;
      try {
        data = JSON.parse(me.data);
      } catch {
        return;
      }
      onCallEvent(name, data);
    });
  }
}

/**
 * The stream failed. EventSource retries by itself after network errors, but not after an
 * HTTP error status; and after a server restart the token is no longer valid, which it
 * cannot tell us. So ask the API: a 401 ends the session; otherwise reopen the stream if
 * the browser gave up.
 * @param {EventSource} es
 * @param {number} epoch
 */
async function probeAfterError(es, epoch) {
  try {
    await loadContacts();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // sessionExpired() ran
  }
  if (epoch !== session.epoch || es !== session.events) return;
  if (es.readyState === EventSource.CLOSED) {
    const delay = session.reconnectDelay;
    session.reconnectDelay = Math.min(delay * 2, 30_000);
    clearTimeout(session.reconnectTimer);
    session.reconnectTimer = setTimeout(() => {
      if (epoch === session.epoch) openEvents();
    }, delay);
  }
}

/**
 * @param {"idle" | "connecting" | "live" | "reconnecting" | "offline"} state
 * @param {string} text
 */
function setConn(state, text) {
  ui.connStatus.dataset.state = state;
  ui.connStatus.textContent = text;
}

// ---------------------------------------------------------------------------------------
// Calls

/**
 * Applies one call event.
 * @param {string} name
 * @param {Record<string, any>} d
 */
function onCallEvent(name, d) {
  const id = Number(d.callId);
  if (!Number.isFinite(id)) return;
  if (d.deviceId && session.ext && String(d.deviceId) !== session.ext) return;
  const me = session.ext;
  let c = calls.get(id);
  const isEnd = name === "ConnectionClearedEvent" || name === "FailedEvent" ||
    (name === "TransferredEvent" && d.transferringDevice === me);
  if (!c) {
    if (isEnd || ended.has(id)) return;
    c = newCall(id);
  }
  if (c.state === "cleared" || c.state === "failed") return;

  switch (name) {
    case "OriginatedEvent":
      c.direction = "out";
      setRemote(c, d.calledDevice);
      setState(c, "originated");
      break;
    case "DivertedEvent":
      if (d.newDestination && d.newDestination !== me) {
        c.note = `Forwarded to ${d.newDestination}`;
        if (c.direction === "out") setRemote(c, d.newDestination);
      }
      break;
    case "DeliveredEvent": {
      const incoming = d.alertingDevice === me ||
        (d.calledDevice === me && d.callingDevice !== me);
      if (incoming && c.state !== "originated") {
        c.direction = "in";
        setRemote(c, d.callingDevice);
        setState(c, "ringing");
      } else {
        c.direction = "out";
        setRemote(c, d.alertingDevice || d.calledDevice);
        setState(c, "delivered");
      }
      break;
    }
    case "EstablishedEvent":
      if (c.history.length === 0) c.direction = d.callingDevice === me ? "out" : "in";
      if (c.direction === "out") {
        setRemote(c, d.answeringDevice || d.calledDevice, d.answeringDisplayName);
      } else {
        setRemote(c, d.callingDevice, d.callingDisplayName);
      }
      if (!c.connectedAt) c.connectedAt = Date.now();
      setState(c, "established");
      break;
    case "HeldEvent":
      setState(c, d.holdingDevice && d.holdingDevice !== me ? "remote-held" : "held");
      break;
    case "RetrievedEvent":
      if (!c.connectedAt) c.connectedAt = Date.now();
      setState(c, "established");
      break;
    case "TransferredEvent":
      if (d.transferringDevice === me) {
        c.note = d.transferredToDevice ? `Transferred to ${d.transferredToDevice}` : "Transferred";
        endCall(c, "cleared");
        return;
      }
      if (d.transferredToDevice && d.transferredToDevice !== me) {
        setRemote(c, d.transferredToDevice);
      }
      break;
    case "ServiceInitiatedEvent":
      c.direction = "out";
      if (!c.state) setState(c, "originated");
      break;
    case "NetworkReachedEvent":
      if (!c.note) c.note = "Outside line";
      break;
    case "RecordingStateEvent":
      c.note = d.recIsActive ? "Recording" : c.note === "Recording" ? "" : c.note;
      break;
    case "ConnectionClearedEvent":
      endCall(c, "cleared");
      return;
    case "FailedEvent":
      if (d.cause) c.note = `Failed: ${d.cause}`;
      endCall(c, "failed");
      return;
  }
  // An event that says nothing about the state of a call we never saw (e.g. a replayed
  // RecordingStateEvent): nothing to show.
  if (!c.state) {
    calls.delete(id);
    return;
  }
  render(c);
}

/** @param {number} id */
function newCall(id) {
  /** @type {Call} */
  const c = {
    id,
    state: "",
    history: [],
    direction: "out",
    remote: "",
    remoteName: "",
    since: Date.now(),
    connectedAt: 0,
    note: "",
  };
  calls.set(id, c);
  return c;
}

/**
 * @param {Call} c
 * @param {string} state
 */
function setState(c, state) {
  c.state = state;
  if (c.history[c.history.length - 1] !== state) c.history.push(state);
}

/**
 * @param {Call} c
 * @param {string | undefined} number
 * @param {string} [displayName]
 */
function setRemote(c, number, displayName) {
  if (number) c.remote = String(number);
  const known = contactName(c.remote);
  if (known) c.remoteName = known;
  else if (displayName && displayName !== c.remote) c.remoteName = String(displayName);
}

/**
 * @param {Call} c
 * @param {"cleared" | "failed"} state
 */
function endCall(c, state) {
  setState(c, state);
  ended.add(c.id);
  render(c);
  c.el?.classList.add("ending");
  c.removeTimer = setTimeout(() => {
    calls.delete(c.id);
    c.el?.remove();
    updateCallsEmpty();
  }, CLEARED_LINGER_MS);
}

/** @param {Call} c */
function render(c) {
  if (!c.el) {
    const li = document.createElement("li");
    li.className = "call";
    li.dataset.testid = `call-${c.id}`;
    li.dataset.callId = String(c.id);
    li.innerHTML = `
      <div class="call-main">
        <span class="call-dir" aria-hidden="true"></span>
        <div class="call-who">
          <div class="call-name"></div>
          <div class="call-number"></div>
        </div>
        <div class="call-status">
          <span class="call-state"></span>
          <span class="call-time"></span>
        </div>
      </div>
      <div class="call-note"></div>
      <div class="call-actions"></div>`;
    li.querySelector(".call-actions")?.addEventListener("click", onCallAction);
    c.el = li;
    ui.calls.prepend(li);
  }
  const li = c.el;
  li.dataset.state = c.state;
  li.dataset.direction = c.direction;
  li.dataset.history = c.history.join(" ");
  li.dataset.remote = c.remote;
  setText(li, ".call-dir", c.direction === "in" ? "↙" : "↗");
  setText(li, ".call-name", c.remoteName || c.remote || "Unknown");
  setText(li, ".call-number", c.remoteName ? c.remote : "");
  setText(li, ".call-state", STATE_LABELS[/** @type {keyof STATE_LABELS} */ (c.state)] ?? c.state);
  setText(li, ".call-note", c.note);
  updateDuration(c);

  const actions = /** @type {HTMLElement} */ (li.querySelector(".call-actions"));
  const want = actionsFor(c);
  const have = [...actions.querySelectorAll("button")].map((b) => b.dataset.action).join(",");
  if (have !== want.join(",")) {
    actions.replaceChildren(...want.map((a) => actionButton(a, c)));
  }
  updateCallsEmpty();
}

/**
 * Buttons for a call in its state.
 * @param {Call} c
 * @returns {string[]}
 */
function actionsFor(c) {
  switch (c.state) {
    case "ringing":
      return ["answer", "hangup"];
    case "originated":
    case "delivered":
    case "remote-held":
      return ["hangup"];
    case "established":
      return ["hold", "transfer", "hangup"];
    case "held":
      return ["retrieve", "transfer", "hangup"];
    default:
      return [];
  }
}

const ACTION_LABELS = {
  answer: "Answer",
  hold: "Hold",
  retrieve: "Resume",
  transfer: "Transfer",
  hangup: "Hang up",
};

/**
 * @param {string} action
 * @param {Call} c
 */
function actionButton(action, c) {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.action = action;
  b.className = `act act-${action}`;
  b.textContent = ACTION_LABELS[/** @type {keyof ACTION_LABELS} */ (action)] ?? action;
  b.setAttribute("aria-label", `${b.textContent} call ${c.remoteName || c.remote}`);
  return b;
}

/** @param {Event} e */
async function onCallAction(e) {
  const b = /** @type {HTMLElement} */ (e.target).closest("button");
  if (!b) return;
  const li = /** @type {HTMLElement} */ (b.closest("li"));
  const id = Number(li.dataset.callId);
  const action = b.dataset.action ?? "";
  /** @type {Record<string, unknown> | undefined} */
  let body;
  let method = "POST";
  let path = `/api/calls/${id}/${action}`;
  if (action === "hangup") {
    method = "DELETE";
    path = `/api/calls/${id}`;
  } else if (action === "transfer") {
    const to = globalThis.prompt("Transfer the call to which number?", "")?.trim();
    if (!to) return;
    body = { to };
  }
  hide(ui.actionError);
  /** @type {HTMLButtonElement} */ (b).disabled = true;
  try {
    await api(method, path, body);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      showActionError(
        `${ACTION_LABELS[/** @type {keyof ACTION_LABELS} */ (action)]} failed: ${
          err instanceof Error ? err.message : err
        }`,
      );
    }
  } finally {
    /** @type {HTMLButtonElement} */ (b).disabled = false;
  }
}

/**
 * Places a call from the user's extension.
 * @param {string} to
 * @param {string} [name]
 */
async function placeCall(to, name) {
  to = to.trim();
  if (!to) return;
  hide(ui.actionError);
  ui.dialButton.disabled = true;
  try {
    const res = await api("POST", "/api/call", { to });
    const id = Number(res?.call?.callId);
    // Events normally arrive first; if not, show the call at once.
    if (Number.isFinite(id) && !calls.has(id) && !ended.has(id)) {
      const c = newCall(id);
      c.direction = "out";
      setRemote(c, to);
      if (name && !c.remoteName) c.remoteName = name;
      setState(c, "originated");
      render(c);
    }
    ui.dialInput.value = "";
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      showActionError(`Call failed: ${err instanceof Error ? err.message : err}`);
    }
  } finally {
    ui.dialButton.disabled = false;
  }
}

function tickDurations() {
  for (const c of calls.values()) updateDuration(c);
}

/** @param {Call} c */
function updateDuration(c) {
  if (!c.el) return;
  const live = c.connectedAt && (c.state === "established" || c.state === "held" ||
    c.state === "remote-held");
  setText(c.el, ".call-time", live ? clock(Date.now() - c.connectedAt) : "");
}

/** @param {number} ms */
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const mm = String(m % 60).padStart(h ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function updateCallsEmpty() {
  ui.callsEmpty.hidden = calls.size > 0;
}

// ---------------------------------------------------------------------------------------
// Contacts

async function loadContacts() {
  const body = await api("GET", "/api/contacts");
  const list = Array.isArray(body?.contacts) ? body.contacts : [];
  contacts = list;
  contactsByExt.clear();
  for (const c of list) if (c.ext) contactsByExt.set(String(c.ext), c);
  renderContacts();
  // Names may now resolve for calls that arrived first.
  for (const c of calls.values()) {
    const n = contactName(c.remote);
    if (n && n !== c.remoteName) {
      c.remoteName = n;
      render(c);
    }
  }
}

/** @param {string} number */
function contactName(number) {
  const c = contactsByExt.get(number);
  return c ? fullName(c) : "";
}

/** @param {Contact} c */
function fullName(c) {
  return [c.firstName, c.lastName].filter(Boolean).join(" ") || c.ext;
}

/** @param {string | undefined} status */
function presenceClass(status) {
  const s = (status ?? "").toLowerCase();
  if (s === "available" || s === "online") return "on";
  if (!s || s === "loggedout" || s === "offline") return "off";
  return "busy";
}

function renderContacts() {
  const q = ui.search.value.trim().toLowerCase();
  const shown = contacts.filter((c) => !q || matches(c, q));
  const items = shown.map((c) => contactItem(c));
  ui.contacts.replaceChildren(...items);
  ui.contactsEmpty.hidden = shown.length > 0 || contacts.length === 0;
  ui.contactsCount.textContent = q ? `${shown.length} / ${contacts.length}` : `${contacts.length}`;
}

/**
 * @param {Contact} c
 * @param {string} q lower-case query
 */
function matches(c, q) {
  const digits = q.replace(/[^\d]/g, "");
  const hay = [fullName(c), c.ext, c.email, c.note, c.status].join(" ").toLowerCase();
  if (hay.includes(q)) return true;
  if (!digits) return false;
  return [c.ext, c.cellPhone, c.homePhone, c.did].some((p) =>
    (p ?? "").replace(/[^\d]/g, "").includes(digits)
  );
}

/** @param {Contact} c */
function contactItem(c) {
  const li = document.createElement("li");
  li.className = "contact";
  li.dataset.testid = `contact-${c.ext}`;
  li.dataset.ext = c.ext;
  const self = c.ext === session.ext;
  li.innerHTML = `
    <span class="dot" aria-hidden="true"></span>
    <div class="contact-who">
      <div class="contact-name"></div>
      <div class="contact-meta"></div>
    </div>
    <div class="contact-actions"></div>`;
  const dot = /** @type {HTMLElement} */ (li.querySelector(".dot"));
  dot.classList.add(presenceClass(c.status));
  dot.title = c.status ?? "Unknown";
  li.dataset.presence = c.status ?? "";
  setText(li, ".contact-name", fullName(c) + (self ? " (you)" : ""));
  const meta = [`Ext ${c.ext}`];
  if (c.cellPhone) meta.push(c.cellPhone);
  if (c.note) meta.push(c.note);
  else if (c.status && presenceClass(c.status) !== "off") meta.push(c.status);
  setText(li, ".contact-meta", meta.join(" · "));
  const actions = /** @type {HTMLElement} */ (li.querySelector(".contact-actions"));
  if (!self) {
    const call = document.createElement("button");
    call.type = "button";
    call.className = "act act-call";
    call.dataset.action = "call";
    call.textContent = "Call";
    call.setAttribute("aria-label", `Call ${fullName(c)} (${c.ext})`);
    call.addEventListener("click", () => placeCall(c.ext, fullName(c)));
    actions.append(call);
    if (c.cellPhone) {
      const cell = document.createElement("button");
      cell.type = "button";
      cell.className = "act act-call-cell";
      cell.dataset.action = "call-cell";
      cell.textContent = "Mobile";
      cell.title = `Call ${c.cellPhone}`;
      cell.setAttribute("aria-label", `Call ${fullName(c)} on mobile ${c.cellPhone}`);
      cell.addEventListener("click", () => placeCall(String(c.cellPhone), fullName(c)));
      actions.append(cell);
    }
  }
  return li;
}

// ---------------------------------------------------------------------------------------
// Helpers

/**
 * @param {ParentNode} root
 * @param {string} sel
 * @param {string} text
 */
function setText(root, sel, text) {
  const el = root.querySelector(sel);
  if (el && el.textContent !== text) el.textContent = text;
}

/**
 * @param {HTMLElement} el
 * @param {string} text
 */
function showText(el, text) {
  el.textContent = text;
  el.hidden = false;
}

/** @param {HTMLElement} el */
function hide(el) {
  el.hidden = true;
  el.textContent = "";
}

/** @param {string} text */
function showActionError(text) {
  showText(ui.actionError, text);
}

// ---------------------------------------------------------------------------------------
// Start

ui.loginForm.addEventListener("submit", onLogin);
ui.logoutButton.addEventListener("click", onLogout);
ui.dialForm.addEventListener("submit", (e) => {
  e.preventDefault();
  placeCall(ui.dialInput.value);
});
ui.search.addEventListener("input", renderContacts);
globalThis.addEventListener("pagehide", () => session.events?.close());
globalThis.addEventListener("pageshow", (e) => {
  // Back/forward cache: the stream was closed on pagehide.
  if (/** @type {PageTransitionEvent} */ (e).persisted && session.token) openEvents();
});

if (restoreSession()) {
  enterApp();
} else if (ui.loginNotice.hidden) {
  showLogin("");
}
