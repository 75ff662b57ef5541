/**
 * Users of the simulated MX: the seed address book (seeds/mxflex-api.md), generated filler
 * users so the address book needs paging, the directory that indexes them by JID, login and
 * extension, and the address-book protocol (mx-protocol §3.3): `<abentry>` elements, paged
 * `iq id="addressbook"` answers, `MonitorStartAb` / `MonitorStopAb` and the `Ab*Event`s.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { escapeXml, type XmlElement } from "../csta/xml.ts";
import type { SimSession } from "./session.ts";

/** Address-book page size (mx-protocol §3.3). */
export const AB_PAGE = 50;

/** One account on the simulated MX. */
export interface SimUser {
  /** Login name (`userName` of `loginRequest`). */
  login: string;
  /** Plain-text password; the simulator checks base64(SHA-1) of it (mx-protocol §2.2). */
  password: string;
  /** JID: an unsigned 64-bit decimal, kept as a string (beyond JS safe integers). */
  jid: string;
  /** Extension; `""` for server-only accounts, which are not in the address book. */
  ext: string;
  /** First name. */
  firstName: string;
  /** Last name. */
  lastName: string;
  /** Home phone. */
  homePhone?: string;
  /** Cell phone. */
  cellPhone?: string;
  /** E-mail. */
  email?: string;
  /** Direct inward dialling number. */
  did?: string;
  /** Presence status in the address book, e.g. `Available`, `LoggedOut` (default). */
  presence?: string;
  /** Presence note in the address book (default empty). */
  presenceNote?: string;
  /** May log in with `type="Server"`. */
  server?: boolean;
  /**
   * Rejects the hashed password with `loginFailed Code="4"` and then accepts the plain one
   * (exercises the client's retry rule, mx-protocol §2.4).
   */
  plainOnly?: boolean;
  /** Calls to this user's extension are diverted (DivertedEvent) to this number. */
  forwardTo?: string;
}

/** Seed contacts: [jid, ext, first, last, presence, login, extra]. */
const SEED: Array<[string, string, string, string, string, string, Partial<SimUser>?]> = [
  ["43884852633771555", "3010", "SMS", "Gateway C73", "LoggedOut", "sms"],
  ["43884851338921185", "3042", "mxflex", "mxflex", "LoggedOut", "mxflex"],
  ["43884852654574210", "3043", "Ilia", "Test", "LoggedOut", "ilia"],
  ["43884851428118509", "3044", "Peter", "Hyde", "LoggedOut", "peter", {
    homePhone: "+1-202-555-0104",
    cellPhone: "+1-512-555-0136",
    email: "peterh@xyzrd.com",
    did: "15125550136",
  }],
  ["43884850646482261", "3055", "Mike", "Flynn", "LoggedOut", "mike", {
    homePhone: "+1-202-555-0104",
    cellPhone: "+1-512-555-0136",
    email: "mikef@xyzrd.com",
  }],
  ["43884850557879186", "3080", "Test", "One", "LoggedOut", "test1"],
  ["43884851776746473", "3081", "Test", "Two", "LoggedOut", "test2"],
  ["43884852542754454", "3082", "Test", "Three", "LoggedOut", "test3"],
  ["43884852535898307", "3091", "dstest1", "dstest1", "LoggedOut", "dstest1"],
  ["43884850939404214", "3092", "dstest2", "dstest2", "LoggedOut", "dstest2", {
    cellPhone: "16693507465",
    did: "16693507465",
  }],
  ["43884850647480796", "3093", "Test", "Admin", "LoggedOut", "admin"],
  ["43884852355777349", "3094", "Zultys", "Test", "LoggedOut", "zultys"],
  ["43884851147406145", "3095", "Dmitry", "Sedykh", "Available", "dmitry", {
    cellPhone: "+79031744445",
    email: "dmitrys@xyzrd.com",
  }],
  ["43884851851343044", "3096", "Sergey", "Kananykhin", "LoggedOut", "sergey"],
  ["43884851514905017", "3097", "Test", "Zultys", "LoggedOut", "testzultys"],
  ["43884851324615074", "3098", "John", "Smith", "LoggedOut", "john", {
    cellPhone: "12035160992",
    did: "12035160992",
  }],
  ["43884852031096113", "3099", "Maxim", "Donchenko", "Available", "maxim", {
    cellPhone: "+420720961083",
  }],
];

const FIRST_NAMES = ["Anna", "Boris", "Clara", "David", "Elena", "Felix", "Galina", "Hugo"];

/** Number of generated filler users (ext 4000…); with the seed this makes 67 contacts. */
export const GENERATED_USERS = 50;

