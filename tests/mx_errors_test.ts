/**
 * How failures become HTTP statuses (lib/http/mx_errors.ts): only the CSTA layer's own error
 * classes map to 401/422/503/504; any other error, even one carrying a string `code` as Deno's
 * and Node's system errors do, is a 500 "internal error".
 */
import assert from "node:assert/strict";
import { MxSimulator } from "../lib/mxsim/mod.ts";
import {
  BusyError,
  CertificateError,
  ConnectionClosedError,
  ConnectTimeoutError,
  CstaError,
  FrameError,
  LoginFailedError,
  ProtocolError,
  RefusedError,
  TimeoutError,
  UnavailableError,
  UnreachableError,
  XmlError,
} from "../lib/csta/errors.ts";
import { connectError, lostError } from "../lib/csta/transport.ts";
import { HttpError, toErrorResponse, tooManyRequests } from "../lib/http/errors.ts";
import { mxHttpError } from "../lib/http/mx_errors.ts";
import { MAX_PASSWORD } from "../lib/http/password_limit.ts";
import { basic, CERT, DMITRY, KEY, startHarness, withHarness } from "./helpers/harness.ts";

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

Deno.test("errors: every CSTA error class derives from CstaError and maps by instanceof", async () => {
  const table: [Error, number | undefined][] = [
    [new LoginFailedError(1, 11, "63022", "bad password"), 401],
    [new RefusedError("URM Denied"), 422],
    [new TimeoutError(), 504],
    [new ConnectTimeoutError(), 504],
    [new UnavailableError(), 503],
    [new ConnectionClosedError("logout: forced"), 503],
    [new UnreachableError("ECONNREFUSED"), 503],
    [new CertificateError("MX certificate changed"), 503],
    [new BusyError(), 503],
    // Not MX outages: internal errors (500, logged).
    [new ProtocolError("unknown makecall response Foo"), undefined],
    [new FrameError("frame too large"), undefined],
    [new XmlError("no root element"), undefined],
  ];
  for (const [err, status] of table) {
    assert.ok(err instanceof CstaError, err.name);
    assert.equal(mxHttpError(err)?.status, status, err.name);
    if (status) assert.equal(mxHttpError(err)?.message, err.message, err.name);
  }
  // Errors with a string `code` that are not ours are not MX failures any more.
  const withCode = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  assert.equal(mxHttpError(withCode), undefined);
  assert.equal(mxHttpError(await enoent()), undefined);
  assert.equal(mxHttpError(new Deno.errors.BadResource("Bad resource ID")), undefined);
  assert.equal(mxHttpError("a string"), undefined);
  const h = new HttpError(418, "teapot");
  assert.equal(mxHttpError(h), h);
});

Deno.test("errors: the transport wraps raw socket errors, keeping the code", () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:7778"), {
    code: "ECONNREFUSED",
  });
  const u = connectError(refused);
  assert.ok(u instanceof UnreachableError);
  // The MX's address stays in the cause (logs), out of the client-visible message.
  assert.equal(u.message, "MX unreachable: ECONNREFUSED");
  assert.equal(u.cause, refused);
  const cert = connectError(
    Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }),
  );
  assert.ok(cert instanceof CertificateError);
  assert.equal(cert.message, "MX certificate rejected: DEPTH_ZERO_SELF_SIGNED_CERT");
  assert.equal(connectError(new Error("no code")).message, "MX unreachable: socket error");
  const lost = lostError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
  assert.ok(lost instanceof ConnectionClosedError);
  assert.equal(lost.message, "MX connection lost: ECONNRESET");
});

Deno.test("errors: one 429 builder with Retry-After for both APIs", async () => {
  const err = tooManyRequests("too many failed logins", 7);
  assert.equal(err.status, 429);
  assert.equal(err.headers?.["Retry-After"], "7");
  const res = toErrorResponse(tooManyRequests("too many login attempts", 0.2));
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("retry-after"), "1", "at least one whole second");
  assert.deepEqual(await res.json(), { error: "too many login attempts" });
});

Deno.test("errors: an over-long password is 400 'password too long' on both APIs", async () => {
  await withHarness(async (h) => {
    const long = "p".repeat(MAX_PASSWORD + 1);
    const flex = await fetch(`${h.url}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: DMITRY.login, password: long }),
    });
    assert.equal(flex.status, 400);
    assert.deepEqual(await flex.json(), { error: "password too long" });
    const proxy = await fetch(`${h.url}/mx/test/addressbook`, {
      headers: { authorization: basic(DMITRY.login, long) },
    });
    assert.equal(proxy.status, 400);
    assert.deepEqual(await proxy.json(), { error: "password too long" });
    // Right at the cap the password is tried (and is wrong): 401 on both.
    const atCap = "p".repeat(MAX_PASSWORD);
    const flex2 = await fetch(`${h.url}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: DMITRY.login, password: atCap }),
    });
    assert.equal(flex2.status, 401);
    await flex2.body?.cancel();
    const proxy2 = await fetch(`${h.url}/mx/test/addressbook`, {
      headers: { authorization: basic(DMITRY.login, atCap) },
    });
    assert.equal(proxy2.status, 401);
    await proxy2.body?.cancel();
  });
});

Deno.test("errors: 'address book not loaded yet' is one 503 (server account refused, users fine)", async () => {
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY } });
  const h = await startHarness({
    simulator: sim,
    waitReady: false,
    // The server account cannot log in, so the address book never loads; user logins work.
    config: {
      mx: { test: { addr: `127.0.0.1:${sim.port}`, login: "server", password: "wrong" } },
    },
  });
  try {
    const res = await fetch(`${h.url}/mx/test/addressbook`, {
      headers: { authorization: basic() },
    });
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { error: "MX unavailable: address book not loaded yet" });
  } finally {
    await h.close();
  }
});
