// @ts-check
/**
 * The sign-in card, shown while there is no session: the form (`#login-form`), its error
 * line (`#login-error`) and a notice such as "session expired" (`#login-notice`).
 *
 * @example
 * ```js
 * const login = loginView({ onToken: (token, expiresIn) => enter(token, expiresIn) });
 * login.show("Your session has expired, please log in again.");
 * ```
 *
 * @module
 */
import { login } from "../lib/api.js";
import { byId, hide, showText } from "../lib/dom.js";

/**
 * @typedef {object} LoginView
 * @property {(notice: string) => void} show shows the form with a notice ("" for none)
 * @property {() => void} hide
 */

/**
 * Wires the form; `onToken` gets each token the server issues (expiry in seconds).
 * @param {{onToken: (token: string, expiresIn: number) => void | Promise<void>}} o
 * @returns {LoginView}
 */
export function loginView(o) {
  const view = byId("login-view");
  const form = byId("login-form", HTMLFormElement);
  const user = byId("login-input", HTMLInputElement);
  const password = byId("password-input", HTMLInputElement);
  const button = byId("login-button", HTMLButtonElement);
  const error = byId("login-error");
  const notice = byId("login-notice");

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = user.value.trim();
    hide(error);
    if (!name) {
      showText(error, "Enter your login.");
      user.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Signing in…";
    try {
      const { token, expiresIn } = await login(name, password.value);
      password.value = "";
      hide(notice);
      await o.onToken(token, expiresIn);
    } catch (err) {
      showText(error, err instanceof Error ? err.message : String(err));
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  });

  return {
    show(text) {
      view.hidden = false;
      hide(error);
      if (text) showText(notice, text);
      else hide(notice);
      user.focus();
    },
    hide() {
      view.hidden = true;
    },
  };
}
