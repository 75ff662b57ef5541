// @ts-check
/**
 * A minimal observable state container: one immutable state object, replaced by
 * {@link Store.update}, with listeners told of every change. Views subscribe and compare
 * the parts they show with the previous state by identity.
 *
 * @example
 * ```js
 * const store = createStore({ count: 0 });
 * const stop = store.subscribe((now, before) => console.log(before.count, "->", now.count));
 * store.update((s) => ({ ...s, count: s.count + 1 })); // logs "0 -> 1"
 * stop();
 * ```
 *
 * @module
 */

/**
 * @template S
 * @typedef {object} Store
 * @property {() => S} get the current state
 * @property {(change: (state: S) => S) => void} update replaces the state with
 *   `change(state)`; listeners run only when the result is a different object
 * @property {(listener: (state: S, previous: S) => void) => () => void} subscribe adds a
 *   listener; returns the function that removes it
 */

/**
 * @template S
 * @param {S} initial
 * @returns {Store<S>}
 */
export function createStore(initial) {
  let state = initial;
  /** @type {Set<(state: S, previous: S) => void>} */
  const listeners = new Set();
  return {
    get: () => state,
    update(change) {
      const previous = state;
      const next = change(previous);
      if (next === previous) return;
      state = next;
      for (const l of [...listeners]) l(next, previous);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
