/**
 * The `-csta` wire log: every frame in and out, with secrets redacted.
 *
 * The seed warns that this log holds passwords and whole voicemails; we redact password
 * hashes (`<pwd>`), SIP passwords (`softPhonePwd`), and audio (`<mediaContent>`), so the log
 * is safe to keep for debugging.
 *
 * @module
 */

/** Direction of a logged frame. */
export type WireDirection = "in" | "out";

/** A sink for wire-log lines. */
export type WireLogger = (dir: WireDirection, invokeId: number, payload: string) => void;

const PWD = /<pwd>[\s\S]*?<\/pwd>/g;
const MEDIA = /<mediaContent>([\s\S]*?)<\/mediaContent>/g;
const SOFTPHONE = /(softPhonePwd=)("[^"]*"|'[^']*')/g;

/**
 * Returns the payload with secrets replaced by markers.
 *
 * @example
 * ```ts
 * redactWire("<pwd>W6ph…</pwd>"); // "<pwd>[redacted]</pwd>"
 * ```
 */
export function redactWire(payload: string): string {
  if (payload.includes("<pwd>")) payload = payload.replace(PWD, "<pwd>[redacted]</pwd>");
  if (payload.includes("<mediaContent>")) {
    payload = payload.replace(
      MEDIA,
      (_m, b64: string) => `<mediaContent>[${b64.length} base64 chars redacted]</mediaContent>`,
    );
  }
  if (payload.includes("softPhonePwd")) payload = payload.replace(SOFTPHONE, '$1"[redacted]"');
  return payload;
}

/**
 * A wire logger that writes redacted lines to stdout (the seed's `-csta` went to stdout,
 * apart from the normal log on stderr).
 *
 * @example
 * ```ts
 * const mx = new MxSession(cfg, { log, wireLog: stdoutWireLogger("csta") });
 * ```
 */
export function stdoutWireLogger(label: string): WireLogger {
  const enc = new TextEncoder();
  return (dir, id, payload) => {
    const line = `${new Date().toISOString()} ${label} ${dir === "in" ? "<-" : "->"} ${
      id.toString().padStart(4, "0")
    } ${redactWire(payload)}\n`;
    Deno.stdout.writeSync(enc.encode(line));
  };
}
