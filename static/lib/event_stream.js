// @ts-check
/**
 * The live event stream (`GET /api/events`, Server-Sent Events) with recovery.
 *
 * `EventSource` reconnects by itself after network errors and sends `Last-Event-ID`, so
 * the server replays what was missed. It gives up after an HTTP error status, and it
 * cannot tell why a reconnect failed (after a server restart the token is no longer
 * valid). So after every error the owner's `probe` asks the API (a 401 there ends the
 * session); if the browser gave up, the stream is reopened with exponential backoff
 * (1 s doubling to 30 s), passing the last event id as `lastEventId`.
 *
 * @example
 * ```js
 * const stream = openEventStream({
 *   token,
 *   events: ["DeliveredEvent"],
 *   onEvent: (name, data, at) => console.log(name, data, at),
 *   onState: (state) => console.log(state),
 *   probe: async () => {},
 *   lastEventId: () => "",
 *   saveLastEventId: () => {},
 * });
 * stream.close();
 * ```
 *
 * @module
 */

/** @typedef {"live" | "reconnecting"} StreamState */

/**
 * @typedef {object} StreamOptions
 * @property {string} token access token (sent as `access_token`: EventSource has no headers)
 * @property {readonly string[]} events SSE event names to listen for
 * @property {(name: string, data: unknown, at: number) => void} onEvent one parsed event
 *   and when it arrived (ms); events whose data is not JSON are skipped
 * @property {(state: StreamState) => void} onState the stream opened or failed
 * @property {() => Promise<unknown>} probe run after each error, before any reopen
 * @property {() => string} lastEventId id to resume after ("" for none)
 * @property {(id: string) => void} saveLastEventId called with each event's id
 */

/**
 * @typedef {object} EventStream
 * @property {() => void} reopen opens a fresh connection now (e.g. back from the
 *   back/forward cache)
 * @property {() => void} close stops for good (until {@link EventStream.reopen})
 */

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;

/**
 * Opens the stream.
 * @param {StreamOptions} o
 * @returns {EventStream}
 */
export function openEventStream(o) {
  /** @type {EventSource | undefined} */
  let es;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let delay = FIRST_DELAY_MS;

  const close = () => {
    clearTimeout(timer);
    es?.close();
    es = undefined;
  };

  const open = () => {
    close();
    const params = new URLSearchParams({ access_token: o.token });
    const last = o.lastEventId();
    if (last) params.set("lastEventId", last);
    const source = new EventSource(`/api/events?${params}`);
    es = source;
    source.onopen = () => {
      if (source !== es) return;
      delay = FIRST_DELAY_MS;
      o.onState("live");
    };
    source.onerror = () => {
      if (source !== es) return;
      o.onState("reconnecting");
      afterError(source);
    };
    for (const name of o.events) {
      source.addEventListener(name, (e) => {
        if (source !== es) return;
        const m = /** @type {MessageEvent<string>} */ (e);
        if (m.lastEventId) o.saveLastEventId(m.lastEventId);
        let data;
        try {
          data = JSON.parse(m.data);
        } catch {
          return;
        }
        o.onEvent(name, data, Date.now());
      });
    }
  };

  /** @param {EventSource} source */
  const afterError = async (source) => {
    try {
      await o.probe();
    } catch {
      // the probe reports what it must itself
    }
    if (source !== es || source.readyState !== EventSource.CLOSED) return;
    const wait = delay;
    delay = Math.min(delay * 2, MAX_DELAY_MS);
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (source === es) open();
    }, wait);
  };

  open();
  return { reopen: open, close };
}
