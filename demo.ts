/**
 * `deno task demo`: starts the MX simulator and MXFlex against it, prints the URL, every demo
 * user with their password and curl examples, and places an incoming call to the demo user
 * every few seconds so events flow at once; colleagues change their presence now and then,
 * calls show as `OnThePhone`, and the demo user has a call history and voicemails with real
 * audio. Three push apps (APNs `com.xyzrd.PushTest`, APNs VoIP `com.mxflex.voipdemo`, FCM
 * `com.mxflex.demo`) are backed by local mock gateways, so token registration answers 204 and
 * calls are pushed. Runs with no config file, no MX and no network.
 *
 * Flags: `--port N` (HTTP port, default 8080; 0 = any free port), `--every S` (seconds
 * between incoming calls, default 8; 0 = none), `--csta` (wire log), `--debug`.
 *
 * @module
 */
import { defaultUsers, MxSimulator, seedDemoUser, type SimUser } from "./lib/mxsim/mod.ts";
import { DEMO_CERT, DEMO_KEY } from "./lib/demo/cert.ts";
import {
  DEMO_APNS_BUNDLE,
  DEMO_FCM_APP,
  DEMO_VOIP_BUNDLE,
  startDemoPush,
} from "./lib/demo/push.ts";
import { normalizeConfig } from "./lib/config.ts";
import { createLogger } from "./lib/log.ts";
import { stdoutWireLogger } from "./lib/csta/wire_log.ts";
import { MxFlexServer } from "./app.ts";
import { listen, type Listening } from "./lib/listen/listen.ts";
import { ListenError } from "./lib/listen/errors.ts";

/** Demo user printed at start-up (one of the simulator's seed people). */
export const DEMO_USER = { login: "dmitry", password: "secret", ext: "3095" };

const CALLERS = ["+14155550123", "+442071838750", "3044", "3099", "+79031744445"];

/** A device token for the curl example (any 20–1024 printable ASCII characters without spaces will do). */
const EXAMPLE_TOKEN = "7C179108B7BF759F0E9DD5D1F2A8B6C4A0E1D2C3B4A5968778695A4B3C2D1E0F";

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

/**
 * Every user of the simulator with their password, one line each, except that generated
 * users named `user<ext>` with one password are shown as one range line.
 *
 * @example
 * ```ts
 * formatUsers(sim.users()); // ["dmitry / secret  3095  Dmitry Sedykh", …]
 * ```
 */
export function formatUsers(users: readonly SimUser[]): string[] {
  const people = users.filter((u) => u.ext).sort((a, b) => Number(a.ext) - Number(b.ext));
  const width = Math.max(...people.map((u) => `${u.login} / ${u.password}`.length));
  const lines: string[] = [];
  for (let i = 0; i < people.length;) {
    const u = people[i];
    let j = i;
    while (
      j + 1 < people.length && people[j + 1].login === `user${people[j + 1].ext}` &&
      u.login === `user${u.ext}` && people[j + 1].password === u.password &&
      Number(people[j + 1].ext) === Number(people[j].ext) + 1
    ) j++;
    if (j > i) {
      lines.push(
        `${u.login} … ${people[j].login} / ${u.password}  ` +
          `${u.ext}–${people[j].ext}  (login user<extension>)`,
      );
    } else {
      const name = `${u.firstName} ${u.lastName}`.trim();
      lines.push(`${`${u.login} / ${u.password}`.padEnd(width)}  ${u.ext.padEnd(5)} ${name}`);
    }
    i = j + 1;
  }
  const servers = users.filter((u) => !u.ext).map((u) => `${u.login} / ${u.password}`);
  if (servers.length) lines.push(`server accounts (no extension): ${servers.join(", ")}`);
  return lines;
}

if (import.meta.main) {
  const log = createLogger({ level: Deno.args.includes("--debug") ? "debug" : "info" });
  const port = flag("port", 8080);
  const sim = await MxSimulator.start({
    tls: { cert: DEMO_CERT, key: DEMO_KEY },
    answerAfterMs: 3_000,
    hangupAfterMs: 8_000,
    presenceOnCalls: true,
  });
  seedDemoUser(sim, DEMO_USER.ext);
  const push = await startDemoPush((service, r) => {
    let token = r.path.split("/").pop() ?? "";
    if (service === "fcm") {
      try {
        token = JSON.parse(r.body)?.message?.token ?? "";
      } catch {
        token = "";
      }
    }
    const what = r.headers["apns-push-type"] === "voip" ? "a VoIP push" : "a push";
    log.info(`demo: the mock ${service === "apns" ? "APNs" : "FCM"} gateway received ${what}`, {
      token: `${token.slice(0, 8)}…`,
    });
  });
  const config = normalizeConfig({
    host: `127.0.0.1:${port}`,
    mx: { demo: { addr: `127.0.0.1:${sim.port}`, login: "server", password: "password" } },
    ...push.config,
  }, Deno.cwd());
  const kv = await Deno.openKv(":memory:");
  const server = await MxFlexServer.create({
    config,
    log,
    kv,
    wireLog: Deno.args.includes("--csta") ? stdoutWireLogger("csta") : undefined,
  });
  let http: Listening;
  try {
    http = await listen(server.fetch, { host: config.host });
  } catch (err) {
    if (!(err instanceof ListenError)) throw err;
    log.error(`${err.message} (--port ${port})`);
    await server.close();
    await push.close();
    await sim.close();
    kv.close();
    Deno.exit(2);
  }
  server.start();
  await server.sessions.get("demo")!.ready(10_000);
  const mails = sim.voicemails(DEMO_USER.ext).map((v) => v.mailId);
  // The address book, plus the server accounts (the simulator's default population).
  const users = [...sim.users(), ...defaultUsers().filter((x) => x.server)];
  const url = http.url;
  const u = `${DEMO_USER.login}:${DEMO_USER.password}`;
  console.log(`
MXFlex demo running
  web client:   ${url}
  login:        ${DEMO_USER.login} / ${DEMO_USER.password} (extension ${DEMO_USER.ext})
  Flex API:     curl -d login=${DEMO_USER.login} -d password=${DEMO_USER.password} ${url}api/login
  Proxy API:    curl -u ${u} ${url}mx/demo/addressbook
  voicemail:    curl -u ${u} ${url}mx/demo/voicemail     (${mails.length} messages, audio/wav)
                curl -u ${u} -o message.wav ${url}mx/demo/voicemail/${mails[0]}
  push apps:    apns ${DEMO_APNS_BUNDLE} (add ?sandbox for the sandbox), VoIP ${DEMO_VOIP_BUNDLE}, fcm ${DEMO_FCM_APP}, on local mock gateways
                curl -u ${u} -H 'Content-Type: application/json' -d '{"token":"${EXAMPLE_TOKEN}"}' "${url}mx/demo/token/apns/${DEMO_APNS_BUNDLE}?sandbox"
  MX simulator: 127.0.0.1:${sim.port} (TLS, sn ${sim.sn})
  users (login / password, extension, name):
${formatUsers(users).map((l) => `    ${l}`).join("\n")}
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
      await push.close();
      await sim.close();
      kv.close();
      Deno.exit(0);
    })();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
