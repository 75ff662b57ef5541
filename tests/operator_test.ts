/**
 * The operator's first hour, through the real programs run as subprocesses (`deno run …
 * main.ts` / `demo.ts`): start-up mistakes give one line naming what and why and exit code 2,
 * and SIGTERM stops cleanly even while the MX says nothing.
 */
import assert from "node:assert/strict";
import { freePort } from "./helpers/free_port.ts";
import { Program } from "./helpers/program.ts";
import { SilentTcp } from "./helpers/silent_tcp.ts";
import { needs } from "./helpers/tools.ts";
import { waitUntil } from "./helpers/wait.ts";

/** Writes `config` as JSON into a fresh directory; returns its path and a KV path beside it. */
async function configDir(config: Record<string, unknown>): Promise<{
  dir: string;
  config: string;
  db: string;
}> {
  const dir = await Deno.makeTempDir({ prefix: "mxflex-operator-" });
  await Deno.writeTextFile(`${dir}/mxflex.json`, JSON.stringify(config));
  return { dir, config: `${dir}/mxflex.json`, db: `${dir}/mxflex.db` };
}

/** The MX part of a config pointing at `port` on loopback. */
function mxAt(port: number) {
  return { mx: { office: { addr: `127.0.0.1:${port}`, login: "server", password: "password" } } };
}

/** No stack trace, no "Uncaught", nothing from Deno's own error printer. */
function assertNoTrace(text: string): void {
  assert.doesNotMatch(text, /^\s+at /m, text);
  assert.doesNotMatch(text, /Uncaught|Stack backtrace|error: /, text);
}

Deno.test("main: SIGTERM while the MX says nothing exits 0 and logs stopped", async () => {
  const silent = new SilentTcp();
  // A connect timeout far beyond the shutdown bound: every connect is still in flight at
  // SIGTERM, the server session's and a user login's.
  const c = await configDir({
    host: "127.0.0.1:0",
    ...mxAt(silent.port),
    connectTimeoutMs: 600_000,
  });
  const p = Program.start("main.ts", ["-config", c.config, "-db", c.db]);
  try {
    const url = (await p.waitForLine(/listening on http:\/\/127\.0\.0\.1:\d+\//))
      .match(/http:\/\/\S+/)![0];
    const login = fetch(`${url}api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: "dmitry", password: "secret" }),
    });
    // Positive marker: both connections are waiting on the silent MX right now.
    await waitUntil(() => silent.accepted >= 2, {
      what: () => `two connects to the silent MX:\n${p.output()}`,
      timeoutMs: 20_000,
    });
    p.kill("SIGTERM");
    const res = await login;
    assert.equal(res.status, 503, "the login in flight is answered, not left hanging");
    assert.deepEqual(Object.keys(await res.json()), ["error"]);
    const status = await p.status;
    assert.equal(status.code, 0, p.output());
    assert.match(p.stderr, /INFO +stopped$/m, p.output());
    assertNoTrace(p.stderr);
  } finally {
    p.kill("SIGKILL");
    await p.status;
    await silent.close();
    await Deno.remove(c.dir, { recursive: true });
  }
});

/** Runs main.ts to completion and asserts the single error line, exit code 2, no trace. */
async function expectStartupLine(
  args: string[],
  line: RegExp,
  o: { wrap?: string[]; script?: "main.ts" | "demo.ts" } = {},
): Promise<string> {
  const p = Program.start(o.script ?? "main.ts", args, { wrap: o.wrap });
  const status = await p.status;
  assert.equal(status.code, 2, p.output());
  assert.equal(p.stderrLines.length, 1, `exactly one line:\n${p.output()}`);
  assert.match(p.stderrLines[0], line, p.output());
  assertNoTrace(p.stderr);
  return p.stderrLines[0];
}

Deno.test("main: a port in use is one line naming the address and the host setting, exit 2", async () => {
  const silent = new SilentTcp();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr as Deno.NetAddr;
  const c = await configDir({ host: "127.0.0.1:0", ...mxAt(silent.port) });
  try {
    await expectStartupLine(
      ["-config", c.config, "-db", c.db, "-host", `127.0.0.1:${port}`],
      new RegExp(
        `ERROR +cannot listen on 127\\.0\\.0\\.1:${port}: address already in use ` +
          `\\(another program holds the port\\) \\(-host "127\\.0\\.0\\.1:${port}"\\)$`,
      ),
    );
    assert.equal(silent.accepted, 0, "no MX connection before the port is ours");
  } finally {
    taken.close();
    await silent.close();
    await Deno.remove(c.dir, { recursive: true });
  }
});

Deno.test({
  ...needs("setpriv", "main: port 80 or 443 without permission is one line, exit 2"),
  async fn() {
    // Root without CAP_NET_BIND_SERVICE, as an unprivileged operator would be.
    const wrap = ["setpriv", "--bounding-set", "-net_bind_service"];
    const silent = new SilentTcp();
    const closed = new SilentTcp();
    await closed.close(); // a loopback port nobody answers: never a real CA
    const c = await configDir({
      host: "127.0.0.1:80",
      ...mxAt(silent.port),
      acme: { directoryUrl: `https://127.0.0.1:${closed.port}/dir` },
    });
    try {
      await expectStartupLine(
        ["-config", c.config, "-db", c.db],
        /ERROR +cannot listen on 127\.0\.0\.1:80: permission denied \(ports below 1024 need root or CAP_NET_BIND_SERVICE\) \(host "127\.0\.0\.1:80"\)$/,
        { wrap },
      );
      // ACME mode needs 80 (challenges) and 443 (HTTPS).
      await expectStartupLine(
        ["-config", c.config, "-db", c.db, "-host", "mxflex.test"],
        /ERROR +cannot listen on 0\.0\.0\.0:443: permission denied .* \(-host "mxflex\.test"\)$/,
        { wrap },
      );
      assert.equal(silent.accepted, 0);
    } finally {
      await silent.close();
      await Deno.remove(c.dir, { recursive: true });
    }
  },
});

Deno.test("main: a KV path that cannot be opened is one line naming the path and why, exit 2", async () => {
  const silent = new SilentTcp();
  const c = await configDir({ host: "127.0.0.1:0", ...mxAt(silent.port) });
  try {
    await expectStartupLine(
      ["-config", c.config, "-db", `${c.dir}/missing/kv.db`],
      new RegExp(
        `ERROR +cannot open the Deno KV database ${c.dir}/missing/kv\\.db: ` +
          `directory ${c.dir}/missing does not exist \\(-db\\)$`,
      ),
    );
    await expectStartupLine(
      ["-config", c.config, "-db", c.dir],
      new RegExp(`ERROR +cannot open the Deno KV database ${c.dir}: ${c.dir} is a directory`),
    );
    await Deno.writeTextFile(`${c.dir}/notkv.db`, "plain text, not SQLite\n".repeat(200));
    await expectStartupLine(
      ["-config", c.config, "-db", `${c.dir}/notkv.db`],
      /is not a Deno KV database/,
    );
    assert.equal(silent.accepted, 0);
  } finally {
    await silent.close();
    await Deno.remove(c.dir, { recursive: true });
  }
});

Deno.test({
  ...needs("setpriv", "main: a KV directory that is not writable is one line, exit 2"),
  async fn() {
    const c = await configDir({ host: "127.0.0.1:0", ...mxAt(1) });
    const ro = `${c.dir}/readonly`;
    await Deno.mkdir(ro, { mode: 0o500 });
    try {
      // Root without CAP_DAC_OVERRIDE honours the directory's mode like any other user.
      await expectStartupLine(
        ["-config", c.config, "-db", `${ro}/kv.db`],
        new RegExp(
          `ERROR +cannot open the Deno KV database ${ro}/kv\\.db: directory ${ro} is not writable`,
        ),
        { wrap: ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] },
      );
    } finally {
      await Deno.chmod(ro, 0o700);
      await Deno.remove(c.dir, { recursive: true });
    }
  },
});

