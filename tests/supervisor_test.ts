import assert from "node:assert/strict";
import { CONFIG_ERROR_EXIT, Supervisor, withoutFlag } from "../lib/supervisor.ts";
import { createLogger } from "../lib/log.ts";
import { listen } from "../lib/listen/listen.ts";
import { main } from "../main.ts";
import { waitUntil } from "./helpers/wait.ts";

/** A logger whose lines the test can read. */
function memoryLog() {
  const lines: string[] = [];
  return { lines, log: createLogger({ sink: (l) => lines.push(l) }) };
}

/** A supervisor of `deno eval <code>` children. */
function evalSupervisor(code: string, count: number, log: ReturnType<typeof createLogger>) {
  return new Supervisor({
    count,
    command: Deno.execPath(),
    args: ["eval", code],
    log,
    initialBackoffMs: 20,
    maxBackoffMs: 40,
    stopTimeoutMs: 5000,
  });
}

Deno.test("supervisor: numbers its children, restarts one that dies, leaves the others alone", async () => {
  const { lines, log } = memoryLog();
  // Child 1 dies at once (every time); child 2 lives until told to stop.
  const sup = evalSupervisor(
    `if (Deno.env.get("MXFLEX_INSTANCE") === "1") Deno.exit(1);
     Deno.addSignalListener("SIGTERM", () => Deno.exit(0)); setInterval(() => {}, 1000);`,
    2,
    log,
  );
  sup.start();
  try {
    await waitUntil(() => sup.children()[0].restarts >= 2, { what: "child 1 restarted twice" });
    const two = sup.children()[1];
    assert.equal(two.restarts, 0);
    assert.ok(two.pid);
    assert.ok(
      lines.some((l) => /instance 1 \(pid \d+\) exited \(code 1\); restarting in 20 ms/.test(l)),
    );
    assert.ok(lines.some((l) => /restarting in 40 ms/.test(l)), "backoff doubles up to its cap");
  } finally {
    assert.equal(await sup.stop(), 0);
  }
  assert.ok(lines.some((l) => /all 2 instances stopped/.test(l)));
  assert.ok(sup.children().every((c) => c.pid === undefined));
});

Deno.test("supervisor: a child's configuration error stops everything with exit code 2", async () => {
  const { lines, log } = memoryLog();
  const sup = evalSupervisor(
    `if (Deno.env.get("MXFLEX_INSTANCE") === "2") Deno.exit(${CONFIG_ERROR_EXIT});
     Deno.addSignalListener("SIGTERM", () => Deno.exit(0)); setInterval(() => {}, 1000);`,
    3,
    log,
  );
  sup.start();
  assert.equal(await sup.done, CONFIG_ERROR_EXIT);
  assert.ok(lines.some((l) => /instance 2 exited with a configuration error/.test(l)));
  assert.ok(sup.children().every((c) => c.pid === undefined));
});

Deno.test("supervisor: a child that ignores SIGTERM is killed after the stop timeout", async () => {
  const { lines, log } = memoryLog();
  const dir = await Deno.makeTempDir();
  const up = `${dir}/up`;
  const sup = new Supervisor({
    count: 1,
    command: Deno.execPath(),
    args: [
      "eval",
      `Deno.addSignalListener("SIGTERM", () => {}); Deno.writeTextFileSync(${
        JSON.stringify(up)
      }, "");
       setInterval(() => {}, 1000);`,
    ],
    log,
    stopTimeoutMs: 200,
  });
  sup.start();
  try {
    // The marker file is written after the handler is installed.
    await waitUntil(() => {
      try {
        Deno.statSync(up);
        return true;
      } catch {
        return false;
      }
    }, { what: "child ignoring SIGTERM" });
    assert.equal(await sup.stop(), 0);
    assert.ok(
      lines.some((l) => /instance 1 did not stop in 200 ms; killed/.test(l)),
      lines.join("\n"),
    );
  } finally {
    await sup.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("supervisor: withoutFlag removes -instances in every spelling", () => {
  assert.deepEqual(withoutFlag(["-instances", "2", "-config", "x"], "instances"), ["-config", "x"]);
  assert.deepEqual(withoutFlag(["--instances=3", "-csta"], "instances"), ["-csta"]);
  assert.deepEqual(withoutFlag(["-config", "x", "--instances", "2"], "instances"), [
    "-config",
    "x",
  ]);
  assert.deepEqual(withoutFlag(["-config", "instances"], "instances"), ["-config", "instances"]);
});

Deno.test("main: -instances refuses Let's Encrypt and port 0 (exit 2, nothing started)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cfg = `${dir}/c.json`;
    await Deno.writeTextFile(cfg, JSON.stringify({ mx: { addr: "127.0.0.1:1", login: "s" } }));
    assert.equal(await main(["-config", cfg, "-host", "flex.example.com", "-instances", "2"]), 2);
    assert.equal(await main(["-config", cfg, "-host", "127.0.0.1:0", "-instances", "2"]), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listen: reusePort without --unstable-net is a clear error, not an exit", async () => {
  // This test process runs without --unstable-net (deno task test).
  if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function") return;
  await assert.rejects(
    listen(() => new Response("x"), { host: "127.0.0.1:0", reusePort: true }),
    /reusePort\) needs deno run --unstable-net/,
  );
});