/**
 * The default population:
 * - the 17 seed contacts with their seed JIDs, names, phones, e-mails and presence, each with
 *   a login (`dmitry` for Dmitry Sedykh 3095, `maxim` 3099, `peter` 3044, … see source) and
 *   password `secret`;
 * - 50 generated users, ext 4000–4049, logins `user4001`… with password `password`; ext 4000
 *   has the seed's example login `user_login` / `password`;
 * - server accounts `server` / `password` (seed-2 config) and `d3test` / `981211` (seed-1
 *   config), which have no extension and are not in the address book.
 *
 * @example
 * ```ts
 * const users = defaultUsers();
 * users.find((u) => u.login === "dmitry")?.ext; // "3095"
 * ```
 */
export function defaultUsers(): SimUser[] {
  const users: SimUser[] = SEED.map(([jid, ext, firstName, lastName, presence, login, extra]) => ({
    login,
    password: "secret",
    jid,
    ext,
    firstName,
    lastName,
    presence,
    ...extra,
  }));
  for (let i = 0; i < GENERATED_USERS; i++) {
    const ext = String(4000 + i);
    users.push({
      login: i === 0 ? "user_login" : `user${ext}`,
      password: "password",
      // Same magnitude as real JIDs; BigInt keeps the arithmetic exact.
      jid: (43884853000000000n + BigInt(i) * 7919n).toString(),
      ext,
      firstName: FIRST_NAMES[i % FIRST_NAMES.length],
      lastName: `User ${ext}`,
      email: `user${ext}@example.test`,
      presence: "LoggedOut",
    });
  }
  users.push(
    {
      login: "server",
      password: "password",
      jid: "43884850000000001",
      ext: "",
      firstName: "Server",
      lastName: "Account",
      server: true,
    },
    {
      login: "d3test",
      password: "981211",
      jid: "43884850000000002",
      ext: "",
      firstName: "d3test",
      lastName: "Server",
      server: true,
    },
  );
  return users;
}

/**
 * base64(SHA-1(password)) without the trailing newline, as the MX compares it.
 *
 * @example
 * ```ts
 * passwordHash("password"); // "W6ph5Mm5Pz8GgiULbPgzG37mj9g="
 * ```
 */
export function passwordHash(password: string): string {
  return createHash("sha1").update(password, "utf8").digest("base64");
}

/**
 * Renders one `<abentry>` exactly as the address book and Ab*Event messages carry it.
 *
 * @example
 * ```ts
 * abEntryXml(defaultUsers().find((u) => u.ext === "3095")!);
 * // <abentry jid="43884851147406145" presence="Available" presenceNote=""><firstName>Dmitry…
 * ```
 */
export function abEntryXml(u: SimUser): string {
  return `<abentry jid="${escapeXml(u.jid)}" presence="${escapeXml(u.presence ?? "LoggedOut")}"` +
    ` presenceNote="${escapeXml(u.presenceNote ?? "")}">` +
    `<firstName>${escapeXml(u.firstName)}</firstName>` +
    `<lastName>${escapeXml(u.lastName)}</lastName>` +
    `<businessPhone>${escapeXml(u.ext)}</businessPhone>` +
    `<homePhone>${escapeXml(u.homePhone ?? "")}</homePhone>` +
    `<cellPhone>${escapeXml(u.cellPhone ?? "")}</cellPhone>` +
    `<email>${escapeXml(u.email ?? "")}</email>` +
    `<homeSystem>0</homeSystem><did>${escapeXml(u.did ?? "")}</did>` +
    `<exchangeId></exchangeId></abentry>`;
}

/**
 * Display name used in call events: "First Last", or the number for outsiders.
 *
 * @example
 * ```ts
 * displayName(undefined, "+15550100"); // "+15550100"
 * ```
 */
export function displayName(u: SimUser | undefined, number: string): string {
  if (!u) return number;
  const name = `${u.firstName} ${u.lastName}`.trim();
  return name || number;
}

/**
 * The simulator's user table, indexed by JID (insertion order = address-book order), login
 * and extension. Password hashes are precomputed so a login check costs one string compare.
 *
 * @example
 * ```ts
 * const users = new UserDirectory(defaultUsers());
 * users.byExt("3095")?.login; // "dmitry"
 * users.hashMatches(users.byLogin("dmitry")!, passwordHash("secret")); // true
 * ```
 */
export class UserDirectory {
  #byJid = new Map<string, SimUser>();
  #byLogin = new Map<string, SimUser>();
  #byExt = new Map<string, SimUser>();
  #hash = new Map<string, string>();

