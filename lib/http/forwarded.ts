/**
 * The client behind trusted reverse proxies: strict parsing of `Forwarded` (RFC 7239) and
 * `X-Forwarded-For`, and the walk from the connection's peer leftwards to the right-most hop
 * that is not a trusted proxy.
 *
 * Rules (docs/DECISIONS.md "Client address behind proxies"):
 * - A peer that is not a trusted proxy is the client; its headers are ignored.
 * - From a trusted peer, the hops are read right to left, skipping trusted proxies; the first
 *   untrusted address is the client. A hop that is no address (`unknown`, an obfuscated
 *   `_name`, an element without `for=`, garbage) ends the walk as {@link UNKNOWN_CLIENT}: the
 *   proxies themselves do not know who it was.
 * - A `Forwarded` header that breaks the RFC 7239 grammar (also: a parameter twice in one
 *   element, whitespace around `=` or `;`, non-ASCII) is not guessed at: the client is
 *   {@link UNKNOWN_CLIENT}.
 * - A trusted peer that sends neither header: {@link UNKNOWN_CLIENT} (a proxy that forwards
 *   without saying for whom must not make its clients look like the proxy, e.g. loopback).
 * - Both headers present but naming different clients: {@link UNKNOWN_CLIENT}. A proxy sets one
 *   of them and passes the other through from the client, which could forge it; the two agree
 *   only when nobody forged either.
 *
 * @example
 * ```ts
 * const trusted = TrustedProxies.parse(["127.0.0.1"]);
 * const h = new Headers({ "x-forwarded-for": "203.0.113.9, 198.51.100.7" });
 * resolveClient("127.0.0.1", h, trusted); // "198.51.100.7"
 * resolveClient("192.0.2.1", h, trusted); // "192.0.2.1" (not a trusted peer)
 * ```
 *
 * @module
 */
import { canonicalIp, type TrustedProxies } from "./trusted_proxies.ts";

/** The client address when it cannot be known. Never a loopback address. */
export const UNKNOWN_CLIENT = "unknown";

/** One hop: its canonical IP, or `undefined` when the hop names no address. */
export type Hop = string | undefined;

// RFC 7230 tchar.
const TCHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]$/;
const OBF = /^_[A-Za-z0-9._-]+$/;

/**
 * Parses a `Forwarded` header value into its hops' `for=` addresses, left to right; `null`
 * when the value breaks the RFC 7239 grammar.
 *
 * @example
 * ```ts
 * parseForwarded('for="[2001:db8::1]:4711";proto=https, for=192.0.2.60'); // ["2001:db8::1", "192.0.2.60"]
 * parseForwarded("for=192.0.2.60:80"); // null (a ':' needs quotes)
 * ```
 */
export function parseForwarded(value: string): Hop[] | null {
  const hops: Hop[] = [];
  const n = value.length;
  let i = 0;
  const ows = () => {
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
  };
  ows();
  for (;;) {
    // forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
    const params = new Map<string, string>();
    for (;;) {
      if (i < n && TCHAR.test(value[i])) {
        const start = i;
        while (i < n && TCHAR.test(value[i])) i++;
        const name = value.slice(start, i).toLowerCase();
        if (value[i] !== "=") return null;
        i++;
        let v: string;
        if (value[i] === '"') {
          i++;
          v = "";
          for (;;) {
            if (i >= n) return null;
            const c = value.charCodeAt(i);
            if (c === 0x22) break;
            if (c === 0x5c) {
              i++;
              if (i >= n) return null;
              const e = value.charCodeAt(i);
              if (!(e === 0x09 || (e >= 0x20 && e <= 0x7e))) return null;
              v += value[i++];
              continue;
            }
            if (!(c === 0x09 || (c >= 0x20 && c <= 0x7e))) return null;
            v += value[i++];
          }
          i++;
        } else {
          const start = i;
          while (i < n && TCHAR.test(value[i])) i++;
          if (i === start) return null;
          v = value.slice(start, i);
        }
        if (params.has(name)) return null; // RFC 7239 §4: at most once per element
        params.set(name, v);
      }
      if (value[i] !== ";") break;
      i++;
    }
    const f = params.get("for");
    hops.push(f === undefined ? undefined : nodeAddress(f));
    ows();
    if (i >= n) return hops;
    if (value[i] !== ",") return null;
    i++;
    ows();
  }
}

/** RFC 7239 §6 node: IPv4, "[" IPv6 "]", "unknown" or obfuscated, optional port. */
function nodeAddress(node: string): Hop {
  let name = node;
  let port: string | undefined;
  if (node.startsWith("[")) {
    const close = node.indexOf("]");
    if (close < 0) return undefined;
    name = node.slice(1, close);
    const rest = node.slice(close + 1);
    if (rest) {
      if (rest[0] !== ":") return undefined;
      port = rest.slice(1);
    }
    if (!name.includes(":")) return undefined; // brackets hold IPv6 only
  } else {
    const colon = node.indexOf(":");
    if (colon >= 0) {
      name = node.slice(0, colon);
      port = node.slice(colon + 1);
    }
    if (name.includes(":")) return undefined; // IPv6 must be bracketed
  }
  if (port !== undefined && !/^\d{1,5}$/.test(port) && !OBF.test(port)) return undefined;
  return canonicalIp(name); // "unknown" and obfuscated names are not addresses
}

/**
 * Parses an `X-Forwarded-For` value (comma-separated addresses, left to right). Entries may
 * carry a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`) or brackets; anything else is a hop
 * that names no address.
 *
 * @example
 * ```ts
 * parseXForwardedFor("203.0.113.9, ::ffff:198.51.100.7"); // ["203.0.113.9", "198.51.100.7"]
 * parseXForwardedFor("evil, 192.0.2.1");                  // [undefined, "192.0.2.1"]
 * ```
 */
export function parseXForwardedFor(value: string): Hop[] {
  return value.split(",").map((raw) => {
    const e = raw.trim();
    const m = e.match(/^\[([^\]]+)\](?::\d{1,5})?$/);
    if (m) return m[1].includes(":") ? canonicalIp(m[1]) : undefined;
    const v4port = e.match(/^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/);
    return canonicalIp(v4port ? v4port[1] : e);
  });
}

/** Walks hops right to left past trusted proxies. */
function walk(hops: Hop[], trusted: TrustedProxies): string {
  for (let i = hops.length - 1; i >= 0; i--) {
    const h = hops[i];
    if (h === undefined) return UNKNOWN_CLIENT;
    if (!trusted.has(h)) return h;
  }
  // Every hop is a trusted proxy: the left-most is the furthest anyone vouches for.
  return hops[0] ?? UNKNOWN_CLIENT;
}

/**
 * The client address of a request from `peer` (the connection's remote address).
 *
 * @example
 * ```ts
 * resolveClient(info.remoteAddr.hostname, req.headers, trusted);
 * ```
 */
export function resolveClient(peer: string, headers: Headers, trusted: TrustedProxies): string {
  const p = canonicalIp(peer) ?? UNKNOWN_CLIENT;
  if (!trusted.has(p)) return p;
  const fwd = headers.get("forwarded");
  const xff = headers.get("x-forwarded-for");
  let a: string | undefined;
  if (fwd !== null) {
    const hops = parseForwarded(fwd);
    a = hops ? walk(hops, trusted) : UNKNOWN_CLIENT;
  }
  if (xff !== null) {
    const b = walk(parseXForwardedFor(xff), trusted);
    if (a !== undefined && a !== b) return UNKNOWN_CLIENT;
    a = b;
  }
  return a ?? UNKNOWN_CLIENT;
}
