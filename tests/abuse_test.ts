/**
 * Hostile input on every endpoint: missing, wrong-type, huge and malformed fields (400, never
 * 500), JWT attacks (401), Basic-auth brute force (429), static-file path traversal (404, never
 * a file outside), oversized bodies (413) and unknown methods (404/405 JSON). No response body
 * may ever carry a stack trace or an "Error:" text.
 */
import assert from "node:assert/strict";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { basic, DMITRY, flexLogin, type Harness, withHarness } from "./helpers/harness.ts";
import { AuthError, TokenIssuer } from "../lib/auth/jwt.ts";
import { rawGet } from "./helpers/raw_http.ts";

const STACK_RE = /\bat\s+\S*(\/|\\)\S+\.(ts|js|mjs):\d+/;

/** Reads a response and checks it leaks nothing; returns status and body text. */
async function check(res: Response, what: string): Promise<{ status: number; text: string }> {
  const text = await res.text();
  assert.ok(!STACK_RE.test(text), `${what}: stack trace in body: ${text.slice(0, 300)}`);
  assert.ok(!text.includes("Error:"), `${what}: "Error:" in body: ${text.slice(0, 300)}`);
  assert.notEqual(res.status, 500, `${what}: 500 ${text.slice(0, 200)}`);
  if (res.status >= 400) {
    assert.match(res.headers.get("content-type") ?? "", /application\/json/, what);
    const body = JSON.parse(text);
    assert.deepEqual(Object.keys(body), ["error"], what);
    assert.equal(typeof body.error, "string", what);
  }
  return { status: res.status, text };
}

type Body = { json?: unknown; form?: Record<string, string>; raw?: BodyInit; type?: string };

function req(
  h: Harness,
  method: string,
  path: string,
  body: Body = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  const hd = new Headers(headers);
  let b: BodyInit | undefined;
  if (body.json !== undefined) {
    b = typeof body.json === "string" ? body.json : JSON.stringify(body.json);
    hd.set("content-type", "application/json");
  } else if (body.form) {
    b = new URLSearchParams(body.form);
  } else if (body.raw !== undefined) {
    b = body.raw;
  }
  if (body.type) hd.set("content-type", body.type);
  return fetch(`${h.url}${path}`, { method, headers: hd, body: b });
}

const HUGE = "9".repeat(5000);
/** Field values that must never be accepted where a short string is expected. */
const BAD_VALUES: unknown[] = [
  { $ne: null },
  ["3044"],
  true,
  HUGE,
  "x".repeat(300),
  { nested: { deep: [1, 2, 3] } },
];

Deno.test("abuse: malformed bodies are 400/415, never 500", async () => {
  await withHarness(async (h) => {
    const token = await flexLogin(h.url);
    const bearer = { authorization: `Bearer ${token}` };
    const bad: Array<[string, Body]> = [
      ["broken JSON", { json: '{"login": ' }],
      ["JSON array", { json: "[1,2,3]" }],
      ["JSON string", { json: '"login"' }],
      ["JSON null", { json: "null" }],
      ["deep JSON", { json: "[".repeat(20000) + "]".repeat(20000) }],
      ["invalid UTF-8", { raw: new Uint8Array([0x6c, 0x3d, 0xff, 0xfe]) }],
      ["bad multipart", { raw: "--x\r\nnope", type: "multipart/form-data; boundary=x" }],
      ["multipart without boundary", { raw: "a", type: "multipart/form-data" }],
    ];
    const targets: Array<[string, string, Record<string, string>]> = [
      ["POST", "/api/login", {}],
      ["POST", "/api/call", bearer],
      ["POST", "/api/calls/1/transfer", bearer],
      ["POST", "/mx/test/call", { authorization: basic() }],
      ["PATCH", "/mx/test/voicemail/abc", { authorization: basic() }],
      ["POST", "/mx/test/token/apns/com.app", { authorization: basic() }],
    ];
    for (const [m, path, hd] of targets) {
      for (const [name, body] of bad) {
        const r = await check(await req(h, m, path, body, hd), `${m} ${path} ${name}`);
        assert.ok([400, 404, 413, 415].includes(r.status), `${m} ${path} ${name}: ${r.status}`);
      }
      const r = await check(
        await req(h, m, path, { raw: "x", type: "application/x-evil" }, hd),
        `${m} ${path} unsupported type`,
      );
      assert.ok([400, 404, 415].includes(r.status), `${m} ${path} type: ${r.status}`);
    }
  });
});

