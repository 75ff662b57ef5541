/**
 * README.md against the code: every served route has a row with a curl example, every config
 * key (top-level and nested) has its place in the configuration table with the code's default,
 * every environment variable the program reads and every command-line flag is named, and the
 * markdown formatter has not turned a sentence into a numbered list.
 */
import assert from "node:assert/strict";
import {
  ACME_KEYS,
  CONFIG_KEYS,
  DEFAULT_DB,
  MX_KEYS,
  MX_TLS_KEYS,
  normalizeConfig,
  TLS_KEYS,
} from "../lib/config.ts";
import { defaultKvPollMs } from "../app.ts";
import { DEFAULT_RING_TIMEOUT_MS } from "../lib/push/rules.ts";
import { PUSH_ENDPOINT_KEYS } from "../lib/push/config.ts";
import { USAGE } from "../main.ts";
import { startHarness } from "./helpers/harness.ts";

const ROOT = new URL("../", import.meta.url);
const README = Deno.readTextFileSync(new URL("README.md", ROOT));

/** The lines of one `## Title` section (up to the next `## `). */
function section(title: string): string[] {
  const lines = README.split("\n");
  const start = lines.indexOf(`## ${title}`);
  assert.ok(start >= 0, `README has a section "## ${title}"`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Cells of a markdown table row (`\|` stays inside a cell). */
function cells(row: string): string[] {
  return row.replace(/^\|/, "").replace(/\|\s*$/, "").split(/(?<!\\)\|/).map((c) => c.trim());
}

/** Rows of every table whose first cell is code, as [first cell without backticks, cells]. */
function tableRows(lines: string[]): Array<[string, string[]]> {
  return lines.filter((l) => l.startsWith("| `")).map((l) => {
    const c = cells(l);
    return [c[0].replace(/`/g, ""), c];
  });
}

Deno.test("readme: every served route has a row with a curl example", async () => {
  const h = await startHarness({ waitReady: false });
  try {
    const rows = tableRows(README.split("\n"));
    const missing: string[] = [];
    for (const r of h.server.app.routes) {
      if (r.method === "ALL" || r.path === "/index.html") continue;
      // `/api/calls/:callId` matches a row `POST /api/calls/{id}…`, any parameter name or
      // list of values (`{apns\|gfcm\|fcm}`); the static catch-all is the row `GET /<file>`.
      const path = r.path === "/*" ? "/<file>" : r.path;
      const pattern = new RegExp(
        `^${r.method} ${
          path.split("/").map((s) =>
            s.startsWith(":") ? "\\{[^}]+\\}" : s.replace(/[.*+?^${}()|[\]\\<>]/g, "\\$&")
          )
            .join("/")
        }$`,
      );
      const row = rows.find(([first, c]) =>
        first.split(", ").some((e) => pattern.test(e)) && c.slice(1).some((x) => /`curl /.test(x))
      );
      if (!row) {
        missing.push(`${r.method} ${r.path}`);
      }
    }
    assert.deepEqual(missing, [], `routes without a README row with a curl: ${missing.join(", ")}`);
  } finally {
    await h.close();
  }
});

Deno.test("readme: the configuration table names every key with the code's default", () => {
  const rows = new Map(tableRows(section("Configuration")));
  const row = (key: string) => {
    const r = rows.get(key);
    assert.ok(r, `README config table has a row for ${key}`);
    return { key: r[0], def: r[1], meaning: r[2], all: r.join(" ") };
  };
  for (const k of CONFIG_KEYS) row(k);
  // Nested keys are named in their parent's row.
  const nested: Array<[string, readonly string[]]> = [
    ["mx", MX_KEYS],
    ["mx…tls", MX_TLS_KEYS],
    ["tls", TLS_KEYS],
    ["acme", ACME_KEYS],
    ["pushEndpoints", PUSH_ENDPOINT_KEYS],
  ];
  for (const [parent, keys] of nested) {
    for (const k of keys) {
      assert.match(row(parent).all, new RegExp(`\\b${k}\\b`), `${parent} row names ${k}`);
    }
  }

  const d = normalizeConfig({ mx: { addr: "127.0.0.1", login: "a", password: "b" } }, ".");
  const defaults: Array<[string, string]> = [
    ["host", `\`${d.host}\``],
    ["tokenTtl", `\`${d.tokenTtl}\``],
    ["tokenKeyRotation", `\`${d.tokenKeyRotation}\``],
    ["requestTimeoutMs", `\`${d.requestTimeoutMs}\``],
    ["connectTimeoutMs", `\`${d.connectTimeoutMs}\``],
    ["staticDir", `\`${d.staticDir}\``],
    ["db", `\`${DEFAULT_DB}\``],
    ["pushRingTimeout", `\`${DEFAULT_RING_TIMEOUT_MS / 1000}\``],
    ["kvPollMs", `${defaultKvPollMs("x.db")} / ${defaultKvPollMs("https://kv.example/")}`],
    ["…knownAddressDays", `\`${d.rateLimits.knownAddressDays}\``],
  ];
  for (const k of ["loginAddress", "address", "login", "streams"] as const) {
    defaults.push([`…${k}`, Object.values(d.rateLimits[k]).join(" / ")]);
    // The meaning names the sub-keys in the same order as the defaults.
    const names = Object.keys(d.rateLimits[k]);
    assert.match(row(`…${k}`).meaning, new RegExp(`\\{${names.join(", ")}\\}`), `…${k} keys`);
  }
  for (const [key, want] of defaults) {
    assert.equal(row(key).def, want, `default of ${key}`);
  }
  // rateLimits' own keys have rows.
  for (const k of Object.keys(d.rateLimits)) row(`…${k}`);
});

Deno.test("readme: every environment variable and command-line flag is named", () => {
  const files = ["lib/config.ts", "lib/instance.ts", "deploy.ts", "main.ts", "app.ts"];
  const vars = new Set<string>();
  for (const f of files) {
    for (const [v] of Deno.readTextFileSync(new URL(f, ROOT)).matchAll(/\bMXFLEX_[A-Z_]+\b/g)) {
      vars.add(v);
    }
  }
  assert.ok(vars.size >= 10, [...vars].join(", "));
  const unnamed = [...vars].filter((v) => !README.includes(`\`${v}\``));
  assert.deepEqual(unnamed, [], `environment variables missing from README: ${unnamed}`);

  const flags = [...USAGE.matchAll(/^ +(-[a-z-]+)/gm)].map((m) => m[1]);
  assert.ok(flags.length >= 10);
  const block = README.match(/Command-line flags[^\n]*\n\n```\n([\s\S]*?)```/)?.[1] ?? "";
  for (const f of flags) assert.match(block, new RegExp(`(^|[ ,])${f}\\b`, "m"), f);
});

Deno.test("readme: no sentence broken into a numbered list by the formatter", () => {
  // `deno fmt` turns a line that starts with "1." into a list item.
  const lines = README.split("\n");
  let inCode = false;
  lines.forEach((l, i) => {
    if (l.startsWith("```")) inCode = !inCode;
    if (inCode || !/^\d+\. /.test(l)) return;
    const before = lines.slice(0, i).reverse().find((x) => x.trim() !== "") ?? "";
    assert.ok(
      /^\d+\. |:$/.test(before.trim()) || before.startsWith("#"),
      `README line ${i + 1} starts a numbered list after "${before.slice(-40)}"`,
    );
  });
});
