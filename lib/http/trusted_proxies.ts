/**
 * Client addresses: strict parsing to one canonical spelling, and the set of trusted reverse
 * proxies (`trustedProxies`: addresses and CIDR ranges, IPv4 and IPv6) matched with `ipaddr.js`.
 *
 * Canonical form: IPv4 as a dotted quad, IPv6 compressed in lower case (RFC 5952), an
 * IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as a dual-stack socket reports IPv4 peers) as
 * its IPv4 address, so one client has one spelling in rate-limit keys, logs and the `/metrics`
 * loopback check. Only four-part decimal IPv4 is an address: `0x7f.1`, `127.1` and `010.0.0.1`
 * (which C's `inet_aton` would read in other ways) are not.
 *
 * @example
 * ```ts
 * const trusted = TrustedProxies.parse(["127.0.0.1", "10.0.0.0/8", "fd00::/8"]);
 * trusted.has(canonicalIp("::ffff:10.1.2.3")!); // true
 * canonicalIp("2001:DB8:0::1");                  // "2001:db8::1"
 * ```
 *
 * @module
 */
import ipaddr from "ipaddr.js";

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

/** Parses an address strictly; IPv4-mapped IPv6 becomes IPv4. */
function parseAddr(s: string): Addr | undefined {
  if (s.includes(":")) {
    // A zone (fe80::1%eth0) names an interface of the sender's host: not a client identity.
    if (s.includes("%") || !ipaddr.IPv6.isValid(s)) return undefined;
    const v6 = ipaddr.IPv6.parse(s);
    return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
  }
  return ipaddr.IPv4.isValidFourPartDecimal(s) ? ipaddr.IPv4.parse(s) : undefined;
}

/**
 * The canonical spelling of an IP address, or `undefined` when `s` is not exactly one.
 *
 * @example
 * ```ts
 * canonicalIp("::FFFF:127.0.0.1"); // "127.0.0.1"
 * canonicalIp("127.1");            // undefined
 * ```
 */
export function canonicalIp(s: string): string | undefined {
  return parseAddr(s)?.toString();
}

/**
 * The addresses and ranges whose `Forwarded` / `X-Forwarded-For` headers are believed.
 *
 * @example
 * ```ts
 * const t = TrustedProxies.parse(["192.168.0.0/16", "::1"]);
 * t.has("192.168.7.1"); // true
 * t.has("8.8.8.8");     // false
 * ```
 */
export class TrustedProxies {
  #ranges: [Addr, number][];

  private constructor(ranges: [Addr, number][]) {
    this.#ranges = ranges;
  }

  /** Nothing trusted: forwarding headers are ignored (the default). */
  static readonly NONE: TrustedProxies = new TrustedProxies([]);

  /**
   * Builds the set from addresses and CIDR ranges.
   *
   * @throws {RangeError} naming the first entry that is neither
   */
  static parse(entries: readonly string[]): TrustedProxies {
    const ranges: [Addr, number][] = [];
    for (const raw of entries) {
      const e = raw.trim();
      const slash = e.indexOf("/");
      const addr = parseAddr(slash < 0 ? e : e.slice(0, slash));
      const bitsText = slash < 0 ? "" : e.slice(slash + 1);
      if (!addr || (slash >= 0 && !/^\d{1,3}$/.test(bitsText))) {
        throw new RangeError(`not an address or CIDR range: ${JSON.stringify(raw)}`);
      }
      const max = addr.kind() === "ipv4" ? 32 : 128;
      let bits = slash < 0 ? max : Number(bitsText);
      // An IPv4-mapped range (::ffff:10.0.0.0/104) was turned into IPv4 by parseAddr.
      if (addr.kind() === "ipv4" && e.slice(0, Math.max(0, slash)).includes(":")) bits -= 96;
      if (bits < 0 || bits > max) {
        throw new RangeError(`prefix length out of range: ${JSON.stringify(raw)}`);
      }
      ranges.push([addr, bits]);
    }
    return new TrustedProxies(ranges);
  }

  /** Number of configured entries. */
  get size(): number {
    return this.#ranges.length;
  }

  /** Whether `ip` (any spelling {@link canonicalIp} accepts) is a trusted proxy. */
  has(ip: string): boolean {
    if (this.#ranges.length === 0) return false;
    const a = parseAddr(ip);
    if (!a) return false;
    for (const [net, bits] of this.#ranges) {
      if (net.kind() === a.kind() && a.match(net, bits)) return true;
    }
    return false;
  }
}
