/**
 * The one Content-Type table: files of the web client and `docs/` (`routes/static.ts`, and the
 * embedded copies written by `scripts/gen_assets.ts`) and the voicemail formats the MX reports
 * (`fileFormat`, `lib/http/voicemail_stream.ts`). Unknown extensions are
 * `application/octet-stream`.
 *
 * This module imports nothing, so the asset generator can use it even when the generated file
 * is missing or broken.
 *
 * @module
 */

/** By lower-case extension; a Map, so names such as `constructor` are not looked up on a prototype. */
const TYPES: ReadonlyMap<string, string> = new Map(Object.entries({
  // The web client and docs.
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json; charset=utf-8",
  yaml: "application/yaml; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
  webmanifest: "application/manifest+json",
  woff2: "font/woff2",
  // Voicemail (and fax) formats.
  wav: "audio/wav",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  opus: "audio/ogg",
  gsm: "audio/gsm",
  au: "audio/basic",
  m4a: "audio/mp4",
  tif: "image/tiff",
  tiff: "image/tiff",
  pdf: "application/pdf",
}));

const UNKNOWN = "application/octet-stream";

/**
 * Content-Type for a file name, by its extension.
 *
 * @example
 * ```ts
 * contentTypeFor("static/index.html"); // "text/html; charset=utf-8"
 * contentTypeFor("README"); // "application/octet-stream"
 * ```
 */
export function contentTypeFor(name: string): string {
  return TYPES.get(name.slice(name.lastIndexOf(".") + 1).toLowerCase()) ?? UNKNOWN;
}

/**
 * Content-Type for a file format such as "wav" (a leading dot is ignored).
 *
 * @example
 * ```ts
 * mimeForFormat("WAV"); // "audio/wav"
 * mimeForFormat(".gsm"); // "audio/gsm"
 * ```
 */
export function mimeForFormat(format: string): string {
  return TYPES.get(format.replace(/^\./, "").toLowerCase()) ?? UNKNOWN;
}
