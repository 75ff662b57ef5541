/**
 * Embedded assets and the single-file bundle:
 *
 * - `lib/assets_data.ts` matches `static/` and `docs/openapi.yaml` (regenerate when not);
 * - the static router and `/api/openapi.yaml` fall back to the embedded copies;
 * - `scripts/bundle.sh` builds one JS file that runs with `deno run` from a directory with
 *   no `html/`, `static/` or `docs/`, against the MX simulator over TLS, and exits 0 on
 *   SIGTERM.
 */
import assert from "node:assert/strict";
import {
  collectAssets,
  REGENERATE_COMMAND,
  renderAssetsModule,
  REPO_ROOT,
} from "../scripts/gen_assets.ts";
import { embeddedAsset, embeddedAssetPaths } from "../lib/assets.ts";
import { Hono } from "hono";
import { type StaticOptions, staticRoutes } from "../routes/static.ts";
import { contentTypeFor } from "../lib/http/mime.ts";
import { toErrorResponse } from "../lib/http/errors.ts";
import { MxSimulator } from "../lib/mxsim/mod.ts";
import { CERT, DMITRY, KEY, withHarness } from "./helpers/harness.ts";
import { freePort } from "./helpers/free_port.ts";
import { Program } from "./helpers/program.ts";
import { waitForUrl } from "./helpers/wait.ts";

const REPO = REPO_ROOT.pathname.replace(/\/$/, "");

Deno.test("bundle: lib/assets_data.ts is up to date with static/ and docs/", async () => {
  const sources = await collectAssets(REPO_ROOT);
  const fresh = await renderAssetsModule(sources);
  const current = await Deno.readTextFile(new URL("lib/assets_data.ts", REPO_ROOT));
  if (current === fresh) return;
  // Name the files that differ, then fail with the command that fixes it.
  const changed: string[] = [];
  const embedded = new Set(await embeddedAssetPaths());
  for (const s of sources) {
    const a = await embeddedAsset(s.path);
    if (!a) changed.push(`${s.path} (new)`);
    else if (a.body.length !== s.bytes.length || a.body.some((b, i) => b !== s.bytes[i])) {
      changed.push(`${s.path} (changed)`);
    }
    embedded.delete(s.path);
  }
  for (const p of embedded) changed.push(`${p} (deleted)`);
  assert.fail(
    `lib/assets_data.ts is out of date with static/ and docs/` +
      `${changed.length ? `: ${changed.join(", ")}` : ""}.\n` +
      `Regenerate it and commit the result:\n  ${REGENERATE_COMMAND}\n`,
  );
});

Deno.test("bundle: embedded assets: paths, types, bodies", async () => {
  const paths = await embeddedAssetPaths();
  assert.ok(paths.includes("static/index.html"), paths.join(" "));
  assert.ok(paths.includes("docs/openapi.yaml"));
  for (const p of paths) {
    const a = (await embeddedAsset(p))!;
    assert.equal(a.type, contentTypeFor(p), `type of ${p} (embedded vs lib/http/mime.ts)`);
    assert.match(a.etag, /^[0-9a-f]{24}$/);
  }
  assert.equal(await embeddedAsset("/static/index.html"), await embeddedAsset("static/index.html"));
  assert.match(
    new TextDecoder().decode((await embeddedAsset("static/index.html"))!.body),
    /<html/i,
  );
  for (const p of ["constructor", "__proto__", "toString", "static", "static/", "nope.js"]) {
    assert.equal(await embeddedAsset(p), undefined, p);
  }
});

