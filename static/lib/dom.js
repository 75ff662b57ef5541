// @ts-check
/**
 * Small DOM helpers shared by the views.
 *
 * @example
 * ```js
 * const input = byId("dial-input", HTMLInputElement);
 * showText(byId("action-error"), "Call failed");
 * const li = cloneTemplate("call-template");
 * ```
 *
 * @module
 */

/**
 * The element with `id`, checked to be a `type` (default `HTMLElement`). A missing or
 * different element is a bug in index.html: it throws.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {{new (): T, prototype: T}} [type]
 * @returns {T}
 */
export function byId(id, type) {
  const el = document.getElementById(id);
  const want = type ?? HTMLElement;
  if (!(el instanceof want)) throw new Error(`index.html has no #${id} (${want.name})`);
  return /** @type {T} */ (el);
}

/**
 * The first element of a `<template id=...>` in index.html, cloned.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function cloneTemplate(id) {
  const t = byId(id, HTMLTemplateElement);
  const el = t.content.firstElementChild?.cloneNode(true);
  if (!(el instanceof HTMLElement)) throw new Error(`template #${id} is empty`);
  return el;
}

/**
 * The element matching `sel` inside `root`; throws when there is none.
 * @param {ParentNode} root
 * @param {string} sel
 * @returns {HTMLElement}
 */
export function part(root, sel) {
  const el = root.querySelector(sel);
  if (!(el instanceof HTMLElement)) throw new Error(`no ${sel} in the template`);
  return el;
}

/**
 * Sets the text of the element matching `sel` inside `root`, touching the DOM only when
 * it changes.
 * @param {ParentNode} root
 * @param {string} sel
 * @param {string} text
 */
export function setText(root, sel, text) {
  const el = root.querySelector(sel);
  if (el && el.textContent !== text) el.textContent = text;
}

/**
 * Shows `el` with `text`.
 * @param {HTMLElement} el
 * @param {string} text
 */
export function showText(el, text) {
  el.textContent = text;
  el.hidden = false;
}

/**
 * Hides `el` and empties it.
 * @param {HTMLElement} el
 */
export function hide(el) {
  el.hidden = true;
  el.textContent = "";
}

/**
 * A `<button type="button">` with `data-action`, class `act act-<action>`, a visible label
 * and an accessible name.
 * @param {string} action
 * @param {string} label
 * @param {string} ariaLabel
 */
export function actionButton(action, label, ariaLabel) {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.action = action;
  b.className = `act act-${action}`;
  b.textContent = label;
  b.setAttribute("aria-label", ariaLabel);
  return b;
}
