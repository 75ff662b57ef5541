/**
 * Which files under `static/` make up the built-in web client. `static/deno.json` sits
 * there only to type-check the client's files with the browser's types (a workspace
 * member, see docs/DECISIONS.md): it is development configuration, so it is neither
 * embedded (`scripts/gen_assets.ts`) nor served (`routes/static.ts`, through app.ts).
 *
 * This module imports nothing, so the asset generator can use it even when the generated
 * file is missing or broken.
 *
 * @module
 */

/** Paths relative to `static/` that are not part of the web client. */
const NOT_WEB_CLIENT: ReadonlySet<string> = new Set(["deno.json"]);

/**
 * Whether the file at `rel` (relative to `static/`, `/`-separated, no leading slash) is
 * part of the web client, i.e. embedded and served.
 *
 * @example
 * ```ts
 * isWebClientFile("app.js"); // true
 * isWebClientFile("deno.json"); // false
 * ```
 */
export function isWebClientFile(rel: string): boolean {
  return !NOT_WEB_CLIENT.has(rel);
}
