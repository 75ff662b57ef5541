/**
 * Small readers shared by the reply parsers of every domain and the event decoders
 * (`events.ts`); not part of `lib/csta`'s public surface.
 *
 * @module
 */
import type { XmlElement } from "../xml.ts";

/** Namespace mxproxy (seed 2) put on `MonitorStart`, `MonitorStop` and `MakeCall`. */
export const CSTA_ED4_NS = "http://www.ecma-international.org/standards/ecma-323/csta/ed4";

/**
 * Integer from an attribute or text; 0 when missing or malformed (Go's zero value).
 *
 * @example
 * ```ts
 * toInt(" 42 "); // 42
 * toInt("x"); // 0
 * toInt(undefined); // 0
 * ```
 */
export function toInt(s: string | undefined): number {
  if (!s) return 0;
  const v = Number(s.trim());
  return Number.isFinite(v) ? Math.trunc(v) : 0;
}

/**
 * `true` for "true" or "1" (any case, trimmed); everything else is false.
 *
 * @example
 * ```ts
 * toBool("True"); // true
 * toBool("0"); // false
 * ```
 */
export function toBool(s: string | undefined): boolean {
  const t = s?.trim().toLowerCase();
  return t === "true" || t === "1";
}

/**
 * Attribute value, trying alternative spellings (the MX is inconsistent about case).
 *
 * @example
 * ```ts
 * attr(parseXml('<LoginResponce Code="0"/>'), "Code", "code"); // "0"
 * ```
 */
export function attr(e: XmlElement, ...names: string[]): string {
  for (const n of names) {
    const v = e.attrs[n];
    if (v !== undefined) return v.trim();
  }
  return "";
}

/**
 * An empty string becomes `undefined`, so `el` omits the attribute.
 *
 * @example
 * ```ts
 * el("loginRequest", { platform: opt(o.platform) }); // no platform attribute when ""
 * ```
 */
export function opt(s: string | undefined): string | undefined {
  return s ? s : undefined;
}
