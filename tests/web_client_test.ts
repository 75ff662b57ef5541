/**
 * The web client's files (static/) and its pure modules, without a browser: index.html
 * loads the entry as a module and preloads exactly the other modules; every module is
 * `// @ts-check`; contact search, presence and names; the clock format; JWT claims; the
 * store. The browser itself is driven in tests/browser_test.ts.
 */
import assert from "node:assert/strict";
import { fullName, indexByExt, matchesQuery, nameOf } from "../static/lib/contacts.js";
import { presenceClass } from "../static/lib/presence.js";
import { clock } from "../static/lib/format.js";
import { jwtClaims } from "../static/lib/jwt.js";
import { createStore } from "../static/lib/store.js";
import { staticModules } from "./helpers/static_modules.ts";

const STATIC = new URL("../static/", import.meta.url);

Deno.test("web client: index.html loads /app.js as a module and preloads every other one", async () => {
  const html = await Deno.readTextFile(new URL("index.html", STATIC));
  const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1].trim());
  assert.deepEqual(scripts, ['type="module" src="/app.js"']);
  const preloads = [...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)]
    .map((m) => m[1]).sort();
  assert.deepEqual(
    preloads,
    (await staticModules()).filter((m) => m !== "/app.js"),
    "the modulepreload list in static/index.html is out of date",
  );
});

Deno.test("web client: every module starts with // @ts-check", async () => {
  for (const m of await staticModules()) {
    const text = await Deno.readTextFile(new URL(`.${m}`, STATIC));
    assert.ok(text.startsWith("// @ts-check\n"), m);
  }
});

const DMITRY = {
  jid: "1",
  firstName: "Dmitry",
  lastName: "Sedykh",
  ext: "3095",
  status: "Available",
  cellPhone: "+7 (903) 174-44-45",
  email: "dmitry@example.com",
};
const NOBODY = { jid: "2", firstName: "", lastName: "", ext: "3100", status: "LoggedOut" };

Deno.test("web client: contact names, presence classes, search and lookup", () => {
  assert.equal(fullName(DMITRY), "Dmitry Sedykh");
  assert.equal(fullName(NOBODY), "3100");
  assert.equal(presenceClass("Available"), "on");
  assert.equal(presenceClass("online"), "on");
  assert.equal(presenceClass("LoggedOut"), "off");
  assert.equal(presenceClass(undefined), "off");
  assert.equal(presenceClass("Busy"), "busy");
  assert.equal(presenceClass("Away"), "away");

  assert.ok(matchesQuery(DMITRY, "  SEDY "));
  assert.ok(matchesQuery(DMITRY, "example.com"));
  assert.ok(matchesQuery(DMITRY, "available"));
  assert.ok(matchesQuery(DMITRY, "9031744"), "digits of the mobile number");
  assert.ok(matchesQuery(DMITRY, "903-174"), "digits whatever the punctuation");
  assert.ok(matchesQuery(DMITRY, ""));
  assert.ok(!matchesQuery(DMITRY, "peter"));
  assert.ok(!matchesQuery(NOBODY, "903"));

  const byExt = indexByExt([DMITRY, NOBODY, { ...NOBODY, ext: "" }]);
  assert.deepEqual([...byExt.keys()], ["3095", "3100"]);
  assert.equal(nameOf(byExt, "3095"), "Dmitry Sedykh");
  assert.equal(nameOf(byExt, "+14155550123"), "");
});

Deno.test("web client: call clock", () => {
  assert.equal(clock(0), "0:00");
  assert.equal(clock(-5000), "0:00");
  assert.equal(clock(75_999), "1:15");
  assert.equal(clock(600_000), "10:00");
  assert.equal(clock(3_725_000), "1:02:05");
});

Deno.test("web client: JWT claims are read without verification; junk is {}", () => {
  const b64url = (o: unknown) =>
    btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(o))))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  // UTF-8 text, and "?>" whose base64 has "-" and "_" in the URL alphabet.
  const claims = { ext: "3095", exp: 1_700_000_000, sub: "43884851147406145", n: "Дмитрий?>" };
  assert.deepEqual(jwtClaims(`${b64url({ alg: "HS256" })}.${b64url(claims)}.sig`), claims);
  for (const junk of ["", "abc", "a.b.c", `x.${b64url(null)}.y`, `x.${b64url(7)}.y`]) {
    assert.deepEqual(jwtClaims(junk), {}, junk);
  }
});

Deno.test("web client: store tells listeners of changes only, until they unsubscribe", () => {
  const store = createStore({ n: 0 });
  const seen: string[] = [];
  const stop = store.subscribe((now, before) => seen.push(`${before.n}->${now.n}`));
  store.update((s) => ({ n: s.n + 1 }));
  store.update((s) => s); // no change: no call
  store.update((s) => ({ n: s.n + 1 }));
  stop();
  store.update((s) => ({ n: s.n + 1 }));
  assert.deepEqual(seen, ["0->1", "1->2"]);
  assert.equal(store.get().n, 3);
});