Deno.test("abuse: missing, wrong-type and huge fields are 400", async () => {
  await withHarness(async (h) => {
    const token = await flexLogin(h.url);
    const bearer = { authorization: `Bearer ${token}` };
    const B = { authorization: basic() };
    const expect400 = async (m: string, path: string, body: Body, hd: Record<string, string>) => {
      const r = await check(
        await req(h, m, path, body, hd),
        `${m} ${path} ${JSON.stringify(body)}`,
      );
      assert.equal(r.status, 400, `${m} ${path} ${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
    };
    // Missing fields.
    await expect400("POST", "/api/login", { form: {} }, {});
    await expect400("POST", "/api/login", { form: { password: "x" } }, {});
    await expect400("POST", "/api/call", { form: {} }, bearer);
    await expect400("POST", "/api/calls/1/transfer", { form: {} }, bearer);
    await expect400("POST", "/mx/test/call", { form: { to: "3044" } }, B);
    await expect400("POST", "/mx/test/call", { form: { from: "3095" } }, B);
    await expect400("PATCH", "/mx/test/voicemail/abc", { form: {} }, B);
    // Wrong types and huge values.
    for (const v of BAD_VALUES) {
      await expect400("POST", "/api/login", { json: { login: v, password: "x" } }, {});
      await expect400("POST", "/api/call", { json: { to: v } }, bearer);
      await expect400("POST", "/api/call", { json: { to: "3044", from: v } }, bearer);
      await expect400("POST", "/api/calls/1/transfer", { json: { to: v } }, bearer);
      await expect400("POST", "/mx/test/call", { json: { from: v, to: "3044" } }, B);
      await expect400("POST", "/mx/test/call", { json: { from: "3095", to: v } }, B);
    }
    for (const v of ["abc", -1, 256, 1.5, HUGE, true, [1]]) {
      await expect400(
        "POST",
        "/mx/test/call",
        { json: { from: "3095", to: "3044", ringDelay: v } },
        B,
      );
      await expect400(
        "POST",
        "/mx/test/call",
        { json: { from: "3095", to: "3044", vmDelay: v } },
        B,
      );
    }
    for (const v of ["maybe", 2, [true], { a: 1 }]) {
      await expect400("PATCH", "/mx/test/voicemail/abc", { json: { readed: v } }, B);
    }
    await expect400("PATCH", "/mx/test/voicemail/abc", { json: { note: { x: 1 } } }, B);
    // Path parameters.
    for (const id of ["abc", "-1", "1.5", "99999999999", HUGE, "%00", "1e3", "0x10"]) {
      await expect400("POST", `/api/calls/${id}/hold`, {}, bearer);
      await expect400("DELETE", `/api/calls/${id}`, {}, bearer);
    }
    for (const id of ["a$b", "x".repeat(65), "a%20b", "a.b", "%00"]) {
      await expect400("GET", `/mx/test/voicemail/${id}`, {}, B);
      await expect400("DELETE", `/mx/test/voicemail/${id}`, {}, B);
    }
    // Query parameters.
    for (const ts of ["yesterday", HUGE, "2020-13-45T99:99:99Z", "1e9", "--1"]) {
      await expect400("GET", `/mx/test/calllog?timestamp=${encodeURIComponent(ts)}`, {}, B);
    }
    // Push tokens.
    for (const t of ["short", "x".repeat(5000), "has space " + "x".repeat(30)]) {
      await expect400("POST", "/mx/test/token/gfcm/app", { form: { token: t } }, B);
    }
  });
});

Deno.test("abuse: JWT attacks are 401", async () => {
  await withHarness(async (h) => {
    const good = await flexLogin(h.url);
    const [, pl] = good.split(".");
    const payload = JSON.parse(atob(pl.replace(/-/g, "+").replace(/_/g, "/")));
    const b64 = (o: unknown) =>
      btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const rsa = await generateKeyPair("RS256", { extractable: true });
    const pem = await exportSPKI(rsa.publicKey);
    const now = Math.floor(Date.now() / 1000);
    const attacks: Record<string, string> = {
      "alg none": `${b64({ alg: "none", typ: "JWT" })}.${b64(payload)}.`,
      "alg None": `${b64({ alg: "None" })}.${b64(payload)}.`,
      "RS256 with attacker key": await new SignJWT(payload).setProtectedHeader({ alg: "RS256" })
        .sign(rsa.privateKey),
      // HS/RS confusion: an HMAC keyed with a public key.
      "HS256 keyed with a public key": await new SignJWT(payload)
        .setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(pem)),
      "wrong HS256 key": await new SignJWT(payload).setProtectedHeader({ alg: "HS256" })
        .sign(crypto.getRandomValues(new Uint8Array(64))),
      "expired, wrong key": await new SignJWT({ ...payload, iat: now - 7200, exp: now - 3600 })
        .setProtectedHeader({ alg: "HS256" }).sign(crypto.getRandomValues(new Uint8Array(64))),
      "truncated": good.slice(0, good.lastIndexOf(".") + 5),
      "two parts": good.split(".").slice(0, 2).join("."),
      "signature stripped": good.slice(0, good.lastIndexOf(".") + 1),
      "header swapped to none": `${b64({ alg: "none" })}.${good.split(".").slice(1).join(".")}`,
      "garbage": "a.b.c",
      "huge": "e".repeat(60_000),
      "non-ASCII": "ключ.ключ.ключ",
    };
    for (const [name, t] of Object.entries(attacks)) {
      for (const where of ["header", "query"] as const) {
        // fetch cannot send non-Latin-1 header values at all.
        if (where === "header" && [...t].some((ch) => ch.charCodeAt(0) > 0xff)) continue;
        const res = where === "header"
          ? await fetch(`${h.url}/api/contacts`, { headers: { authorization: `Bearer ${t}` } })
          : await fetch(`${h.url}/api/contacts?access_token=${encodeURIComponent(t)}`);
        const r = await check(res, `${name} via ${where}`);
        assert.ok(
          r.status === 401 || (name === "huge" && (r.status === 431 || r.status === 414)),
          `${name} via ${where}: ${r.status}`,
        );
      }
    }
    const res = await fetch(`${h.url}/api/contacts`, {
      headers: { authorization: `Bearer ${good}` },
    });
    assert.equal((await check(res, "good token")).status, 200);
  });
  // Expiry with the right key (the server's key is random, so at the issuer level).
  const key = crypto.getRandomValues(new Uint8Array(32));
  let clock = Date.now();
  const issuer = new TokenIssuer({ key, ttlSeconds: 60, now: () => clock });
  const { token } = await issuer.issue({ sub: DMITRY.jid, ext: DMITRY.ext, mx: "63022" });
  await issuer.verify(token);
  clock += 3600_000;
  await assert.rejects(issuer.verify(token), AuthError);
});

Deno.test("abuse: Basic-auth brute force is 429 with Retry-After", async () => {
  await withHarness(async (h) => {
    const seen = new Set<number>();
    let limited: Response | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const res = await fetch(`${h.url}/mx/test/addressbook`, {
        headers: { authorization: basic(DMITRY.login, `guess-${i}`) },
      });
      seen.add(res.status);
      if (res.status === 429) limited = res;
      else await check(res, `guess ${i}`);
    }
    assert.ok(limited, `never limited: ${[...seen]}`);
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    await check(limited, "429");
    assert.deepEqual([...seen].sort(), [401, 429]);
    // The right password is refused too while the address is limited (no oracle).
    const res = await fetch(`${h.url}/mx/test/calllog`, { headers: { authorization: basic() } });
    assert.equal((await check(res, "right password while limited")).status, 429);
    // Malformed Basic headers are 401, not 500.
    for (
      const a of ["Basic", "Basic !!!", "Basic " + btoa("nocolon"), "Basic " + "A".repeat(9000)]
    ) {
      const r = await fetch(`${h.url}/mx/test/addressbook`, { headers: { authorization: a } });
      const s = (await check(r, a.slice(0, 20))).status;
      assert.ok(s === 401 || s === 429 || s === 431, `${a.slice(0, 20)}: ${s}`);
    }
  });
});

Deno.test("abuse: path traversal on static files never leaves the directory", async () => {
  const root = await Deno.makeTempDir({ prefix: "mxflex-abuse-" });
  try {
    await Deno.mkdir(`${root}/www/sub`, { recursive: true });
    await Deno.writeTextFile(`${root}/www/index.html`, "<h1>home</h1>");
    await Deno.writeTextFile(`${root}/www/sub/page.txt`, "inside");
    await Deno.writeTextFile(`${root}/secret.txt`, "TOP-SECRET-CONTENT");
    await Deno.writeTextFile(`${root}/www/.env`, "TOP-SECRET-DOTFILE");
    await Deno.symlink(`${root}/secret.txt`, `${root}/www/link.txt`);
    await withHarness(async (h) => {
      const port = Number(new URL(h.url).port);
      const ok = await rawGet(port, "/sub/page.txt");
      assert.equal(ok.status, 200);
      assert.equal(ok.text, "inside");
      const targets = [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/..%5csecret.txt",
        "/sub\\..\\..\\secret.txt",
        "/..\\secret.txt",
        "/secret.txt%00.html",
        "/sub/page.txt%00",
        "/%c0%ae%c0%ae/secret.txt",
        "/.%2e/secret.txt",
        "/link.txt",
        "/.env",
        "/%2eenv",
        "//" + root + "/secret.txt",
        "/" + encodeURIComponent(`${root}/secret.txt`),
        "/%",
        "/%zz",
      ];
      for (const t of targets) {
        const r = await rawGet(port, t);
        assert.ok(!r.text.includes("TOP-SECRET"), `${t} leaked a file`);
        assert.ok(r.status === 404 || r.status === 400, `${t}: ${r.status}`);
        assert.ok(!STACK_RE.test(r.text) && !r.text.includes("Error:"), `${t}: ${r.text}`);
      }
      // Through fetch too (normalised paths end inside the directory or 404).
      for (const t of ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/..%2f..%2fsecret.txt"]) {
        const res = await fetch(`${h.url}${t}`);
        const text = await res.text();
        assert.ok(!text.includes("TOP-SECRET"), t);
      }
    }, { staticDirs: [`${root}/www`] });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("abuse: oversized bodies are 413", async () => {
  await withHarness(async (h) => {
    const token = await flexLogin(h.url);
    const big = "login=" + "a".repeat(200 * 1024);
    const targets: Array<[string, string, Record<string, string>]> = [
      ["POST", "/api/login", {}],
      ["POST", "/api/call", { authorization: `Bearer ${token}` }],
      ["POST", "/mx/test/call", { authorization: basic() }],
      ["POST", "/mx/test/token/gfcm/app", { authorization: basic() }],
    ];
    for (const [m, path, hd] of targets) {
      // With Content-Length.
      let r = await check(await req(h, m, path, { raw: big }, hd), `${path} sized`);
      assert.ok(r.status === 413 || r.status === 400, `${path} sized: ${r.status}`);
      if (path !== "/mx/test/token/gfcm/app") assert.equal(r.status, 413, path);
      // Chunked, without a length.
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(16 * 1024).fill(0x61));
          c.close();
        },
      });
      r = await check(await req(h, m, path, { raw: stream }, hd), `${path} chunked`);
      assert.ok(r.status === 413 || r.status === 400, `${path} chunked: ${r.status}`);
      if (path !== "/mx/test/token/gfcm/app") assert.equal(r.status, 413, path);
      // A lying Content-Length header.
      r = await check(
        await req(h, m, path, { json: "{}" }, { ...hd, "x-note": "len" }),
        `${path} small`,
      );
      assert.notEqual(r.status, 413);
    }
  });
});

Deno.test("abuse: unknown methods are 404/405 JSON", async () => {
  await withHarness(async (h) => {
    const token = await flexLogin(h.url);
    const paths = [
      "/api/login",
      "/api/contacts",
      "/api/events",
      "/api/calls/1/hold",
      "/mx/test/addressbook",
      "/mx/test/voicemail/abc",
      "/healthz",
      "/metrics",
      "/index.html",
      "/",
    ];
    for (const p of paths) {
      for (const m of ["PUT", "BREW", "PROPFIND", "OPTIONS", "M-SEARCH"]) {
        const res = await fetch(`${h.url}${p}`, {
          method: m,
          headers: { authorization: `Bearer ${token}` },
        });
        const r = await check(res, `${m} ${p}`);
        assert.ok(
          r.status === 404 || r.status === 405 || r.status === 401,
          `${m} ${p}: ${r.status}`,
        );
        if (r.status === 401) assert.match(p, /^\/(api|mx)\//, `${m} ${p}`);
      }
    }
  });
});
