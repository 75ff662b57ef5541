/**
 * A wrong password for the server account (the config's `mx.<name>.login`): the log says whose
 * credentials were refused, retries back off to minutes instead of the reconnect schedule
 * (an MX may lock an account tried every few seconds), and `/readyz` shows it.
 */
import assert from "node:assert/strict";
import { basic, CERT, DMITRY, KEY, startHarness } from "./helpers/harness.ts";
import { MxSimulator } from "../lib/mxsim/mod.ts";
import { recordingLogger } from "./helpers/recording_logger.ts";
import { waitUntil } from "./helpers/wait.ts";
import { AUTH_BACKOFF, backoffDelay } from "../lib/csta/client.ts";

Deno.test("server account: a refused password names mx.<name>.login, backs off to minutes, shows in /readyz", async () => {
  const log = recordingLogger();
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY } });
  // The harness's reconnect backoff (50–300 ms) stays; the authentication one is the default.
  const h = await startHarness({
    simulator: sim,
    waitReady: false,
    log,
    config: { mx: { test: { addr: `127.0.0.1:${sim.port}`, login: "server", password: "wrong" } } },
  });
  try {
    const mx = h.server.sessions.get("test")!;
    await waitUntil(() => mx.state === "login-failed", { what: "the refused login" });
    const line = log.lines.find((l) => l.includes("refused the server account"));
    assert.match(
      line ?? "",
      /^error mx test: the MX refused the server account \(config mx\.test\.login\): .+; next attempt in \d+ s \(refused logins back off up to 10 min\)$/,
      log.lines.join("\n"),
    );
    const delay = Number(line!.match(/next attempt in (\d+) s/)![1]);
    assert.ok(delay >= 24 && delay <= 36, `30 s ± 20 %, not the 50 ms reconnect: ${delay}`);

    const res = await fetch(`${h.url}/readyz`);
    assert.equal(res.status, 503);
    const ready = await res.json();
    assert.equal(ready.mx.test.state, "login-failed");
    assert.match(
      ready.mx.test.error,
      /^the MX refused the server account \(config mx\.test\.login\): /,
    );
    assert.ok(
      Date.parse(ready.mx.test.nextAttempt) > Date.now() + 10_000,
      ready.mx.test.nextAttempt,
    );

    // Flex logins need the server session (for the monitor) and say why they cannot have it;
    // the Proxy API's own user sessions still work.
    const login = await fetch(`${h.url}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: DMITRY.login, password: DMITRY.password }),
    });
    assert.equal(login.status, 503);
    assert.deepEqual(await login.json(), {
      error: "MX unavailable: the MX refuses this server's account",
    });
    const vm = await fetch(`${h.url}/mx/test/voicemail`, { headers: { authorization: basic() } });
    assert.equal(vm.status, 200);
    await vm.body?.cancel();
    // After those later markers, still exactly one server login: no retry on the 50 ms schedule.
    const serverLogins = h.sim.received.filter((m) =>
      m.name === "loginRequest" && /type="Server"/.test(m.xml)
    );
    assert.equal(serverLogins.length, 1, serverLogins.map((m) => m.xml).join("\n"));
    assert.ok(
      h.sim.received.some((m) => m.name === "loginRequest" && m.xml.includes(DMITRY.login)),
      "the user login reached the MX",
    );
    assert.ok(log.lines.every((l) => !l.includes("wrong")), "the password never reaches the log");
  } finally {
    await h.close();
  }
});

Deno.test("server account: the authentication backoff doubles from 30 s to a 10 min ceiling", () => {
  const b = { ...AUTH_BACKOFF, jitter: 0 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, b)),
    [30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000],
  );
});
