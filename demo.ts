/**
 * `deno task demo`: starts the MX simulator and MXFlex against it, prints the URL and demo
 * credentials, and places an incoming call to the demo user every few seconds so events
 * flow at once; colleagues change their presence now and then, calls show as `OnThePhone`,
 * and the demo user has a call history and voicemails. Runs with no config file, no MX and
 * no network.
 *
 * Flags: `--port N` (HTTP port, default 8080; 0 = any free port), `--every S` (seconds
 * between incoming calls, default 8; 0 = none), `--csta` (wire log).
 *
 * @module
 */
import { MxSimulator, seedDemoUser } from "./lib/mxsim/mod.ts";
import { DEMO_CERT, DEMO_KEY } from "./lib/demo/cert.ts";
import { normalizeConfig } from "./lib/config.ts";
import { createLogger } from "./lib/log.ts";
import { stdoutWireLogger } from "./lib/csta/wire_log.ts";
import { MxFlexServer } from "./app.ts";

/** Demo user printed at start-up (one of the simulator's seed people). */
export const DEMO_USER = { login: "dmitry", password: "secret", ext: "3095" };

const CALLERS = ["+14155550123", "+442071838750", "3044", "3099", "+79031744445"];

/** Colleagues whose presence changes during the demo, and what they switch between. */
const COLLEAGUES = ["3044", "3055", "3099", "3098"];
const MOODS: Array<[string, string]> = [
  ["Available", ""],
  ["Away", "back in 10 minutes"],
  ["Busy", ""],
  ["DoNotDisturb", "in a meeting"],
  ["Available", ""],
];

function flag(name: string, def: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(Deno.args[i + 1]);
  return Number.isFinite(v) ? v : def;
}

if (import.meta.main) {
  const log = createLogger({ level: Deno.args.includes("--debug") ? "debug" : "info" });
  const sim = await MxSimulator.start({
    tls: { cert: DEMO_CERT, key: DEMO_KEY },
    answerAfterMs: 3_000,
    hangupAfterMs: 8_000,
    presenceOnCalls: true,
  });
  seedDemoUser(sim, DEMO_USER.ext);
  const config = normalizeConfig({
    host: `127.0.0.1:${flag("port", 8080)}`,
    mx: { demo: { addr: `127.0.0.1:${sim.port}`, login: "server", password: "password" } },
  }, Deno.cwd());
  const kv = await Deno.openKv(":memory:");
  const server = await MxFlexServer.create({
    config,
    log,
    kv,
    wireLog: Deno.args.includes("--csta") ? stdoutWireLogger("csta") : undefined,
  });
  server.start();
  await server.sessions.get("demo")!.ready(10_000);
  const http = Deno.serve({
    hostname: "127.0.0.1",
    port: flag("port", 8080),
    onListen: () => {},
  }, server.fetch);
  const url = `http://127.0.0.1:${http.addr.port}/`;
  console.log(`
MXFlex demo running
  web client:   ${url}
  login:        ${DEMO_USER.login} / ${DEMO_USER.password} (extension ${DEMO_USER.ext})
  Flex API:     curl -d login=${DEMO_USER.login} -d password=${DEMO_USER.password} ${url}api/login
  Proxy API:    curl -u ${DEMO_USER.login}:${DEMO_USER.password} ${url}mx/demo/addressbook
  MX simulator: 127.0.0.1:${sim.port} (TLS, sn ${sim.sn})
Press Ctrl-C to stop.`);

  const every = flag("every", 8);
  let n = 0;
  const timer = every > 0
    ? setInterval(() => {
      const from = CALLERS[n++ % CALLERS.length];
      try {
        sim.incomingCall({ from, to: DEMO_USER.ext });
      } catch (err) {
        log.warn(`demo call failed: ${(err as Error).message}`);
      }
    }, every * 1000)
    : undefined;

  let m = 0;
  const moods = setInterval(() => {
    const ext = COLLEAGUES[m % COLLEAGUES.length];
    const [status, note] = MOODS[Math.floor(m / COLLEAGUES.length) % MOODS.length];
    m++;
    sim.setPresence(ext, status, note);
  }, 6_000);

  const stop = () => {
    clearInterval(timer);
    clearInterval(moods);
    void (async () => {
      await server.close();
      await http.shutdown();
      await sim.close();
      kv.close();
      Deno.exit(0);
    })();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
