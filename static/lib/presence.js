// @ts-check
/**
 * Presence as the page shows it: the statuses a user can choose for themselves
 * (`PUT /api/presence`), the colour class and label of any status the MX reports, and the
 * legend explaining the colours.
 *
 * The MX reports status strings: the four a user chooses, `OnThePhone` while on a call,
 * `LoggedOut`, and possibly others; anything not known here is still shown, by its own
 * text, in the colour of the nearest known group (docs/openapi.yaml, `PresenceEvent`).
 *
 * @example
 * ```js
 * presenceClass("Available"); // "on"
 * presenceClass("Away"); // "away"
 * presenceLabel("DoNotDisturb"); // "Do not disturb"
 * ```
 *
 * @module
 */

/** @typedef {"on" | "away" | "busy" | "off"} PresenceClass */

/**
 * The statuses a user can set, in menu order, with their labels.
 * @type {readonly {status: string, label: string}[]}
 */
export const PRESENCE_CHOICES = Object.freeze([
  { status: "Available", label: "Available" },
  { status: "Away", label: "Away" },
  { status: "Busy", label: "Busy" },
  { status: "DoNotDisturb", label: "Do not disturb" },
]);

/**
 * What the dot colours mean, in legend order.
 * @type {readonly {cls: PresenceClass, label: string}[]}
 */
export const PRESENCE_LEGEND = Object.freeze([
  { cls: "on", label: "Available" },
  { cls: "away", label: "Away" },
  { cls: "busy", label: "Busy, do not disturb" },
  { cls: "off", label: "Offline" },
]);

/** @param {string | undefined} status */
const key = (status) => (status ?? "").toLowerCase().replace(/[^a-z]/g, "");

/** @type {Readonly<Record<string, PresenceClass>>} */
const CLASSES = {
  available: "on",
  online: "on",
  away: "away",
  berightback: "away",
  outtolunch: "away",
  idle: "away",
  busy: "busy",
  onthephone: "busy",
  inameeting: "busy",
  donotdisturb: "busy",
  dnd: "busy",
  loggedout: "off",
  offline: "off",
  unavailable: "off",
};

/**
 * The dot colour of a status: `on`, `away`, `busy` or `off` (none or logged out); an
 * unknown status counts as busy (the person is there, but not simply available).
 * @param {string | undefined} status
 * @returns {PresenceClass}
 */
export function presenceClass(status) {
  const k = key(status);
  if (!k) return "off";
  return CLASSES[k] ?? "busy";
}

/**
 * A status as words: the label of a known choice, `Offline` for none or logged out, else
 * the MX's own text with its words apart (`OnThePhone` -> `On the phone`).
 * @param {string | undefined} status
 */
export function presenceLabel(status) {
  const k = key(status);
  const choice = PRESENCE_CHOICES.find((c) => key(c.status) === k);
  if (choice) return choice.label;
  if (!k || presenceClass(status) === "off") return "Offline";
  const words = (status ?? "").trim().replace(/([a-z])([A-Z])/g, "$1 $2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1 $2");
  return words.charAt(0).toUpperCase() + words.slice(1).toLowerCase();
}
