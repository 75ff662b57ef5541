/**
 * Request-body reading shared by the routers: form (urlencoded, multipart) or JSON, with a
 * size limit and clear 4xx errors instead of the originals' 500 on bad JSON.
 *
 * @module
 */
import { HttpError } from "./errors.ts";

/** Largest accepted request body (bytes). Requests are small forms and JSON objects. */
export const MAX_BODY_BYTES = 64 * 1024;

/** A parsed body: field name -> string, number, boolean or nested JSON value. */
export type Fields = Record<string, unknown>;

/**
 * Reads and parses the body by Content-Type. An absent body gives `{}`.
 * @throws {HttpError} 413 when too large, 400 when malformed, 415 for unsupported types
 *
 * @example
 * ```ts
 * const f = await readFields(c.req.raw); // JSON, urlencoded or multipart
 * const login = stringField(f, "login");
 * ```
 */
export async function readFields(req: Request): Promise<Fields> {
  if (req.method === "GET" || req.method === "HEAD" || !req.body) return {};
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, "request body too large");
  const bytes = await readLimited(req.body);
  if (bytes.length === 0) return {};
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const text = () => {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new HttpError(400, "body is not valid UTF-8");
    }
  };
  if (type === "application/json" || type.endsWith("+json")) {
    let v: unknown;
    try {
      v = JSON.parse(text());
    } catch {
      throw new HttpError(400, "malformed JSON body");
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new HttpError(400, "JSON body must be an object");
    }
    return v as Fields;
  }
  if (type === "application/x-www-form-urlencoded" || type === "") {
    return Object.fromEntries(new URLSearchParams(text()));
  }
  if (type === "multipart/form-data") {
    try {
      const form = await new Response(bytes as Uint8Array<ArrayBuffer>, { headers: req.headers })
        .formData();
      const out: Fields = {};
      for (const [k, v] of form) if (typeof v === "string") out[k] = v;
      return out;
    } catch {
      throw new HttpError(400, "malformed multipart body");
    }
  }
  throw new HttpError(415, "unsupported content type");
}

async function readLimited(body: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw new HttpError(413, "request body too large");
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** The longest string field {@link stringField} accepts by default (UTF-16 code units). */
export const MAX_FIELD_LENGTH = 256;

// What XML 1.0 cannot carry (every string field may travel to the MX inside a CSTA frame):
// C0 controls other than tab, line feed and carriage return, U+FFFE and U+FFFF. Lone
// surrogates are checked with isWellFormed: UTF-8 turns them into U+FFFD on the wire, so
// the MX would see (and echo) another text than the one sent.
// deno-lint-ignore no-control-regex
const NOT_XML_RE = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/;

/**
 * A string field, trimmed; `undefined` when absent or empty. A JSON number is taken as its
 * decimal text.
 * @throws {HttpError} 400 on another type, a text longer than `max`, or characters XML
 * cannot carry (control characters, lone surrogates)
 *
 * @example
 * ```ts
 * stringField({ to: " 3099 " }, "to"); // "3099"
 * stringField({ token: longToken }, "token", 4096);
 * ```
 */
export function stringField(f: Fields, name: string, max = MAX_FIELD_LENGTH): string | undefined {
  const v = f[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "number") return String(v);
  if (typeof v !== "string") throw new HttpError(400, `${name} must be a string`);
  const t = v.trim();
  if (t.length > max) throw new HttpError(400, `${name} is too long`);
  if (NOT_XML_RE.test(t) || !t.isWellFormed()) {
    throw new HttpError(400, `${name} has characters that cannot be sent`);
  }
  return t === "" ? undefined : t;
}

/**
 * An integer field within [min, max]; `def` when absent.
 * @throws {HttpError} 400 otherwise
 *
 * @example
 * ```ts
 * intField({ timestamp: "1501101500" }, "timestamp", 0, 0, 2 ** 31); // 1501101500
 * ```
 */
export function intField(f: Fields, name: string, def: number, min: number, max: number): number {
  const v = f[name];
  if (v === undefined || v === null || v === "") return def;
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HttpError(400, `${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * A boolean field; `undefined` when absent.
 * @throws {HttpError} 400 on other types
 *
 * @example
 * ```ts
 * boolField({ read: true }, "read"); // true
 * ```
 */
export function boolField(f: Fields, name: string): boolean | undefined {
  const v = f[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "boolean") return v;
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new HttpError(400, `${name} must be a boolean`);
}
