/**
 * The client address behind proxies, as pure functions: `Forwarded` (RFC 7239) parsed strictly,
 * `X-Forwarded-For`, trusted ranges (IPv4, IPv6, mapped), and the right-most-untrusted walk,
 * with hostile inputs. The end-to-end side is in tests/client_address_test.ts.
 */
import assert from "node:assert/strict";
import { parseForwarded, parseXForwardedFor, resolveClient } from "../lib/http/forwarded.ts";
import { canonicalIp, TrustedProxies } from "../lib/http/trusted_proxies.ts";
import { applyEnv, ConfigError, normalizeConfig } from "../lib/config.ts";

Deno.test("forwarded: RFC 7239 examples and node forms", () => {
  const cases: [string, (string | undefined)[]][] = [
    ['for="_gazonk"', [undefined]],
    ['For="[2001:db8:cafe::17]:4711"', ["2001:db8:cafe::17"]],
    ["for=192.0.2.60;proto=http;by=203.0.113.43", ["192.0.2.60"]],
    ["for=192.0.2.43, for=198.51.100.17", ["192.0.2.43", "198.51.100.17"]],
    ['for=192.0.2.43,for="[2001:db8:cafe::17]",for=unknown', [
      "192.0.2.43",
      "2001:db8:cafe::17",
      undefined,
    ]],
    ['for="192.0.2.43:47011"', ["192.0.2.43"]],
    ['for="192.0.2.43:_port"', ["192.0.2.43"]],
    ["for=unknown", [undefined]],
    ["proto=https", [undefined]], // an element without for=
    ['for="[::ffff:10.0.0.1]"', ["10.0.0.1"]],
    ["for=192.0.2.1 ,\tfor=192.0.2.2", ["192.0.2.1", "192.0.2.2"]],
    ['for="\\1\\9\\2.0.2.1"', ["192.0.2.1"]], // quoted-pair unescapes
    // Syntactically fine, but no address: the hop is unknown.
    ["for=localhost", [undefined]],
    ["for=127.1", [undefined]],
    ["for=0x7f.0.0.1", [undefined]],
    ["for=010.0.0.1", [undefined]],
    ['for="[192.0.2.1]"', [undefined]], // brackets hold IPv6 only
    ['for="2001:db8::1"', [undefined]], // IPv6 must be bracketed
    ['for="[fe80::1%25eth0]"', [undefined]],
    ['for="[2001:db8::1]:99999x"', [undefined]],
    ['for="[2001:db8::1"', [undefined]],
    ["for=192.0.2.1;;by=x", ["192.0.2.1"]], // empty pairs are allowed by the grammar
    ["for=192.0.2.1,,for=192.0.2.2", ["192.0.2.1", undefined, "192.0.2.2"]],
  ];
  for (const [h, want] of cases) assert.deepEqual(parseForwarded(h), want, h);
});

Deno.test("forwarded: grammar violations are refused whole (null), never guessed", () => {
  const bad = [
    "for=192.0.2.43:80", // ':' is not a token character: needs quotes
    "for=[2001:db8::1]",
    'for="192.0.2.1";for=192.0.2.2', // a parameter twice in one element
    'FOR=192.0.2.1;for="192.0.2.2"',
    "for =192.0.2.1",
    "for= 192.0.2.1",
    "for=192.0.2.1 ;by=x",
    "for=192.0.2.1; by=x",
    "for",
    "for=",
    "=192.0.2.1",
    'for="192.0.2.1',
    'for="192.0.2.1\\',
    'for="192.0.2.1"x',
    "for=192.0.2.1 for=192.0.2.2",
    "for=\u00e9",
    'for="\u00e9"',
    'for="a\u0000b"',
    'for="a\rb"',
    "for=192.0.2.1\n, for=192.0.2.2",
    '"for"=192.0.2.1',
  ];
  for (const h of bad) assert.equal(parseForwarded(h), null, JSON.stringify(h));
  // Hostile sizes stay linear and bounded by the header limit of the server anyway.
  const many = Array.from({ length: 5000 }, (_, i) => `for=10.0.${i >> 8 & 255}.${i & 255}`);
  assert.equal(parseForwarded(many.join(","))!.length, 5000);
  assert.equal(parseForwarded('for="' + "\\".repeat(9999)), null);
});

Deno.test("forwarded: X-Forwarded-For entries, ports and brackets; junk is an unknown hop", () => {
  assert.deepEqual(
    parseXForwardedFor("203.0.113.9,198.51.100.7 , 192.0.2.1:4711, [2001:db8::1]:80, 2001:DB8::2"),
    ["203.0.113.9", "198.51.100.7", "192.0.2.1", "2001:db8::1", "2001:db8::2"],
  );
  assert.deepEqual(parseXForwardedFor("unknown, , 1.2.3, ::ffff:127.0.0.1, [1.2.3.4]"), [
    undefined,
    undefined,
    undefined,
    "127.0.0.1",
    undefined,
  ]);
});