  /** @param users initial users; later duplicates (same JID) replace earlier ones */
  constructor(users: readonly SimUser[]) {
    for (const u of users) this.put(u);
  }

  /** Adds or replaces a user (matched by JID). Copies the object so callers cannot mutate it. */
  put(user: SimUser): SimUser {
    const old = this.#byJid.get(user.jid);
    if (old) this.#unindex(old);
    const u = { ...user };
    this.#byJid.set(u.jid, u);
    if (u.login) this.#byLogin.set(u.login, u);
    if (u.ext) this.#byExt.set(u.ext, u);
    this.#hash.set(u.jid, passwordHash(u.password));
    return u;
  }

  /** Sets a user's presence and note in place; returns the user, or undefined when unknown. */
  setPresence(jid: string, status: string, note: string): SimUser | undefined {
    const u = this.#byJid.get(jid);
    if (!u) return undefined;
    u.presence = status;
    u.presenceNote = note;
    return u;
  }

  /** Removes a user; returns it, or undefined when unknown. */
  remove(jid: string): SimUser | undefined {
    const u = this.#byJid.get(jid);
    if (!u) return undefined;
    this.#unindex(u);
    this.#byJid.delete(jid);
    this.#hash.delete(jid);
    return u;
  }

  #unindex(u: SimUser): void {
    if (this.#byLogin.get(u.login) === u) this.#byLogin.delete(u.login);
    if (this.#byExt.get(u.ext) === u) this.#byExt.delete(u.ext);
  }

  /** User by JID. */
  byJid(jid: string): SimUser | undefined {
    return this.#byJid.get(jid);
  }

  /** User by login name. */
  byLogin(login: string): SimUser | undefined {
    return this.#byLogin.get(login);
  }

  /** User by extension. */
  byExt(ext: string): SimUser | undefined {
    return ext ? this.#byExt.get(ext) : undefined;
  }

  /** Whether the hashed password text (trailing newline optional) matches. */
  hashMatches(u: SimUser, pwd: string): boolean {
    const h = pwd.endsWith("\n") ? pwd.slice(0, -1) : pwd;
    return this.#hash.get(u.jid) === h;
  }

  /** Address-book entries: every user with an extension, in insertion order. */
  contacts(): SimUser[] {
    const out: SimUser[] = [];
    for (const u of this.#byJid.values()) if (u.ext) out.push(u);
    return out;
  }
}

/**
 * The `Ab*Event` announcing a change of `u` to `MonitorStartAb` sessions: `add`, `update`
 * (both carry the `<abentry>`) or `delete` (the JID only).
 *
 * @example
 * ```ts
 * abEventXml("delete", user); // <AbDeleteUserEvent><userId>4388…</userId></AbDeleteUserEvent>
 * ```
 */
export function abEventXml(kind: "add" | "update" | "delete", u: SimUser): string {
  switch (kind) {
    case "add":
      return `<AbAddUserEvent>${abEntryXml(u)}</AbAddUserEvent>`;
    case "update":
      return `<AbUpdateUserEvent>${abEntryXml(u)}</AbUpdateUserEvent>`;
    case "delete":
      return `<AbDeleteUserEvent><userId>${escapeXml(u.jid)}</userId></AbDeleteUserEvent>`;
  }
}

/**
 * Handles `<iq id="addressbook" index="n">`: sends page `n` (50 entries) as an `<ablist>`
 * event with the total size, as the MX does (no reply by invoke id).
 *
 * @example
 * ```ts
 * handleAddressBookPage(users, session, parseXml('<iq type="get" id="addressbook" index="1"/>'));
 * // session gets <ablist size="67" index="1"><abentry …>… (entries 50–66)
 * ```
 */
export function handleAddressBookPage(users: UserDirectory, s: SimSession, el: XmlElement): void {
  const contacts = users.contacts();
  const index = Math.max(0, Math.trunc(Number(el.attrs.index ?? 0)) || 0);
  const page = contacts.slice(index * AB_PAGE, (index + 1) * AB_PAGE);
  s.event(
    `<ablist size="${contacts.length}" index="${index}">` + page.map(abEntryXml).join("") +
      `</ablist>`,
  );
}

/**
 * Handles `MonitorStartAb` / `MonitorStopAb`: the session does (not) get `Ab*Event`s.
 *
 * @example
 * ```ts
 * handleAbMonitor(session, 3, parseXml("<MonitorStartAb/>")); // session.abMonitor === true
 * ```
 */
export function handleAbMonitor(s: SimSession, id: number, el: XmlElement): void {
  s.abMonitor = el.name === "MonitorStartAb";
  s.send(id, `<${el.name}Response></${el.name}Response>`);
}
