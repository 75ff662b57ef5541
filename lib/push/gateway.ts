/**
 * Talking to a push gateway over HTTP, the part the APNs and FCM senders share: the POST
 * itself, and what a throttling or failing gateway's answer means for a retry.
 *
 * @module
 */
import { errorText, type PushResult, redact } from "./types.ts";

/**
 * Parses an HTTP `Retry-After` header (delta seconds or HTTP date) into milliseconds from
 * `now`. Returns `undefined` when absent or unparsable.
 *
 * @example
 * ```ts
 * parseRetryAfter("2"); // 2000
 * ```
 */
export function parseRetryAfter(
  value: string | null,
  now: number = Date.now(),
): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * POSTs one push to a gateway, the part every sender shares: a 200 is `ok` (its body
 * discarded), a request that got no response is `retry` with the device token redacted from
 * the reason (Deno's fetch errors quote the URL, which may contain it); any other answer is
 * returned for the sender to classify.
 *
 * @example
 * ```ts
 * const res = await postPush(url, { headers, body, signal: AbortSignal.timeout(10_000) }, token);
 * if (!(res instanceof Response)) return res; // ok, or a transport failure to retry
 * if (isTransientStatus(res.status)) return retryResult(res, `${res.status}`);
 * ```
 */
export async function postPush(
  url: string,
  init: Omit<RequestInit, "method"> & { client?: Deno.HttpClient },
  token: string,
): Promise<PushResult | Response> {
  const { client, ...rest } = init;
  let res: Response;
  try {
    res = await fetch(url, { ...rest, method: "POST", ...(client ? { client } : {}) });
  } catch (e) {
    return {
      status: "retry",
      reason: `transport: ${errorText(e).replaceAll(token, redact(token))}`,
    };
  }
  if (res.status !== 200) return res;
  await res.body?.cancel();
  return { status: "ok" };
}

/**
 * Maps an HTTP status that signals a transient condition (429, 5xx) to a `retry` result.
 *
 * @example
 * ```ts
 * if (isTransientStatus(res.status)) return retryResult(res, `${res.status} ${reason}`);
 * ```
 */
export function retryResult(res: Response, reason: string): PushResult {
  return { status: "retry", reason, retryAfterMs: parseRetryAfter(res.headers.get("retry-after")) };
}

/**
 * True for statuses worth retrying: throttling and server errors.
 *
 * @example
 * ```ts
 * isTransientStatus(503); // true
 * isTransientStatus(410); // false
 * ```
 */
export function isTransientStatus(status: number): boolean {
  return status === 429 || status >= 500;
}
