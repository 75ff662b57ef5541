/**
 * Embedded static assets: the built-in web client (`static/**`) and `docs/openapi.yaml`,
 * compiled into the program by `scripts/gen_assets.ts` (see `lib/assets_data.ts`). The
 * HTTP routes serve files from disk first and fall back to these, so a `deno bundle` or a
 * Deno Deploy project works without the directories. The table (~1 MB resident) is loaded on
 * first use only, so a server run from the repository (files on disk) never loads it.
 *
 * @module
 */
import type { ASSETS as AssetTable } from "./assets_data.ts";

/** One embedded file, ready to send. */
export interface EmbeddedAsset {
  /** File contents. */
  body: Uint8Array<ArrayBuffer>;
  /** Content-Type header value. */
  type: string;
  /** Strong validator derived from the contents (unquoted). */
  etag: string;
}

const cache = new Map<string, EmbeddedAsset>();
let table: Promise<typeof AssetTable> | undefined;

function assets(): Promise<typeof AssetTable> {
  return table ??= import("./assets_data.ts").then((m) => m.ASSETS);
}

function fromBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * The embedded file at `path` (relative to the repository root, e.g. `static/index.html`
 * or `docs/openapi.yaml`; a leading `/` is ignored), or undefined. The body is shared
 * between calls: do not modify it.
 *
 * @example
 * ```ts
 * const a = await embeddedAsset("static/index.html");
 * if (a) new Response(a.body, { headers: { "Content-Type": a.type } });
 * ```
 */
export async function embeddedAsset(path: string): Promise<EmbeddedAsset | undefined> {
  const key = path.replace(/^\/+/, "");
  const hit = cache.get(key);
  if (hit) return hit;
  const ASSETS = await assets();
  // Own keys only: "constructor" or "__proto__" must not reach Object.prototype.
  if (!Object.hasOwn(ASSETS, key)) return undefined;
  const rec = ASSETS[key];
  const body = rec.text !== undefined
    ? new TextEncoder().encode(rec.text)
    : fromBase64(rec.base64 ?? "");
  const asset = { body, type: rec.type, etag: rec.etag };
  cache.set(key, asset);
  return asset;
}

/**
 * Paths of every embedded file, sorted.
 *
 * @example
 * ```ts
 * await embeddedAssetPaths(); // ["docs/openapi.yaml", "static/app.js", …]
 * ```
 */
export async function embeddedAssetPaths(): Promise<string[]> {
  return Object.keys(await assets()).sort();
}
