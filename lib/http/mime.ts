/**
 * MIME types for voicemail file formats reported by the MX (`fileFormat`).
 *
 * @module
 */

const TYPES: Record<string, string> = {
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
};

/**
 * Content-Type for a file format such as "wav" (a leading dot is ignored); unknown formats
 * are `application/octet-stream`.
 */
export function mimeForFormat(format: string): string {
  return TYPES[format.replace(/^\./, "").toLowerCase()] ?? "application/octet-stream";
}
