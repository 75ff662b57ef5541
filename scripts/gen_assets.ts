/**
 * Generates `lib/assets_data.ts`: every file under `static/` (the built-in web client) and
 * `docs/openapi.yaml`, embedded in a TypeScript module so a `deno bundle` (or any copy of
 * the program without those directories) still serves them.
 *
 * Text files (valid UTF-8 with a text Content-Type) are embedded as template literals, so
 * diffs of the generated file stay readable; anything else is base64. Keys are paths
 * relative to the repository root (`static/index.html`, `docs/openapi.yaml`), sorted, and
 * the output is deterministic and already `deno fmt`-clean, so `tests/bundle_test.ts` can
 * compare it byte for byte with a fresh rendering.
 *
 * Usage:
 *
 * ```sh
 * deno run --allow-read=. --allow-write=lib/assets_data.ts scripts/gen_assets.ts          # write
 * deno run --allow-read=. scripts/gen_assets.ts --check  # exit 1 when lib/assets_data.ts is stale
 * ```
 *
 * `static/deno.json` (the client's type-check configuration) is left out: see
 * `lib/web_client_files.ts`. That and `lib/http/mime.ts` (the Content-Type table the server
 * uses too) are the only project modules this script imports, and they import nothing
 * themselves, so the script runs even when the generated file is missing or broken.
 *
 * @module
 */

import { isWebClientFile } from "../lib/web_client_files.ts";
import { contentTypeFor } from "../lib/http/mime.ts";

/** The command that regenerates `lib/assets_data.ts` (printed by checks when it is stale). */
export const REGENERATE_COMMAND =
  "deno run --allow-read=. --allow-write=lib/assets_data.ts scripts/gen_assets.ts";

/** Output path relative to the repository root. */
export const OUTPUT_PATH = "lib/assets_data.ts";

function isTextType(type: string): boolean {
  return type.startsWith("text/") || type.includes("charset=utf-8") ||
    type === "image/svg+xml" || type === "application/manifest+json";
}

/** One file to embed. */
export interface SourceAsset {
  /** Key: path relative to the repository root, with `/` separators. */
  path: string;
  /** File contents. */
  bytes: Uint8Array;
}

/**
 * Collects the files to embed under `root`: `static/**` (regular files of the web client;
 * names starting with "." are skipped, symlinks are not followed) and `docs/openapi.yaml`.
 * Missing inputs are simply absent from the result.
 */
export async function collectAssets(root: URL): Promise<SourceAsset[]> {
  const out: SourceAsset[] = [];
  const walk = async (rel: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(new URL(rel, root)));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory) await walk(`${rel}${e.name}/`);
      else if (e.isFile) {
        const path = `${rel}${e.name}`;
        if (!isWebClientFile(path.slice("static/".length))) continue;
        out.push({ path, bytes: await Deno.readFile(new URL(path, root)) });
      }
    }
  };
  await walk("static/");
  try {
    out.push({
      path: "docs/openapi.yaml",
      bytes: await Deno.readFile(new URL("docs/openapi.yaml", root)),
    });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Control characters other than tab and newline (CR included: it would be normalised). */
// deno-lint-ignore no-control-regex
const CONTROL_CHARS = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** Escapes text for a template literal whose cooked value is exactly `text`. */
function templateLiteral(text: string): string {
  const body = text
    .replaceAll("\\", "\\\\")
    .replaceAll("`", "\\`")
    .replaceAll("${", "\\${")
    .replace(
      CONTROL_CHARS,
      (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`,
    );
  return "`" + body + "`";
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    // Round trip must be exact (it is for valid UTF-8; kept as a guard).
    const again = new TextEncoder().encode(text);
    if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) return undefined;
    return text;
  } catch {
    return undefined;
  }
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

async function etagOf(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return [...digest.subarray(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Renders the source of `lib/assets_data.ts` for the given files. */
export async function renderAssetsModule(assets: SourceAsset[]): Promise<string> {
  const lines = [
    "// Generated by scripts/gen_assets.ts from static/ and docs/openapi.yaml. DO NOT EDIT.",
    `// Regenerate: ${REGENERATE_COMMAND}`,
    "",
    "/**",
    " * Embedded copies of the built-in web client (`static/`) and `docs/openapi.yaml`, used",
    " * when those files are not on disk (bundle, Deno Deploy). Read them through",
    " * `lib/assets.ts`.",
    " *",
    " * @module",
    " */",
    "",
    "/** One embedded file: exactly one of `text` (UTF-8) or `base64` is set. */",
    "export interface AssetRecord {",
    "  /** Content-Type header value. */",
    "  type: string;",
    "  /** Strong validator: hex prefix of the SHA-256 of the contents. */",
    "  etag: string;",
    "  /** Contents as text (UTF-8 files). */",
    "  text?: string;",
    "  /** Contents as base64 (other files). */",
    "  base64?: string;",
    "}",
    "",
    "/** Embedded files by path relative to the repository root. */",
    "export const ASSETS: Record<string, AssetRecord> = {",
  ];
  for (const a of assets) {
    const type = contentTypeFor(a.path);
    const etag = await etagOf(a.bytes);
    const text = isTextType(type) ? decodeUtf8(a.bytes) : undefined;
    lines.push(`  ${JSON.stringify(a.path)}: {`);
    lines.push(`    type: ${JSON.stringify(type)},`);
    lines.push(`    etag: ${JSON.stringify(etag)},`);
    if (text !== undefined) lines.push(`    text: ${templateLiteral(text)},`);
    else lines.push(`    base64: ${JSON.stringify(toBase64(a.bytes))},`);
    lines.push("  },");
  }
  lines.push("};", "");
  return lines.join("\n");
}

/** Renders the module from the files currently under `root` (the repository). */
export async function renderFromTree(root: URL): Promise<string> {
  return renderAssetsModule(await collectAssets(root));
}

/** The repository root (this file lives in `scripts/`). */
export const REPO_ROOT: URL = new URL("../", import.meta.url);

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  const target = new URL(OUTPUT_PATH, REPO_ROOT);
  const fresh = await renderFromTree(REPO_ROOT);
  let current = "";
  try {
    current = await Deno.readTextFile(target);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (check) {
    if (current !== fresh) {
      console.error(
        `${OUTPUT_PATH} is out of date with static/ and docs/. Run:\n  ${REGENERATE_COMMAND}`,
      );
      Deno.exit(1);
    }
    console.log(`${OUTPUT_PATH} is up to date`);
  } else if (current === fresh) {
    console.log(`${OUTPUT_PATH} unchanged`);
  } else {
    await Deno.writeTextFile(target, fresh);
    console.log(`wrote ${OUTPUT_PATH} (${fresh.length} bytes)`);
  }
}
