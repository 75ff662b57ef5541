/**
 * A voicemail download as an HTTP response (both APIs): the audio streamed as the MX sends
 * it, with its type and file name, and a stall limit: a client that reads nothing for
 * `idleMs` is cut and the MX transfer cancelled (`MailCancelReceive`), so a stalled client
 * cannot hold an MX session. The download's stream owns its user session and closes it at
 * its end, on error and on cancel (`UserSession.downloadVoicemail`).
 *
 * @example
 * ```ts
 * return await serveVoicemail(c.req.raw, id, (fn) => mx.withUser(login, password, fn, {
 *   keepOpen: true,
 * }), { log });
 * ```
 *
 * @module
 */
import type { UserSession, VoicemailDownload } from "../mx/mod.ts";
import type { Logger } from "../log.ts";
import { BodyCutError, HttpError } from "./errors.ts";
import { mimeForFormat } from "./mime.ts";

/** A voicemail download whose client reads nothing for this long is cancelled. */
export const VOICEMAIL_IDLE_MS = 60_000;

/**
 * `Content-Disposition` for a file name from the MX: an ASCII `filename` (quotes and
 * non-ASCII replaced) plus RFC 5987 `filename*` with the exact UTF-8 name.
 *
 * @example
 * ```ts
 * contentDisposition("Grüße.wav"); // attachment; filename="Gr__e.wav"; filename*=UTF-8''Gr%C3%BC%C3%9Fe.wav
 * ```
 */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** Options of {@link voicemailResponse}. */
export interface VoicemailResponseOptions {
  /** The voicemail id (log lines, fallback file name). */
  id: string;
  log: Logger;
  /** Stall limit, ms; default {@link VOICEMAIL_IDLE_MS}. */
  idleMs?: number;
  /**
   * A HEAD request: the headers only, and the transfer cancelled at once (hono runs the GET
   * handler for HEAD and drops the body without cancelling it, which would hold the MX session
   * until the stall limit).
   */
  head?: boolean;
}

/**
 * The 200 response streaming `dl`. Cancels the download if building the response fails.
 *
 * @example
 * ```ts
 * return voicemailResponse(dl, { id: "80", log, idleMs: 60_000 });
 * ```
 */
export async function voicemailResponse(
  dl: VoicemailDownload,
  o: VoicemailResponseOptions,
): Promise<Response> {
  const headers = {
    "Content-Type": mimeForFormat(dl.fileFormat),
    "Content-Disposition": contentDisposition(
      dl.documentName || `${o.id}.${dl.fileFormat || "wav"}`,
    ),
    "Cache-Control": "private, no-store",
  };
  if (o.head) {
    await dl.stream.cancel().catch(() => {});
    return new Response(null, { headers });
  }
  const src = dl.stream.getReader();
  let idle: ReturnType<typeof setTimeout> | undefined;
  const stopIdle = () => clearTimeout(idle);
  const armIdle = (ctl: ReadableStreamDefaultController<Uint8Array>) => {
    stopIdle();
    idle = setTimeout(() => {
      o.log.info(`voicemail ${o.id}: client stalled, download cancelled`);
      src.cancel().catch(() => {});
      try {
        ctl.error(new BodyCutError("client stalled"));
      } catch {
        // already closed
      }
    }, o.idleMs ?? VOICEMAIL_IDLE_MS);
  };
  const body = new ReadableStream<Uint8Array>({
    start(ctl) {
      armIdle(ctl);
    },
    async pull(ctl) {
      stopIdle();
      try {
        const { done, value } = await src.read();
        if (done) {
          ctl.close();
        } else {
          ctl.enqueue(value);
          armIdle(ctl);
        }
      } catch (err) {
        o.log.warn(`voicemail ${o.id} stream failed: ${(err as Error).message}`);
        ctl.error(err);
      }
    },
    async cancel() {
      stopIdle();
      await src.cancel().catch(() => {});
    },
  }, { highWaterMark: 0 });
  try {
    return new Response(body, { headers });
  } catch (err) {
    stopIdle();
    await src.cancel().catch(() => {});
    throw err;
  }
}

/**
 * Answers a request for voicemail `id`: `withUser` runs the download's start on a user session
 * that stays open with the stream (`keepOpen`); 404 when the MX does not know the id; HEAD gets
 * the headers only.
 * @throws {HttpError} 404 "voicemail not found"
 *
 * @example
 * ```ts
 * app.get("/api/voicemail/:id", (c) =>
 *   serveVoicemail(c.req.raw, id, (fn) => asUser(c, fn, true), { log }));
 * ```
 */
export async function serveVoicemail(
  req: Request,
  id: string,
  withUser: (fn: (user: UserSession) => Promise<VoicemailDownload>) => Promise<VoicemailDownload>,
  o: Omit<VoicemailResponseOptions, "id" | "head">,
): Promise<Response> {
  const dl = await withUser(async (user) => {
    const dl = await user.downloadVoicemail(id);
    if (!dl) throw new HttpError(404, "voicemail not found");
    return dl;
  });
  return await voicemailResponse(dl, { ...o, id, head: req.method === "HEAD" });
}