Deno.test("bundle: the template-literal/base64 encoding round-trips awkward bytes", async () => {
  const text = "a`b${c}\\d\r\n\t\x00\x1b\u2028é😀";
  const bin = new Uint8Array([0, 255, 1, 128, 10, 13]);
  const src = await renderAssetsModule([
    { path: "static/t.txt", bytes: new TextEncoder().encode(text) },
    { path: "static/b.png", bytes: bin },
    { path: "static/bad.js", bytes: new Uint8Array([0xff, 0xfe, 0x41]) }, // not UTF-8
  ]);
  const dir = await Deno.makeTempDir({ prefix: "mxflex-assets-" });
  try {
    await Deno.writeTextFile(`${dir}/data.ts`, src);
    const mod = await import(`file://${dir}/data.ts`);
    const t = mod.ASSETS["static/t.txt"];
    assert.equal(t.text, text);
    assert.equal(t.type, "text/plain; charset=utf-8");
    assert.equal(mod.ASSETS["static/b.png"].base64, btoa(String.fromCharCode(...bin)));
    assert.equal(mod.ASSETS["static/bad.js"].text, undefined);
    assert.equal(mod.ASSETS["static/bad.js"].base64, btoa("\xff\xfe\x41"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The static router behind the server's error mapping (HttpError -> JSON status). */
function statics(o: StaticOptions): Hono {
  const app = new Hono();
  app.onError((err) => toErrorResponse(err));
  app.route("/", staticRoutes(o));
  return app;
}

Deno.test("bundle: static routes fall back to embedded files after the directories", async () => {
  const empty = await Deno.makeTempDir({ prefix: "mxflex-static-" });
  const own = await Deno.makeTempDir({ prefix: "mxflex-html-" });
  try {
    await Deno.writeTextFile(`${own}/index.html`, "<p>operator's own</p>");
    const index = (await embeddedAsset("static/index.html"))!;

    const app = statics({ dirs: [`${empty}/html`, empty] });
    const res = await app.request("/");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(res.headers.get("content-length"), String(index.body.length));
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), index.body);
    const etag = res.headers.get("etag")!;
    assert.equal(etag, `"${index.etag}"`);
    const again = await app.request("/", { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get("etag"), etag);

    // Unknown files and escapes stay 404; the directories still win.
    assert.equal((await app.request("/missing.js")).status, 404);
    assert.equal((await app.request("/..%2Fdocs%2Fopenapi.yaml")).status, 404);
    assert.equal((await app.request("/../docs/openapi.yaml")).status, 404);
    const mine = await statics({ dirs: [own, empty] }).request("/");
    assert.equal(await mine.text(), "<p>operator's own</p>");
    // Embedded fallback can be turned off.
    const off = statics({ dirs: [empty], embedded: false });
    assert.equal((await off.request("/")).status, 404);
  } finally {
    await Deno.remove(empty, { recursive: true });
    await Deno.remove(own, { recursive: true });
  }
});

Deno.test("bundle: web client modules are served as JavaScript, from disk and embedded", async () => {
  // Browsers refuse `<script type="module">` and imports without a JavaScript MIME type.
  const empty = await Deno.makeTempDir({ prefix: "mxflex-static-" });
  try {
    const modules = (await embeddedAssetPaths()).filter((p) =>
      p.startsWith("static/") && p.endsWith(".js")
    );
    assert.ok(modules.includes("static/app.js") && modules.includes("static/lib/calls.js"));
    const disk = statics({ dirs: [`${REPO}/static`], embedded: false });
    const embedded = statics({ dirs: [empty] });
    for (const p of modules) {
      const url = p.slice("static".length);
      for (const [how, app] of [["disk", disk], ["embedded", embedded]] as const) {
        const res = await app.request(url);
        assert.equal(res.status, 200, `${how} ${url}`);
        assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8", url);
        assert.equal(res.headers.get("x-content-type-options"), "nosniff");
        assert.deepEqual(new Uint8Array(await res.arrayBuffer()), (await embeddedAsset(p))!.body);
      }
    }
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("bundle: static/deno.json (the client's type-check config) is neither embedded nor served", async () => {
  assert.ok((await Deno.stat(`${REPO}/static/deno.json`)).isFile, "the file itself stays");
  assert.equal(await embeddedAsset("static/deno.json"), undefined);
  assert.ok(!(await collectAssets(REPO_ROOT)).some((a) => a.path === "static/deno.json"));
  // The real server, with its default directories (html/, then the built-in static/).
  await withHarness(async (h) => {
    const res = await fetch(`${h.url}/deno.json`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: "not found" });
    const index = await fetch(`${h.url}/`);
    assert.equal(index.status, 200, "the rest of static/ is still served");
    await index.body?.cancel();
  });
  // Embedded copy only (a bundle, Deno Deploy).
  const empty = await Deno.makeTempDir({ prefix: "mxflex-static-" });
  try {
    assert.equal((await statics({ dirs: [empty] }).request("/deno.json")).status, 404);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

/** Waits until `url` answers 200; fails at once, with its stderr, if the child exits. */
function ready(url: string, p: Program): Promise<void> {
  return waitForUrl(url, {
    ok: (r) => r.status === 200,
    check: () => {
      if (p.exited) assert.fail(`bundle exited early:\n${p.stderr}`);
    },
    what: () => `${url} to become ready:\n${p.stderr}`,
    timeoutMs: 60_000,
    intervalMs: 100,
  });
}

Deno.test("bundle: scripts/bundle.sh output runs alone with deno run against the simulator", async () => {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "mxflex-bundle-" }));
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY } });
  let proc: Program | undefined;
  try {
    // 1. Build into <tmp>/dist: the bundle's own ../static and ../docs do not exist.
    const out = `${tmp}/dist/mxflex.js`;
    const build = await new Deno.Command("bash", {
      args: [`${REPO}/scripts/bundle.sh`, out],
      env: { DENO: Deno.execPath(), MXFLEX_ASSETS: "check", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const buildLog = new TextDecoder().decode(build.stdout) +
      new TextDecoder().decode(build.stderr);
    assert.equal(build.code, 0, `scripts/bundle.sh failed:\n${buildLog}`);
    const js = await Deno.readTextFile(out);
    assert.doesNotMatch(js, /from\s+["']npm:/, "npm packages must be inlined");

    // 2. A working directory with only a config (seed-1 YAML form) and nothing else.
    const wd = `${tmp}/run`;
    await Deno.mkdir(wd);
    const port = freePort();
    await Deno.writeTextFile(
      `${wd}/mxflex.yaml`,
      `host: "127.0.0.1:${port}"\n` +
        `mx: {addr: "127.0.0.1:${sim.port}", login: server, password: password}\n`,
    );
    proc = Program.spawn([
      Deno.execPath(),
      "run",
      "--no-config",
      "--unstable-kv",
      "--allow-net=127.0.0.1",
      `--allow-read=${tmp}`,
      `--allow-write=${tmp}`,
      "--allow-env",
      out,
      "-config",
      "mxflex.yaml",
      "-db",
      `${tmp}/kv.db`,
    ], { cwd: wd, env: { NO_COLOR: "1" } });
    const p = proc;
    const base = `http://127.0.0.1:${port}`;
    await ready(`${base}/healthz`, p);
    await ready(`${base}/readyz`, p);

    // 3. The API, the embedded web client and the embedded OpenAPI document.
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });

    const login = await fetch(`${base}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: DMITRY.login, password: DMITRY.password }),
    });
    const body = await login.json();
    assert.equal(login.status, 200, JSON.stringify(body));
    assert.equal(body.token_type, "Bearer");
    assert.ok(body.access_token.split(".").length === 3);

    const index = await fetch(`${base}/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
    assert.deepEqual(
      new Uint8Array(await index.arrayBuffer()),
      (await embeddedAsset("static/index.html"))!.body,
    );

    const api = await fetch(`${base}/api/openapi.yaml`);
    assert.equal(api.status, 200);
    assert.deepEqual(
      new Uint8Array(await api.arrayBuffer()),
      (await embeddedAsset("docs/openapi.yaml"))!.body,
    );

    // 4. SIGTERM: graceful stop, exit code 0, within main.ts's own 10 s bound.
    p.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      p.status,
      new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), 10_000))),
    ]).finally(() => clearTimeout(timer));
    assert.notEqual(result, "timeout", `no exit within 10 s after SIGTERM:\n${p.stderr}`);
    assert.equal((result as Deno.CommandStatus).code, 0, p.stderr);
    assert.match(p.stderr, /shutting down/);
    assert.doesNotMatch(p.stderr, /Uncaught|^\s+at /m);
  } finally {
    if (proc && !proc.exited) proc.kill("SIGKILL");
    await proc?.status;
    await sim.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