Deno.test("main: unreadable TLS files are one line naming the file and the key, exit 2", async () => {
  const silent = new SilentTcp();
  const c = await configDir({
    host: "127.0.0.1:0",
    ...mxAt(silent.port),
    tls: { cert: "missing-cert.pem", key: "missing-key.pem" },
  });
  try {
    await expectStartupLine(
      ["-config", c.config, "-db", c.db],
      new RegExp(
        `ERROR +cannot read the TLS (certificate|key) ${c.dir}/missing-(cert|key)\\.pem: ` +
          `no such file \\(tls\\.(cert|key)\\)$`,
      ),
    );
    assert.equal(silent.accepted, 0);
  } finally {
    await silent.close();
    await Deno.remove(c.dir, { recursive: true });
  }
});

Deno.test("demo: --port in use is one line naming --port, exit 2", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr as Deno.NetAddr;
  try {
    await expectStartupLine(
      ["--port", String(port), "--every", "0"],
      new RegExp(
        `cannot listen on 127\\.0\\.0\\.1:${port}: address already in use .*\\(--port ${port}\\)$`,
      ),
      { script: "demo.ts" },
    );
  } finally {
    taken.close();
  }
});

Deno.test("main: -host with an unreachable CA logs the ACME failure at once, /readyz says why, SIGTERM exits 0", async () => {
  const silent = new SilentTcp();
  const [caPort, httpPort, httpsPort] = [freePort(), freePort(), freePort()];
  const c = await configDir({
    ...mxAt(silent.port),
    acme: { directoryUrl: `https://127.0.0.1:${caPort}/dir`, httpPort, httpsPort },
  });
  const p = Program.start("main.ts", ["-config", c.config, "-db", c.db, "-host", "mxflex.test"]);
  try {
    await p.waitForLine(new RegExp(`listening on http://0\\.0\\.0\\.0:${httpPort}/ \\(ACME`));
    const line = await p.waitForLine(/acme: certificate for mxflex\.test failed/);
    assert.match(
      line,
      new RegExp(
        `WARN +acme: certificate for mxflex\\.test failed at account: CA unreachable: ` +
          `127\\.0\\.0\\.1:${caPort}: ECONNREFUSED; next attempt in 60 s`,
      ),
    );
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    assert.equal(ready.status, 503);
    const body = await ready.json();
    assert.equal(body.https.state, "waiting for certificate");
    assert.equal(body.https.lastError, `CA unreachable: 127.0.0.1:${caPort}: ECONNREFUSED`);
    p.kill("SIGTERM");
    assert.equal((await p.status).code, 0, p.output());
    assertNoTrace(p.stderr);
    assert.doesNotMatch(p.stderr, /TypeError|Cannot read properties/);
  } finally {
    p.kill("SIGKILL");
    await p.status;
    await silent.close();
    await Deno.remove(c.dir, { recursive: true });
  }
});
