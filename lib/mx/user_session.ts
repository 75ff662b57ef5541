/**
 * A short-lived session logged in as one MX user (the Proxy API opens one per request, as
 * mxproxy did): call log, callback call and voicemail, each doing its own protocol
 * prerequisites, so callers never send a command in the wrong order. Obtain one with
 * `MxSession.withUser` (opens, runs, closes) or `MxSession.openUser`.
 *
 * @module
 */
import {
  callbackCall,
  type CallLogRecord,
  type CstaConnection,
  deleteVoicemail,
  downloadVoicemail,
  fetchCallLog,
  hashPassword,
  isHashedPassword,
  listVoicemail,
  type LoginInfo,
  type MakeCallResult,
  RefusedError,
  setPresence,
  startMonitor,
  updateVoicemail,
  type Voicemail,
  type VoicemailDownload,
} from "../csta/mod.ts";

/**
 * The presence statuses a user can choose (`PUT /api/presence`). The MX itself reports
 * others too (`LoggedOut`, statuses during calls, …), which are passed through as they come.
 */
export const SETTABLE_PRESENCE: readonly string[] = Object.freeze([
  "Available",
  "Away",
  "Busy",
  "DoNotDisturb",
]);

/**
 * What logs in as this user again without the plain password: the hash the MX login sent
 * (mx-protocol §2.2), or the plain password when this MX accepted only that (§2.4).
 *
 * @example
 * ```ts
 * const info = await mx.verifyUser(login, password);
 * const secret = await loginSecret(password, info); // "W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"
 * ```
 */
export async function loginSecret(password: string, info: LoginInfo): Promise<string> {
  if (info.plainPassword || isHashedPassword(password)) return password;
  return await hashPassword(password);
}

/** What {@link UserSession.callback} needs. */
export interface CallbackOptions {
  /** The phone the MX rings first (the user's mobile, say). */
  from: string;
  /** The number called once `from` answers. */
  to: string;
  /** Ring delay in seconds (0–255). */
  ringDelay: number;
  /** Voicemail delay in seconds (0–255). */
  vmDelay: number;
}

/**
 * A logged-in user session.
 *
 * @example
 * ```ts
 * await mx.withUser("dmitry", "secret", async (user) => {
 *   const log = await user.callLog(-1);
 *   const mails = await user.voicemails();
 *   await user.updateVoicemail(mails[0].id, { read: true });
 * });
 * ```
 */
export class UserSession {
  /** The login reply: the user's JID, extension, the MX serial number. */
  readonly info: LoginInfo;
  #conn: CstaConnection;
  #mailReady?: Promise<void>;

  /**
   * @param conn a connection already logged in as the user; the session owns it from now on
   */
  constructor(conn: CstaConnection) {
    if (!conn.info) throw new TypeError("UserSession needs a logged-in connection");
    this.#conn = conn;
    this.info = conn.info;
  }

  /** The user's JID (a decimal string). */
  get jid(): string {
    return this.info.jid;
  }

  /** The user's extension. */
  get ext(): string {
    return this.info.ext;
  }

  /** True once the session has ended (closed here, or by the MX). */
  get isClosed(): boolean {
    return this.#conn.isClosed;
  }

  /** Resolves once the session has ended (closed here, or by the MX). */
  get closed(): Promise<unknown> {
    return this.#conn.closed;
  }

