/**
 * External programs some tests need (Debian's `pebble` for ACME, `chromium` for the browser
 * tests, util-linux's `setpriv` to drop root's privileges for permission errors). A test that cannot run without one is still listed, under its own name with the
 * reason appended, and shown as ignored:
 *
 * ```
 * listen + pebble: ACME mode serves HTTP/2 … (skipped: pebble not installed: apt-get install pebble) ... ignored
 * ```
 *
 * `MXFLEX_TEST_WITHOUT=pebble,chromium` hides installed tools (tests/skips_test.ts uses it to
 * check what a machine without them prints).
 *
 * @module
 */

/** A program tests may need. */
export type Tool = "pebble" | "chromium" | "setpriv";

/** Where the browser tests look for chromium (Debian's package). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

const INSTALL: Record<Tool, string> = {
  pebble: "apt-get install pebble",
  chromium: "apt-get install chromium fonts-dejavu-core",
  setpriv: "apt-get install util-linux",
};

/** True when `tool` is installed (and not hidden by `MXFLEX_TEST_WITHOUT`). */
export function hasTool(tool: Tool): boolean {
  const hidden = (Deno.env.get("MXFLEX_TEST_WITHOUT") ?? "").split(",").map((s) => s.trim());
  if (hidden.includes(tool)) return false;
  if (tool === "chromium") return isFile(CHROMIUM_PATH);
  const commands = tool === "pebble" ? ["pebble", "pebble-challtestsrv"] : [tool];
  return commands.every((cmd) =>
    (Deno.env.get("PATH") ?? "").split(":").some((dir) => isFile(`${dir}/${cmd}`))
  );
}

/**
 * `name` and `ignore` for `Deno.test` of a test that needs `tool`: when it is missing, the
 * name says so and the test is ignored.
 *
 * @example
 * ```ts
 * Deno.test({ ...needs("pebble", "acme: orders a certificate"), async fn() {} });
 * ```
 */
export function needs(tool: Tool, name: string): { name: string; ignore: boolean } {
  const ok = hasTool(tool);
  return {
    name: ok ? name : `${name} (skipped: ${tool} not installed: ${INSTALL[tool]})`,
    ignore: !ok,
  };
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
