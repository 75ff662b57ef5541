/**
 * The address book (mx-protocol §3.2, §3.3): subscribing to change events
 * (`MonitorStartAb`), reading all contacts in 50-entry pages (`ablist` replies, matched by
 * name), and the `<abentry>` reader shared with the `Ab*UserEvent` decoders.
 *
 * @example
 * ```ts
 * await monitorAddressBook(conn); // before the fetch, so no change in between is missed
 * const contacts = await fetchAddressBook(conn);
 * ```
 *
 * @module
 */
import { el, type XmlElement } from "../xml.ts";
import type { CstaConnection } from "../connection.ts";
import type { Contact } from "../types.ts";
import { attr, toInt } from "./_util.ts";
import { throwIfErrorReply } from "./error_reply.ts";

/** Address-book page size used by the MX (mx-protocol §3.3). */
export const AB_PAGE_SIZE = 50;

/**
 * `<MonitorStartAb/>`: subscribe to address-book change events (§3.2).
 *
 * @example
 * ```ts
 * monitorStartAb(); // "<MonitorStartAb/>"
 * ```
 */
export function monitorStartAb(): string {
  return "<MonitorStartAb/>";
}

/**
 * Requests one 50-entry address-book page; answered by an `ablist` message.
 *
 * @example
 * ```ts
 * addressBookRequest(0); // <iq type="get" id="addressbook" index="0"></iq>
 * ```
 */
export function addressBookRequest(index: number): string {
  return el("iq", { type: "get", id: "addressbook", index }).xml;
}

/**
 * Reads one `ablist` page: `size` is the total number of contacts, `index` the page number.
 * @throws {RefusedError} for `CSTAErrorCode`
 *
 * @example
 * ```ts
 * parseAbList(parseXml('<ablist size="1" index="0"><abentry jid="1"/></ablist>')).contacts.length; // 1
 * ```
 */
export function parseAbList(e: XmlElement): { size: number; index: number; contacts: Contact[] } {
  throwIfErrorReply(e);
  const contacts: Contact[] = [];
  for (const c of e.children) if (c.name === "abentry") contacts.push(parseAbEntry(c));
  return { size: toInt(e.attrs.size), index: toInt(e.attrs.index), contacts };
}

/**
 * Reads one `<abentry>` (from `ablist` or an `Ab*UserEvent`). `businessPhone` is the
 * extension; a `homeSystem` of 0 means none and becomes `""`.
 *
 * @example
 * ```ts
 * parseAbEntry(parseXml('<abentry jid="7"><businessPhone>3095</businessPhone></abentry>')).ext; // "3095"
 * ```
 */
export function parseAbEntry(e: XmlElement): Contact {
  const ct: Contact = {
    jid: attr(e, "jid"),
    presence: attr(e, "presence"),
    presenceNote: attr(e, "presenceNote"),
    firstName: "",
    lastName: "",
    ext: "",
    homePhone: "",
    cellPhone: "",
    email: "",
    homeSystem: "",
    did: "",
    exchangeId: "",
  };
  // One pass over the children instead of a lookup per field.
  for (const c of e.children) {
    const t = c.text.trim();
    switch (c.name) {
      case "firstName":
        ct.firstName = t;
        break;
      case "lastName":
        ct.lastName = t;
        break;
      case "businessPhone":
        ct.ext = t;
        break;
      case "homePhone":
        ct.homePhone = t;
        break;
      case "cellPhone":
        ct.cellPhone = t;
        break;
      case "email":
        ct.email = t;
        break;
      case "homeSystem":
        ct.homeSystem = t === "0" ? "" : t;
        break;
      case "did":
        ct.did = t;
        break;
      case "exchangeId":
        ct.exchangeId = t;
        break;
      case "presenceNote":
        if (!ct.presenceNote) ct.presenceNote = t;
        break;
    }
  }
  return ct;
}

/**
 * Subscribes the session to address-book change events (`MonitorStartAb`) and waits for the
 * MX to accept.
 * @throws {RefusedError} when the MX refuses
 *
 * @example
 * ```ts
 * await monitorAddressBook(conn);
 * ```
 */
export async function monitorAddressBook(conn: CstaConnection): Promise<void> {
  await conn.request(monitorStartAb());
}

/**
 * Reads the whole address book, page by page.
 * @throws {TimeoutError} when a page does not arrive (the whole fetch is aborted)
 *
 * @example
 * ```ts
 * const contacts = await fetchAddressBook(conn);
 * ```
 */
export async function fetchAddressBook(conn: CstaConnection): Promise<Contact[]> {
  const contacts: Contact[] = [];
  let index = 0;
  for (;;) {
    const next = conn.waitForName(["ablist"]);
    conn.send(addressBookRequest(index));
    const page = parseAbList(await next);
    contacts.push(...page.contacts);
    if ((page.index + 1) * AB_PAGE_SIZE >= page.size || page.contacts.length === 0) break;
    index = page.index + 1;
  }
  return contacts;
}