  /**
   * The user's call log from `timestamp` (Unix seconds, -1 = all), sorted by `recordId`; an
   * empty log is `[]` (mx-protocol §7.8).
   *
   * @example
   * ```ts
   * const records = await user.callLog(1501101426);
   * ```
   */
  callLog(timestamp = -1): Promise<CallLogRecord[]> {
    return fetchCallLog(this.#conn, timestamp);
  }

  /**
   * Callback call from the user's extension (mx-protocol §3.4.2, §7.11): the MX rings `from`
   * first, then calls `to`. The MX keeps the call after this session closes.
   *
   * @example
   * ```ts
   * const call = await user.callback({ from: "79031744445", to: "3099", ringDelay: 1, vmDelay: 30 });
   * ```
   */
  callback(o: CallbackOptions): Promise<MakeCallResult> {
    return callbackCall(this.#conn, { ext: this.ext, ...o });
  }

  /**
   * The user's voicemail list.
   *
   * @example
   * ```ts
   * for (const v of await user.voicemails()) console.log(v.id, v.from, v.duration);
   * ```
   */
  async voicemails(): Promise<Voicemail[]> {
    await this.#mail();
    return await listVoicemail(this.#conn, this.ext);
  }

  /**
   * Starts streaming a voicemail; `undefined` when the MX refuses the id (unknown, or not
   * this user's). The stream owns the session: it closes it when it ends, fails or is
   * cancelled (cancelling first sends `MailCancelReceive`), so use it with
   * `withUser(…, { keepOpen: true })` and always consume or cancel the stream.
   *
   * @example
   * ```ts
   * const dl = await mx.withUser(login, password, (u) => u.downloadVoicemail("80"), { keepOpen: true });
   * if (dl) return new Response(dl.stream);
   * ```
   */
  async downloadVoicemail(mailId: string): Promise<VoicemailDownload | undefined> {
    await this.#mail();
    let dl: VoicemailDownload;
    try {
      dl = await downloadVoicemail(this.#conn, mailId);
    } catch (err) {
      if (err instanceof RefusedError) return undefined;
      throw err;
    }
    const src = dl.stream.getReader();
    const close = () => this.close();
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        try {
          const { done, value } = await src.read();
          if (done) {
            close();
            ctl.close();
          } else {
            ctl.enqueue(value);
          }
        } catch (err) {
          close();
          ctl.error(err);
        }
      },
      async cancel(reason) {
        await src.cancel(reason).catch(() => {});
        close();
      },
    }, { highWaterMark: 0 });
    return { ...dl, stream };
  }

  /**
   * Sets the read flag and/or the note of a voicemail (read flag first, as mxproxy did).
   * Returns `false` when the MX refuses the first command: no such message (unknown, or not
   * this user's), the same answer as {@link downloadVoicemail}'s `undefined`. A refusal of the
   * note after the read flag was accepted is the MX saying no to that note, and throws.
   * @throws {RefusedError} when the MX refuses the note of an existing message
   *
   * @example
   * ```ts
   * if (!await user.updateVoicemail("80", { read: true, note: "call back" })) console.log("no such message");
   * ```
   */
  async updateVoicemail(mailId: string, o: { read?: boolean; note?: string }): Promise<boolean> {
    await this.#mail();
    let first = true;
    try {
      if (o.read !== undefined) {
        await updateVoicemail(this.#conn, mailId, { read: o.read });
        first = false;
      }
      if (o.note !== undefined) await updateVoicemail(this.#conn, mailId, { note: o.note });
    } catch (err) {
      if (first && err instanceof RefusedError) return false;
      throw err;
    }
    return true;
  }

  /**
   * Deletes a voicemail. Deleting an absent or foreign message is not an error (the MX's
   * refusal is ignored, as the seed specifies); other failures still throw.
   *
   * @example
   * ```ts
   * await user.deleteVoicemail("80");
   * ```
   */
  async deleteVoicemail(mailId: string): Promise<void> {
    await this.#mail();
    try {
      await deleteVoicemail(this.#conn, mailId);
    } catch (err) {
      if (!(err instanceof RefusedError)) throw err;
    }
  }

  /**
   * Sets the user's presence (one of {@link SETTABLE_PRESENCE}) and note, and waits until
   * the MX confirms it; the MX then announces it to every session, the server's included.
   * @throws {RangeError} for a status a user cannot set
   * @throws {RefusedError} when the MX refuses
   * @throws {TimeoutError} when the MX does not confirm in time
   *
   * @example
   * ```ts
   * await user.setPresence("Away", "back at 3");
   * ```
   */
  async setPresence(status: string, note = ""): Promise<void> {
    if (!SETTABLE_PRESENCE.includes(status)) throw new RangeError(`bad presence status ${status}`);
    await setPresence(this.#conn, status, note);
  }

  /**
   * Logs out and closes the connection. Safe to call more than once.
   *
   * @example
   * ```ts
   * user.close();
   * ```
   */
  close(): void {
    this.#conn.close();
  }

  /**
   * Mail commands need the session to monitor its own extension first (mx-protocol §7.10):
   * sent once per session, before the first mail command.
   */
  #mail(): Promise<void> {
    this.#mailReady ??= startMonitor(this.#conn, this.ext).then(
      () => {},
      (err) => {
        this.#mailReady = undefined;
        throw err;
      },
    );
    return this.#mailReady;
  }
}
