/**
 * The seed's "Let's Encrypt rule" (mx-protocol §5.9): decide from the
 * configured `host` whether MXFlex serves plain HTTP or HTTPS with an
 * automatic (ACME) certificate.
 *
 * @module
 */

/** Plain HTTP on `hostname:port`. */
export interface HttpMode {
  /** Discriminant. */
  mode: "http";
  /** Address to bind; `"0.0.0.0"` when the host had no name (e.g. `":8080"`). */
  hostname: string;
  /** TCP port; 80 when the host named none. */
  port: number;
}

/** HTTPS with an ACME certificate for exactly one domain, on port 443. */
export interface AcmeMode {
  /** Discriminant. */
  mode: "acme";
  /** The only host name the certificate is requested for (lower case, no trailing dot). */
  domain: string;
  /** Always 443: the seed listens on `:443` in this mode. */
  port: number;
}

/**
 * Applies the seed's rule to a `host` setting.
 *
 * ACME is chosen when the name is non-empty, is not `localhost` (or a
 * `*.localhost` name, which no public CA will certify either), does not end in
 * `.local`, is not an IPv4/IPv6 literal, and the port is empty, `443` or
 * `https`. Everything else is plain HTTP on `name:port`, port 80 by default;
 * an empty name binds all (IPv4) interfaces.
 *
 * @example
 * ```ts
 * hostMode("flex.example.com");  // {mode: "acme", domain: "flex.example.com", port: 443}
 * hostMode(":8080");             // {mode: "http", hostname: "0.0.0.0", port: 8080}
 * hostMode("localhost");         // {mode: "http", hostname: "localhost", port: 80}
 * ```
 *
 * @throws {TypeError} when the port is neither a number 0–65535 nor `http`/`https`.
 */
export function hostMode(host: string): HttpMode | AcmeMode {
  const { name, port } = splitHostPort(host.trim());
  const bare = name.replace(/\.$/, "").toLowerCase();
  const wantsTlsPort = port === "" || port === "443" || port === "https";
  if (wantsTlsPort && bare !== "" && !isLocalName(bare) && !isIpLiteral(bare)) {
    return { mode: "acme", domain: bare, port: 443 };
  }
  return {
    mode: "http",
    // Deno.serve wants an unbracketed IPv6 literal; "" means every interface.
    hostname: name === "" ? "0.0.0.0" : name,
    port: port === "" ? 80 : parsePort(port, host),
  };
}

/** True for names that can never get a public certificate: localhost and mDNS names. */
function isLocalName(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost") || name.endsWith(".local");
}

/**
 * True for IPv4 dotted quads and IPv6 literals (a DNS name never contains ':').
 *
 * @example
 * ```ts
 * isIpLiteral("192.0.2.1"); // true
 * isIpLiteral("::1"); // true
 * isIpLiteral("mxflex.example.com"); // false
 * ```
 */
export function isIpLiteral(name: string): boolean {
  if (name.includes(":")) return true;
  const parts = name.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/**
 * Splits like Go's `net.SplitHostPort`, but tolerates a missing port (the
 * seed fell back to the whole string) and an unbracketed IPv6 literal.
 */
function splitHostPort(host: string): { name: string; port: string } {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) throw new TypeError(`invalid host ${JSON.stringify(host)}: missing "]"`);
    const rest = host.slice(end + 1);
    if (rest !== "" && !rest.startsWith(":")) {
      throw new TypeError(`invalid host ${JSON.stringify(host)}`);
    }
    return { name: host.slice(1, end), port: rest.slice(1) };
  }
  const first = host.indexOf(":");
  if (first < 0) return { name: host, port: "" };
  // Two or more colons without brackets can only be a bare IPv6 address.
  if (host.indexOf(":", first + 1) >= 0) return { name: host, port: "" };
  return { name: host.slice(0, first), port: host.slice(first + 1) };
}

/** Numeric or well-known service port; anything else is a configuration error. */
function parsePort(port: string, host: string): number {
  if (port === "http") return 80;
  if (port === "https") return 443;
  if (/^\d{1,5}$/.test(port) && Number(port) <= 65535) return Number(port);
  throw new TypeError(`invalid port in host ${JSON.stringify(host)}`);
}
