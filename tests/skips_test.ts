/**
 * A test skipped for a missing program says so on its own line, under its own name: run the
 * ACME and browser suites as a machine without pebble and chromium would (tools hidden with
 * `MXFLEX_TEST_WITHOUT`) and read what `deno test` prints.
 */
import assert from "node:assert/strict";

Deno.test("skips: tests needing pebble or chromium are listed by name with the reason", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "--no-check",
      "--unstable-kv",
      "-A",
      "--filter",
      "/pebble|browser:/",
      "tests/acme_test.ts",
      "tests/browser_test.ts",
    ],
    cwd: new URL("..", import.meta.url).pathname,
    env: { MXFLEX_TEST_WITHOUT: "pebble,chromium", NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  const skipped = text.split("\n").filter((l) => /\(skipped: .*\) \.\.\. ignored/.test(l));
  assert.ok(skipped.length >= 3, text);
  for (const tool of ["pebble", "chromium"]) {
    assert.ok(
      skipped.some((l) => l.includes(`(skipped: ${tool} not installed: apt-get install ${tool}`)),
      `${tool}:\n${text}`,
    );
  }
  // Nothing else is printed about them (no stray warning lines).
  assert.doesNotMatch(text, /not installed.*ACME test skipped/);
  assert.match(text, /browser: web client/);
});