Deno.test("trusted proxies: addresses and CIDR ranges, IPv4, IPv6 and mapped", () => {
  const t = TrustedProxies.parse([
    "127.0.0.1",
    "10.0.0.0/8",
    "fd00::/8",
    "::1",
    "::ffff:192.168.0.0/112",
  ]);
  assert.equal(t.size, 5);
  for (
    const ip of ["127.0.0.1", "10.255.0.3", "::ffff:10.1.1.1", "fd12::9", "::1", "192.168.4.4"]
  ) {
    assert.ok(t.has(ip), ip);
  }
  for (const ip of ["127.0.0.2", "11.0.0.1", "fe80::1", "::2", "192.169.0.1", "unknown", ""]) {
    assert.ok(!t.has(ip), ip);
  }
  assert.equal(TrustedProxies.NONE.has("127.0.0.1"), false);
  for (
    const bad of [
      "10.0.0.0/33",
      "::/129",
      "10.0.0.0/",
      "10.0.0.0/8x",
      "127.1",
      "host",
      "1.2.3.4/-1",
    ]
  ) {
    assert.throws(() => TrustedProxies.parse([bad]), RangeError, bad);
  }
  assert.equal(canonicalIp("::FFFF:127.0.0.1"), "127.0.0.1");
  assert.equal(canonicalIp("2001:DB8:0:0:0::1"), "2001:db8::1");
  assert.equal(canonicalIp(" 1.2.3.4"), undefined);
});

Deno.test("client address: right-most untrusted hop, only from trusted peers", () => {
  const t = TrustedProxies.parse(["127.0.0.1", "10.0.0.0/8"]);
  const r = (peer: string, h: Record<string, string>) => resolveClient(peer, new Headers(h), t);
  const xff = (v: string) => ({ "x-forwarded-for": v });
  const fwd = (v: string) => ({ forwarded: v });
  // An untrusted peer is the client whatever it claims.
  assert.equal(r("192.0.2.50", xff("127.0.0.1")), "192.0.2.50");
  assert.equal(r("192.0.2.50", fwd("for=127.0.0.1")), "192.0.2.50");
  assert.equal(r("::ffff:192.0.2.50", {}), "192.0.2.50");
  // Trusted peer: skip trusted hops from the right; a client's own prefix cannot win.
  assert.equal(r("127.0.0.1", xff("127.0.0.1, 198.51.100.7")), "198.51.100.7");
  assert.equal(r("127.0.0.1", xff("198.51.100.7, 10.1.2.3")), "198.51.100.7");
  assert.equal(r("127.0.0.1", fwd('for="[2001:db8::7]:5", for=10.0.0.9')), "2001:db8::7");
  // Every hop trusted: the left-most.
  assert.equal(r("127.0.0.1", xff("10.0.0.5, 10.0.0.6")), "10.0.0.5");
  assert.equal(r("127.0.0.1", xff("127.0.0.1")), "127.0.0.1");
  // Unknown on the way, malformed, missing: "unknown" — never the proxy itself.
  assert.equal(r("127.0.0.1", xff("198.51.100.7, garbage")), "unknown");
  assert.equal(r("127.0.0.1", fwd("for=unknown")), "unknown");
  assert.equal(r("127.0.0.1", fwd("for=198.51.100.7;for=1.1.1.1")), "unknown");
  assert.equal(r("127.0.0.1", fwd("for=198.51.100.7:80")), "unknown");
  assert.equal(r("127.0.0.1", {}), "unknown");
  assert.equal(r("127.0.0.1", xff("")), "unknown");
  // But an unknown hop left of the client does not matter.
  assert.equal(r("127.0.0.1", xff("garbage, 198.51.100.7")), "198.51.100.7");
  // Both headers: they must agree (the proxy sets one, the client may forge the other).
  assert.equal(
    r("127.0.0.1", { ...xff("198.51.100.7"), ...fwd("for=198.51.100.7") }),
    "198.51.100.7",
  );
  assert.equal(r("127.0.0.1", { ...xff("198.51.100.7"), ...fwd("for=127.0.0.1") }), "unknown");
  // Two header lines are one list (Headers joins them with ", ").
  const two = new Headers();
  two.append("x-forwarded-for", "127.0.0.1");
  two.append("x-forwarded-for", "198.51.100.9");
  assert.equal(resolveClient("127.0.0.1", two, t), "198.51.100.9");
});

Deno.test("config: trustedProxies from the file and MXFLEX_TRUSTED_PROXIES, validated", () => {
  const base = { mx: { addr: "127.0.0.1", login: "a", password: "b" } };
  assert.deepEqual(normalizeConfig(base, ".").trustedProxies, []);
  const cfg = normalizeConfig({ ...base, trustedProxies: ["127.0.0.1", "10.0.0.0/8"] }, ".");
  assert.deepEqual(cfg.trustedProxies, ["127.0.0.1", "10.0.0.0/8"]);
  applyEnv(cfg, (k) => k === "MXFLEX_TRUSTED_PROXIES" ? " ::1 , 192.168.0.0/16" : undefined);
  assert.deepEqual(cfg.trustedProxies, ["::1", "192.168.0.0/16"]);
  assert.throws(
    () => normalizeConfig({ ...base, trustedProxies: ["10.0.0.0/40"] }, "."),
    (e: Error) => e instanceof ConfigError && /trustedProxies: prefix length/.test(e.message),
  );
  assert.throws(
    () => normalizeConfig({ ...base, trustedProxies: [7] }, "."),
    (e: Error) => e instanceof ConfigError && /trustedProxies must be a list/.test(e.message),
  );
  assert.throws(
    () =>
      applyEnv(
        normalizeConfig(base, "."),
        (k) => k === "MXFLEX_TRUSTED_PROXIES" ? "nginx" : undefined,
      ),
    (e: Error) =>
      e instanceof ConfigError && /MXFLEX_TRUSTED_PROXIES: not an address/.test(e.message),
  );
});
