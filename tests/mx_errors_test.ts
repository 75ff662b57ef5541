/**
 * How failures become HTTP statuses (lib/http/mx_errors.ts): only the CSTA layer's own error
 * classes map to 401/422/503/504; any other error, even one carrying a string `code` as Deno's
 * and Node's system errors do, is a 500 "internal error".
 */
import assert from "node:assert/strict";
import { basic, withHarness } from "./helpers/harness.ts";

const FIXTURES = new URL("./fixtures/push/", import.meta.url).pathname;

/** A real `Deno.errors.NotFound` (it has `code === "ENOENT"`), as a failing file or KV read gives. */
async function enoent(): Promise<Error> {
  const err = await Deno.readFile("/nonexistent/mxflex-test").then(() => undefined, (e) => e);
  assert.ok(err instanceof Deno.errors.NotFound);
  assert.equal((err as Error & { code?: string }).code, "ENOENT");
  return err;
}

Deno.test("errors: a KV error inside a route is 500 internal error, not 503 MX unreachable", async () => {
  await withHarness(async (h) => {
    const err = await enoent();
    // The token store reads the owner record first: make Deno KV fail the way a broken
    // database file would.
    h.kv.get = () => Promise.reject(err);
    const res = await fetch(`${h.url}/mx/test/token/gfcm/app-name`, {
      method: "POST",
      headers: { authorization: basic(), "content-type": "application/json" },
      body: JSON.stringify({ token: "fcm-device-token:" + "z".repeat(60) }),
    });
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: "internal error" });
  }, { config: { fcm: { "app-name": `${FIXTURES}service-account.json` } } });
});
