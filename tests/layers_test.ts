/**
 * The house's arrows (issue 11), read from the source: data flows one way, MX socket ->
 * `lib/csta` -> `lib/mx` -> routes / SSE / push, and a folder with a `mod.ts` is entered
 * through it. Every relative `import`/`export … from` and `import("…")` of every module under
 * `lib/` and `routes/` and of the root programs is checked (JSDoc examples are not imports).
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** Repository-relative paths of the `.ts` files under `dir`. */
async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(new URL(rel, ROOT))) {
      if (e.isDirectory) await walk(`${rel}${e.name}/`);
      else if (e.name.endsWith(".ts")) out.push(`${rel}${e.name}`);
    }
  };
  await walk(dir);
  return out.sort();
}

/** Repository-relative targets of a module's relative imports. */
async function importsOf(file: string): Promise<string[]> {
  const text = (await Deno.readTextFile(new URL(file, ROOT))).replace(/\/\*[\s\S]*?\*\//g, "");
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/gms),
    ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
  ].map((m) => m[1]).filter((s) => s.startsWith("."));
  return specs.map((s) => new URL(s, new URL(file, ROOT)).pathname.slice(ROOT.pathname.length));
}

/** Every `from -> to` edge of the checked modules. */
async function edges(): Promise<[string, string][]> {
  const files = [
    ...["app.ts", "main.ts", "demo.ts", "deploy.ts"],
    ...await tsFiles("lib/"),
    ...await tsFiles("routes/"),
  ].filter((f) => f !== "lib/assets_data.ts");
  const out: [string, string][] = [];
  for (const f of files) for (const t of await importsOf(f)) out.push([f, t]);
  return out;
}

const ROOT_PROGRAMS = /^(app|main|demo|deploy)\.ts$/;

/** The rules: a name and the edges it forbids. */
const RULES: [string, (from: string, to: string) => boolean][] = [
  [
    "nothing in lib/ imports routes/ or a root program",
    (f, t) => f.startsWith("lib/") && (t.startsWith("routes/") || ROOT_PROGRAMS.test(t)),
  ],
  ["routes/ never import lib/csta", (f, t) => f.startsWith("routes/") && t.startsWith("lib/csta/")],
  [
    "lib/csta imports nothing else of the project (it knows no HTTP, no MX sessions)",
    (f, t) => f.startsWith("lib/csta/") && !t.startsWith("lib/csta/"),
  ],
  [
    "lib/mx, lib/sse, lib/store, lib/auth and lib/push never import lib/http or lib/listen",
    (f, t) => /^lib\/(mx|sse|store|auth|push)\//.test(f) && /^lib\/(http|listen)\//.test(t),
  ],
  ["lib/sse, lib/store, lib/auth and lib/push never import lib/mx (it feeds them, not back)", (
    f,
    t,
  ) => /^lib\/(sse|store|auth|push)\//.test(f) && t.startsWith("lib/mx/")],
  [
    "routes/ reach lib/mx through lib/mx/mod.ts",
    (f, t) => f.startsWith("routes/") && t.startsWith("lib/mx/") && t !== "lib/mx/mod.ts",
  ],
];

Deno.test("layers: imports point one way (MX socket -> lib/csta -> lib/mx -> routes, SSE, push)", async () => {
  const all = await edges();
  assert.ok(all.length > 100, `found only ${all.length} imports: is the scan broken?`);
  assert.ok(
    all.some(([f, t]) => f === "routes/mod.ts" && t === "routes/flex.ts"),
    "the scan sees multi-line imports",
  );
  const broken = RULES.flatMap(([rule, forbids]) =>
    all.filter(([f, t]) => forbids(f, t)).map(([f, t]) => `${rule}: ${f} -> ${t}`)
  );
  assert.deepEqual(broken, []);
});
