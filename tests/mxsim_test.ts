/**
 * Tests of the simulated MX (lib/mxsim) through a raw frame client, over TLS and TCP.
 */
import assert from "node:assert/strict";
import { el, textAt } from "../lib/csta/xml.ts";
import {
  CALLLOG_BLOCK_SIZE,
  MxSimulator,
  passwordHash,
  type SimOptions,
} from "../lib/mxsim/mod.ts";
import { RawClient, type RawFrame } from "./helpers/raw_client.ts";
import { waitUntil } from "./helpers/wait.ts";

const CERT = await Deno.readTextFile(new URL("./fixtures/mx-cert.pem", import.meta.url));
const KEY = await Deno.readTextFile(new URL("./fixtures/mx-key.pem", import.meta.url));

function loginXml(login: string, pwd: string, type = "User"): string {
  return el(
    "loginRequest",
    { type, platform: "CRM", version: "1.0" },
    el("userName", {}, login),
    el("pwd", {}, pwd),
  ).xml;
}

const hashed = (pw: string) => passwordHash(pw) + "\n";

/** Runs `fn` with a simulator and cleans up both it and every client. */
async function withSim(
  opts: SimOptions,
  fn: (sim: MxSimulator, connect: () => Promise<RawClient>) => Promise<void>,
): Promise<void> {
  const sim = await MxSimulator.start(opts);
  const clients: RawClient[] = [];
  const connect = async () => {
    const c = await RawClient.connect({
      port: sim.port,
      caCerts: opts.tls ? [CERT] : undefined,
    });
    clients.push(c);
    return c;
  };
  try {
    await fn(sim, connect);
  } finally {
    for (const c of clients) await c.close();
    await sim.close();
  }
}

async function login(
  connect: () => Promise<RawClient>,
  user: string,
  pw: string,
  type = "User",
): Promise<RawClient> {
  const c = await connect();
  const r = await c.request(loginXml(user, hashed(pw), type));
  assert.equal(r.el.name, "loginResponce", r.xml);
  await c.nextNamed("presence");
  return c;
}

async function monitor(c: RawClient, ext: string): Promise<number> {
  const r = await c.request(
    `<MonitorStart><monitorObject><deviceObject>${ext}</deviceObject></monitorObject></MonitorStart>`,
  );
  assert.equal(r.el.name, "MonitorStartResponse", r.xml);
  return Number(textAt(r.el, "monitorCrossRefID"));
}

function callRef(id: number, dev: string): string {
  return `<callID>${id}</callID><deviceID>${dev}</deviceID>`;
}

const names = (fs: RawFrame[]) => fs.map((f) => f.el.name);

Deno.test("login over TLS: loginResponce then presence, with the seed user's ext and jid", async () => {
  await withSim({ tls: { cert: CERT, key: KEY } }, async (sim, connect) => {
    const c = await connect();
    const r = await c.request(loginXml("dmitry", hashed("secret")));
    assert.equal(r.el.name, "loginResponce");
    assert.equal(r.invokeId, 1);
    assert.deepEqual(r.el.attrs, {
      Code: "0",
      sn: "63022",
      apiversion: "11",
      ext: "3095",
      userId: "43884851147406145",
    });
    assert.equal(r.el.text, "Login OK");
    const p = await c.next();
    assert.equal(p.invokeId, 9999);
    assert.equal(p.xml, `<presence from="0" status="Available" mxStatus=""></presence>`);
    assert.equal(sim.sessionCount(), 1);
    // The hash is accepted without its trailing newline as well.
    const c2 = await connect();
    const r2 = await c2.request(loginXml("dmitry", passwordHash("secret")));
    assert.equal(r2.el.name, "loginResponce");
  });
});

Deno.test("login failures, server logins and the plain-password retry", async () => {
  const users = [
    ...(await import("../lib/mxsim/mod.ts")).defaultUsers(),
    {
      login: "old",
      password: "plainpw",
      jid: "43884859999999999",
      ext: "3500",
      firstName: "Old",
      lastName: "Client",
      plainOnly: true,
    },
  ];
  await withSim({ users }, async (sim, connect) => {
    const c = await connect();
    let r = await c.request(loginXml("dmitry", hashed("wrong")));
    assert.equal(
      r.xml,
      `<loginFailed Code="1" sn="63022" apiversion="11">Invalid user name or password</loginFailed>`,
    );
    r = await c.request(loginXml("nobody", hashed("secret")));
    assert.equal(r.el.attrs.Code, "1");
    // A user account may not log in as Server; the server account may.
    r = await c.request(loginXml("dmitry", hashed("secret"), "Server"));
    assert.equal(r.el.attrs.Code, "1");
    r = await c.request(loginXml("server", hashed("password"), "Server"));
    assert.equal(r.el.name, "loginResponce");
    assert.equal(r.el.attrs.ext, "");
    assert.equal(r.el.attrs.userId, "0");

    // plainOnly: plain text is refused before a Code 4 failure …
    const p = await connect();
    r = await p.request(loginXml("old", "plainpw"));
    assert.equal(r.el.attrs.Code, "1");
    // … the hash gets Code 4 with apiversion 11, then the plain password works.
    r = await p.request(loginXml("old", hashed("plainpw")));
    assert.equal(r.el.name, "loginFailed");
    assert.equal(r.el.attrs.Code, "4");
    assert.equal(r.el.attrs.apiversion, "11");
    r = await p.request(loginXml("old", "plainpw"));
    assert.equal(r.el.name, "loginResponce");
    assert.equal(r.el.attrs.ext, "3500");

    // Anything before the login gets an error and the session is closed.
    const early = await connect();
    r = await early.request("<MonitorStartAb/>");
    assert.equal(r.el.name, "CSTAErrorCode");
    await early.waitEnded();
    assert.equal(sim.received.some((m) => m.name === "loginRequest"), true);
  });
});

Deno.test("address book: pages of 50 with size and index, id 9999, seed fields", async () => {
  await withSim({}, async (_sim, connect) => {
    const c = await login(connect, "server", "password", "Server");
    c.send(`<iq type="get" id="addressbook" index="0"></iq>`);
    const p0 = await c.nextNamed("ablist");
    assert.equal(p0.invokeId, 9999);
    assert.equal(p0.el.attrs.size, "67");
    assert.equal(p0.el.attrs.index, "0");
    assert.equal(p0.el.children.length, 50);
    c.send(`<iq type="get" id="addressbook" index="1"/>`);
    const p1 = await c.nextNamed("ablist");
    assert.equal(p1.el.attrs.index, "1");
    assert.equal(p1.el.children.length, 17);
    const all = [...p0.el.children, ...p1.el.children];
    assert.equal(new Set(all.map((e) => e.attrs.jid)).size, 67);
    const d = all.find((e) => textAt(e, "businessPhone") === "3095")!;
    assert.equal(d.attrs.jid, "43884851147406145");
    assert.equal(d.attrs.presence, "Available");
    assert.equal(textAt(d, "firstName"), "Dmitry");
    assert.equal(textAt(d, "cellPhone"), "+79031744445");
    assert.equal(textAt(d, "email"), "dmitrys@xyzrd.com");
    const peter = all.find((e) => textAt(e, "businessPhone") === "3044")!;
    assert.equal(textAt(peter, "did"), "15125550136");
    assert.equal(textAt(peter, "homePhone"), "+1-202-555-0104");
  });
});

Deno.test("MonitorStartAb delivers AbAdd/AbUpdate/AbDelete events", async () => {
  await withSim({}, async (sim, connect) => {
    const c = await login(connect, "server", "password", "Server");
    const other = await login(connect, "maxim", "secret");
    const r = await c.request("<MonitorStartAb/>");
    assert.equal(r.el.children.length, 0);
    sim.addUser({
      login: "new",
      password: "pw",
      jid: "43884850000000777",
      ext: "3600",
      firstName: "New",
      lastName: "Person",
    });
    const add = await c.nextNamed("AbAddUserEvent");
    assert.equal(add.invokeId, 9999);
    assert.equal(add.el.children[0].attrs.jid, "43884850000000777");
    assert.equal(textAt(add.el, "abentry", "businessPhone"), "3600");
    sim.updateUser("43884850000000777", { lastName: "Renamed" });
    const upd = await c.nextNamed("AbUpdateUserEvent");
    assert.equal(textAt(upd.el, "abentry", "lastName"), "Renamed");
    sim.removeUser("43884850000000777");
    const del = await c.nextNamed("AbDeleteUserEvent");
    assert.equal(textAt(del.el, "userId"), "43884850000000777");
    // The session without MonitorStartAb saw none of it.
    await other.request("<MonitorStartAb/>");
    assert.deepEqual(names([...other.pending()]), []);
  });
});

Deno.test("monitors: own ext only for users, any for server, namespace, stop", async () => {
  await withSim({}, async (sim, connect) => {
    const u = await login(connect, "dmitry", "secret");
    let r = await u.request(
      `<MonitorStart><monitorObject><deviceObject>3099</deviceObject></monitorObject></MonitorStart>`,
    );
    assert.equal(r.el.name, "CSTAErrorCode");
    r = await u.request(
      `<MonitorStart xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>`,
    );
    assert.equal(r.el.name, "MonitorStartResponse");
    assert.equal(textAt(r.el, "monitorCrossRefID"), "1");
    const s = await login(connect, "server", "password", "Server");
    assert.equal(await monitor(s, "3099"), 1);
    assert.equal(await monitor(s, "3044"), 2);
    r = await s.request(
      `<MonitorStart><monitorObject><deviceObject>9999</deviceObject></monitorObject></MonitorStart>`,
    );
    assert.equal(r.el.name, "CSTAErrorCode");
    assert.equal(textAt(r.el, "privateErrorCode"), "invalid device id");
    assert.equal(sim.monitorCount(), 3);
    r = await s.request(`<MonitorStop><monitorCrossRefID>2</monitorCrossRefID></MonitorStop>`);
    assert.equal(r.el.name, "MonitorStopResponse");
    assert.equal(sim.monitorCount(), 2);
    r = await s.request(`<MonitorStop><monitorCrossRefID>2</monitorCrossRefID></MonitorStop>`);
    assert.equal(r.el.name, "CSTAErrorCode");
  });
});

Deno.test("MakeCall: reply, then Originated/Delivered/Established; clear gives Cleared and call log", async () => {
  await withSim({ answerAfterMs: 0 }, async (sim, connect) => {
    const s = await login(connect, "server", "password", "Server");
    const m95 = await monitor(s, "3095");
    const m99 = await monitor(s, "3099");
    const r = await s.request(
      `<MakeCall><callingDevice typeOfNumber="deviceID">3095</callingDevice><calledDirectoryNumber>3099</calledDirectoryNumber></MakeCall>`,
    );
    assert.equal(r.el.name, "MakeCallResponse");
    const callId = Number(textAt(r.el, "callingDevice", "callID"));
    assert.equal(textAt(r.el, "callingDevice", "deviceID"), "3095");
    assert.equal(textAt(r.el, "calledDevice"), "3099");

    const evs: RawFrame[] = [];
    while (evs.filter((e) => e.el.name === "EstablishedEvent").length < 2) {
      evs.push(await s.next());
    }
    assert.ok(evs.every((e) => e.invokeId === 9999));
    const of = (ref: number) =>
      evs.filter((e) => textAt(e.el, "monitorCrossRefID") === String(ref));
    assert.deepEqual(names(of(m95)), ["OriginatedEvent", "DeliveredEvent", "EstablishedEvent"]);
    assert.deepEqual(names(of(m99)), ["DeliveredEvent", "EstablishedEvent"]);
    const del = of(m99)[0].el;
    assert.equal(textAt(del, "connection", "callID"), String(callId));
    assert.equal(textAt(del, "connection", "deviceID"), "3099");
    assert.match(textAt(del, "connection", "globalCallID"), /^\d{19}$/);
    assert.equal(textAt(del, "alertingDevice", "deviceIdentifier"), "3099");
    assert.equal(textAt(del, "callingDevice", "deviceIdentifier"), "3095");
    assert.equal(textAt(del, "localConnectionInfo"), "alerting");
    assert.equal(textAt(del, "cause"), "normal");
    assert.equal(textAt(del, "callTypeFlags"), "170917889");
    assert.equal(textAt(del, "callingDisplayName"), "Dmitry Sedykh");
    const cad = del.children.find((e) => e.name === "cad")!;
    assert.equal(cad.attrs.name, "__FIRST_CALL_ID__");
    assert.match(cad.text, /^63022-00-0000D-/);
    const orig = of(m95)[0].el;
    assert.equal(textAt(orig, "originatedConnection", "deviceID"), "3095");
    assert.equal(textAt(orig, "calledDevice", "deviceIdentifier"), "3099");
    const est = of(m95)[2].el;
    assert.equal(textAt(est, "answeringDevice", "deviceIdentifier"), "3099");
    assert.equal(textAt(est, "answeringDisplayName"), "Maxim Donchenko");
    assert.equal(sim.activeCalls(), 1);

    const cl = await s.request(
      `<ClearConnection><connectionToBeCleared>${
        callRef(callId, "3095")
      }</connectionToBeCleared></ClearConnection>`,
    );
    assert.equal(cl.el.name, "ClearConnectionResponse");
    const c1 = await s.nextNamed("ConnectionClearedEvent");
    const c2 = await s.nextNamed("ConnectionClearedEvent");
    assert.deepEqual(
      [c1, c2].map((e) => textAt(e.el, "droppedConnection", "deviceID")).sort(),
      ["3095", "3099"],
    );
    assert.equal(textAt(c1.el, "releasingDevice", "deviceIdentifier"), "3095");
    assert.equal(sim.activeCalls(), 0);
    const out = sim.callLog("3095");
    const inc = sim.callLog("3099");
    assert.equal(out.length, 1);
    assert.equal(out[0].direction, "outgoing");
    assert.equal(out[0].extension, "3099");
    assert.equal(inc[0].direction, "incoming");
    assert.equal(inc[0].missed, false);
    assert.equal(inc[0].firstName, "Dmitry");
  });
});

Deno.test("MakeCall to a forwarded ext emits DivertedEvent; callback mode is recorded", async () => {
  const { defaultUsers } = await import("../lib/mxsim/mod.ts");
  const users = defaultUsers().map((u) => u.ext === "3099" ? { ...u, forwardTo: "3044" } : u);
  await withSim({ users, answerAfterMs: -1 }, async (sim, connect) => {
    const s = await login(connect, "server", "password", "Server");
    await monitor(s, "3099");
    await monitor(s, "3044");
    const u = await login(connect, "dmitry", "secret");
    await monitor(u, "3095");
    u.send(
      `<iq type="set" id="mode" mode="remote" ringdelay="2" vmdelay="28"><address>79031744445</address></iq>`,
    );
    const r = await u.request(
      `<MakeCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callingDevice typeOfNumber="deviceID">3095</callingDevice><calledDirectoryNumber>3099</calledDirectoryNumber></MakeCall>`,
    );
    assert.equal(r.el.name, "MakeCallResponse");
    assert.deepEqual(sim.callModes.map((m) => [m.ext, m.mode, m.ringDelay, m.vmDelay, m.address]), [
      ["3095", "remote", "2", "28", "79031744445"],
    ]);
    assert.equal(sim.calls()[0].callbackAddress, "79031744445");
    const div = await s.nextNamed("DivertedEvent");
    assert.equal(textAt(div.el, "divertingDevice", "deviceIdentifier"), "3099");
    assert.equal(textAt(div.el, "newDestination", "deviceIdentifier"), "3044");
    const del = await s.nextNamed("DeliveredEvent");
    assert.equal(textAt(del.el, "connection", "deviceID"), "3044");
    assert.equal(textAt(del.el, "lastRedirectionDevice", "deviceIdentifier"), "3099");
    const ud = await u.nextNamed("DeliveredEvent");
    assert.equal(textAt(ud.el, "alertingDevice", "deviceIdentifier"), "3044");
    // A user session may only call from its own extension.
    const bad = await u.request(
      `<MakeCall><callingDevice>3099</callingDevice><calledDirectoryNumber>1</calledDirectoryNumber></MakeCall>`,
    );
    assert.equal(bad.el.name, "CSTAErrorCode");
  });
});

Deno.test("incoming call: answer, hold, retrieve, clear; unknown call id errors", async () => {
  await withSim({ answerAfterMs: -1 }, async (sim, connect) => {
    const u = await login(connect, "dmitry", "secret");
    await monitor(u, "3095");
    const id = sim.incomingCall({ from: "+15551234", to: "3095", fromName: "Caller Name" });
    const del = await u.nextNamed("DeliveredEvent");
    assert.equal(textAt(del.el, "connection", "callID"), String(id));
    assert.equal(textAt(del.el, "localConnectionInfo"), "alerting");
    assert.equal(textAt(del.el, "callingDevice", "deviceIdentifier"), "+15551234");
    assert.equal(textAt(del.el, "callingDisplayName"), "Caller Name");
    assert.equal(
      (await u.request(
        `<HoldCall><callToBeHeld>${callRef(id, "3095")}</callToBeHeld></HoldCall>`,
      )).el.name,
      "CSTAErrorCode", // not connected yet
    );
    let r = await u.request(
      `<AnswerCall><callToBeAnswered>${callRef(id, "3095")}</callToBeAnswered></AnswerCall>`,
    );
    assert.equal(r.el.name, "AnswerCallResponse");
    await u.nextNamed("EstablishedEvent");
    r = await u.request(`<HoldCall><callToBeHeld>${callRef(id, "3095")}</callToBeHeld></HoldCall>`);
    assert.equal(r.el.name, "HoldCallResponse");
    const held = await u.nextNamed("HeldEvent");
    assert.equal(textAt(held.el, "heldConnection", "callID"), String(id));
    assert.equal(textAt(held.el, "holdingDevice", "deviceIdentifier"), "3095");
    r = await u.request(
      `<RetrieveCall><callToBeRetrieved>${callRef(id, "3095")}</callToBeRetrieved></RetrieveCall>`,
    );
    assert.equal(r.el.name, "RetrieveCallResponse");
    await u.nextNamed("RetrievedEvent");
    r = await u.request(
      `<ClearConnection><connectionToBeCleared>${
        callRef(999, "3095")
      }</connectionToBeCleared></ClearConnection>`,
    );
    assert.equal(
      r.xml,
      `<CSTAErrorCode><privateErrorCode>invalid call id</privateErrorCode></CSTAErrorCode>`,
    );
    r = await u.request(
      `<ClearConnection><connectionToBeCleared>${
        callRef(id, "3095")
      }</connectionToBeCleared></ClearConnection>`,
    );
    assert.equal(r.el.name, "ClearConnectionResponse");
    await u.nextNamed("ConnectionClearedEvent");
    assert.equal(sim.activeCalls(), 0);
    assert.equal(sim.callLog("3095")[0].direction, "incoming");
    assert.equal(sim.callLog("3095")[0].callingPartyNo, "+15551234");
  });
});

Deno.test("transfer moves the call; deflect diverts an alerting call", async () => {
  await withSim({ answerAfterMs: -1 }, async (sim, connect) => {
    const s = await login(connect, "server", "password", "Server");
    for (const e of ["3095", "3099", "3044"]) await monitor(s, e);
    const id = sim.incomingCall({ from: "+1555", to: "3095" });
    await s.nextNamed("DeliveredEvent");
    let r = await s.request(
      `<AnswerCall><callToBeAnswered>${callRef(id, "3095")}</callToBeAnswered></AnswerCall>`,
    );
    await s.nextNamed("EstablishedEvent");
    r = await s.request(
      `<SingleStepTransferCall><activeCall>${
        callRef(id, "3095")
      }</activeCall><transferredTo>3099</transferredTo></SingleStepTransferCall>`,
    );
    assert.equal(r.el.name, "SingleStepTransferCallResponse");
    const newId = Number(textAt(r.el, "transferredCall", "callID"));
    assert.notEqual(newId, id);
    assert.equal(textAt(r.el, "transferredCall", "deviceID"), "3099");
    const tr = await s.nextNamed("TransferedEvent");
    assert.equal(textAt(tr.el, "primaryOldCall", "callID"), String(id));
    assert.equal(textAt(tr.el, "transferredToDevice", "deviceIdentifier"), "3099");
    const del = await s.nextNamed("DeliveredEvent");
    assert.equal(textAt(del.el, "connection", "callID"), String(newId));
    assert.equal(textAt(del.el, "alertingDevice", "deviceIdentifier"), "3099");
    assert.deepEqual(sim.calls().map((c) => [c.id, c.calling, c.callee]), [[
      newId,
      "+1555",
      "3099",
    ]]);
    r = await s.request(
      `<DeflectCall><callToBeDiverted>${
        callRef(newId, "3099")
      }</callToBeDiverted><newDestination>3044</newDestination></DeflectCall>`,
    );
    assert.equal(r.el.name, "DeflectCallResponse");
    const div = await s.nextNamed("DivertedEvent");
    assert.equal(textAt(div.el, "newDestination", "deviceIdentifier"), "3044");
    assert.equal(textAt(div.el, "cause"), "redirected");
    const del2 = await s.next((f) =>
      f.el.name === "DeliveredEvent" && textAt(f.el, "connection", "deviceID") === "3044"
    );
    assert.equal(textAt(del2.el, "alertingDevice", "deviceIdentifier"), "3044");
  });
});

Deno.test("scenario steps: desk-phone answer, transfer, pickup, voicemail on no answer", async () => {
  await withSim({ answerAfterMs: -1 }, async (sim, connect) => {
    const s = await login(connect, "server", "password", "Server");
    for (const e of ["3095", "3099", "3044"]) await monitor(s, e);
    const at3095 = (name: string) => (f: RawFrame) =>
      f.el.name === name && textAt(f.el, "connection", "deviceID") === "3095";

    // The desk phone answers; unknown or no longer ringing calls are refused.
    const a = sim.incomingCall({ from: "+1555", to: "3095" });
    await s.nextNamed("DeliveredEvent");
    assert.ok(sim.answer(a));
    const est = await s.nextNamed("EstablishedEvent");
    assert.equal(textAt(est.el, "answeringDevice", "deviceIdentifier"), "3095");
    assert.equal(sim.answer(a), false);
    assert.equal(sim.pickup(a, "3099"), false);
    assert.equal(sim.sendToVoicemail(a), false);
    assert.equal(sim.answer(999), false);

    // A ringing call handed to a colleague: the old call ends, a new one rings at 3099.
    const b = sim.incomingCall({ from: "+1555", to: "3095" });
    await s.next(at3095("DeliveredEvent"));
    const next = sim.transfer(b, "3095", "3099");
    assert.ok(next !== undefined && next !== b);
    const tr = await s.nextNamed("TransferedEvent");
    assert.equal(textAt(tr.el, "transferredToDevice", "deviceIdentifier"), "3099");
    assert.equal(sim.transfer(b, "3095", "3099"), undefined, "the old call is gone");

    // 3044 picks the new call up from 3099.
    assert.ok(sim.pickup(next!, "3044"));
    const pick = await s.next((f) =>
      f.el.name === "DivertedEvent" && textAt(f.el, "cause") === "callPickup"
    );
    assert.equal(textAt(pick.el, "divertingDevice", "deviceIdentifier"), "3099");
    assert.equal(textAt(pick.el, "newDestination", "deviceIdentifier"), "3044");
    const byPick = await s.nextNamed("EstablishedEvent");
    assert.equal(textAt(byPick.el, "answeringDevice", "deviceIdentifier"), "3044");

    // Nobody answers: the ring timeout sends the call to voicemail; 3095 has a missed call.
    const c = sim.incomingCall({ from: "+1555", to: "3095" });
    assert.ok(sim.sendToVoicemail(c));
    const vm = await s.next((f) =>
      at3095("DivertedEvent")(f) && textAt(f.el, "connection", "callID") === String(c)
    );
    assert.equal(textAt(vm.el, "cause"), "callForwardNoAnswer");
    assert.equal(textAt(vm.el, "newDestination", "deviceIdentifier"), "*86");
    assert.equal(sim.calls().find((x) => x.id === c)?.state, "connected", "voicemail answered");
    const missed = sim.callLog("3095").at(-1)!;
    assert.equal(missed.missed, true);
    assert.equal(missed.callingPartyNo, "+1555");
  });
});

Deno.test("voicemailAfterMs: a call nobody answers goes to voicemail by itself", async () => {
  await withSim({ answerAfterMs: -1, voicemailAfterMs: 50 }, async (sim, connect) => {
    const s = await login(connect, "server", "password", "Server");
    await monitor(s, "3099");
    const id = sim.incomingCall({ from: "+1555", to: "3099" });
    await s.nextNamed("DeliveredEvent");
    const vm = await s.nextNamed("DivertedEvent");
    assert.equal(textAt(vm.el, "connection", "callID"), String(id));
    assert.equal(textAt(vm.el, "cause"), "callForwardNoAnswer");
    assert.equal(sim.calls()[0].callee, "*86");
  });
});

Deno.test("call log: blocks of 21 with id 9999, timestamp filter, no reply when empty", async () => {
  await withSim({}, async (sim, connect) => {
    for (let i = 0; i < 45; i++) {
      sim.addCallLog("3095", {
        gcid: `63022-00-0000D-${i}`,
        disconnectTimestamp: 1_501_100_000 + i,
        connectTimestamp: 1_501_099_990 + i,
        callingPartyNo: "3095",
        originalCalledPartyNo: "3099",
        extension: "3099",
        firstName: "Maxim",
        lastName: "Donchenko",
        legType: 3,
      });
    }
    const u = await login(connect, "dmitry", "secret");
    u.send(`<iq type="get" id="calllog" timestamp="-1"></iq>`);
    const sizes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const b = await u.nextNamed("callloginfo");
      assert.equal(b.invokeId, 9999);
      sizes.push(b.el.children.length);
      if (i === 0) {
        const rec = b.el.children[0];
        assert.equal(rec.attrs.missed, "false");
        assert.equal(rec.attrs.direction, "outgoing");
        assert.equal(textAt(rec, "record_id"), "1");
        assert.equal(textAt(rec, "disconnectTimestamp"), "1501100000");
        assert.equal(textAt(rec, "legType"), "3");
        assert.equal(textAt(rec, "monitorType"), "0");
      }
    }
    assert.deepEqual(sizes, [CALLLOG_BLOCK_SIZE, CALLLOG_BLOCK_SIZE, 3]);
    u.send(`<iq type="get" id="calllog" timestamp="1501100040"></iq>`);
    assert.equal((await u.nextNamed("callloginfo")).el.children.length, 5);
    // Empty result: nothing at all; the next reply is the one to the following command.
    u.send(`<iq type="get" id="calllog" timestamp="1601100040"></iq>`);
    await u.request("<MonitorStartAb/>");
    const m = await login(connect, "maxim", "secret");
    m.send(`<iq type="get" id="calllog" timestamp="-1"></iq>`);
    await m.request("<MonitorStartAb/>");
    assert.deepEqual([...u.pending(), ...m.pending()], []);
  });
});

Deno.test("voicemail: monitor required, list, byte-exact multi-chunk download, cancel, edits", async () => {
  await withSim({ chunkSize: 1000 }, async (sim, connect) => {
    const content = new Uint8Array(2500);
    for (let i = 0; i < content.length; i++) content[i] = (i * 31 + 7) & 0xff;
    const id = sim.addVoicemail("3095", {
      from: "3099",
      fromName: "Maxim Donchenko",
      content,
      received: 1502204638,
      duration: 3,
    });
    const small = sim.addVoicemail("3095", { from: "+1555", content: new Uint8Array([1, 2, 3]) });
    const u = await login(connect, "dmitry", "secret");
    let r = await u.request(`<MailGetListIncoming><userID>3095</userID></MailGetListIncoming>`);
    assert.equal(r.el.name, "CSTAErrorCode");
    await monitor(u, "3095");
    r = await u.request(`<MailGetListIncoming><userID>3095</userID></MailGetListIncoming>`);
    assert.equal(r.el.name, "MailGetListIncomingResponse");
    assert.equal(r.el.attrs.rowCount, "2");
    const mail = r.el.children[0];
    assert.deepEqual(mail.attrs, {
      from: "3099",
      fromName: "Maxim Donchenko",
      callerName: "",
      to: "3095",
      ownerType: "user",
    });
    assert.equal(textAt(mail, "mailId"), id);
    assert.equal(textAt(mail, "received"), "1502204638");
    assert.equal(textAt(mail, "duration"), "3");
    assert.equal(textAt(mail, "read"), "false");

    const parts: Uint8Array[] = [];
    let chunk = await u.request(
      `<MailReceiveIncoming><faxSessionID>${id}</faxSessionID></MailReceiveIncoming>`,
    );
    for (;;) {
      assert.equal(chunk.el.name, "MailReceiveIncomingResponse", chunk.xml);
      assert.equal(chunk.el.attrs.mailId, id);
      assert.equal(chunk.el.attrs.totalChunks, "3");
      assert.equal(textAt(chunk.el, "fileFormat"), "wav");
      parts.push(Uint8Array.from(atob(textAt(chunk.el, "mediaContent")), (c) => c.charCodeAt(0)));
      if (Number(chunk.el.attrs.chunkNumber) >= 3) break;
      chunk = await u.request(
        `<MailReceiveIncoming><faxSessionID>${id}</faxSessionID><nextChunk></nextChunk></MailReceiveIncoming>`,
      );
    }
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      joined.set(p, off);
      off += p.length;
    }
    assert.deepEqual(joined, content);

    r = await u.request(
      `<MailReceiveIncoming><faxSessionID>12345</faxSessionID></MailReceiveIncoming>`,
    );
    assert.equal(r.el.name, "CSTAErrorCode");

    // Start again, cancel after the first chunk: recorded with the chunk count.
    await u.request(
      `<MailReceiveIncoming><faxSessionID>${id}</faxSessionID></MailReceiveIncoming>`,
    );
    r = await u.request(`<MailCancelReceive><mailId>${id}</mailId></MailCancelReceive>`);
    assert.equal(r.el.name, "MailCancelReceiveResponse");
    assert.deepEqual(sim.cancelledDownloads.map((c) => [c.ext, c.mailId, c.chunksSent]), [
      ["3095", id, 1],
    ]);

    r = await u.request(`<MailSetStatus><mailId>${id}</mailId><read>true</read></MailSetStatus>`);
    assert.equal(r.xml, "<MailSetStatusResponse></MailSetStatusResponse>");
    r = await u.request(
      `<UpdateVmNote><mailId>${id}</mailId><note>call back</note></UpdateVmNote>`,
    );
    assert.equal(r.el.name, "UpdateVmNoteResponse");
    assert.equal(sim.voicemails("3095")[0].read, true);
    assert.equal(sim.voicemails("3095")[0].note, "call back");
    r = await u.request(`<MailDeleteIncoming><mailId>${small}</mailId></MailDeleteIncoming>`);
    assert.equal(r.el.name, "MailDeleteIncomingResponse");
    r = await u.request(`<MailDeleteIncoming><mailId>424242</mailId></MailDeleteIncoming>`);
    assert.equal(r.el.name, "MailDeleteIncomingResponse");
    assert.deepEqual(sim.voicemails("3095").map((m) => m.mailId), [id]);
  });
});

Deno.test("an oversized chunkSize is clamped so chunks stay below the 64 KB frame limit", async () => {
  await withSim({ chunkSize: 1_000_000 }, async (sim, connect) => {
    const content = new Uint8Array(100_000).fill(0xab);
    const id = sim.addVoicemail("3095", { from: "1", content });
    const u = await login(connect, "dmitry", "secret");
    await monitor(u, "3095");
    const c = await u.request(
      `<MailReceiveIncoming><faxSessionID>${id}</faxSessionID></MailReceiveIncoming>`,
    );
    assert.equal(c.el.name, "MailReceiveIncomingResponse");
    assert.ok(Number(c.el.attrs.totalChunks) >= 3);
    assert.ok(new TextEncoder().encode(c.xml).length + 8 <= 65535);
  });
});

Deno.test("session rules: keepalive silent, unknown command error, logout closes, bad XML closes only that session", async () => {
  await withSim({}, async (sim, connect) => {
    const a = await login(connect, "dmitry", "secret");
    const b = await login(connect, "maxim", "secret");
    a.send("<keepalive />", 0);
    let r = await a.request("<NoSuchThing/>");
    assert.equal(r.el.name, "CSTAErrorCode");
    assert.deepEqual([...a.pending()], []);
    a.send("<notxml");
    await a.waitEnded();
    const seen = await sim.waitFor("keepalive", undefined, 1000, 0);
    assert.equal(seen.invokeId, 0);
    r = await b.request("<MonitorStartAb/>");
    assert.equal(r.el.name, "MonitorStartAbResponse");
    b.send("<logout/>");
    await b.waitEnded();
    await waitUntil(() => sim.sessionCount() === 0, { what: "sessions closed" });
    // Garbage frame header from a client: that session only.
    const c = await login(connect, "dmitry", "secret");
    const d = await login(connect, "maxim", "secret");
    await c.sendRaw(new Uint8Array([0, 0, 0, 12, 65, 66, 67, 68, 1, 2, 3, 4]));
    await c.waitEnded();
    r = await d.request("<MonitorStartAb/>");
    assert.equal(r.el.name, "MonitorStartAbResponse");
  });
});

Deno.test("waitFor sees the next matching message, or an earlier one with since", async () => {
  await withSim({}, async (sim, connect) => {
    const since = sim.mark();
    const c = await login(connect, "dmitry", "secret");
    const earlier = await sim.waitFor("loginRequest", (m) => m.session >= 1, 1000, since);
    assert.equal(textAt(earlier.el, "userName"), "dmitry");
    const next = sim.waitFor(
      "MonitorStart",
      (m) => textAt(m.el, "monitorObject", "deviceObject") === "3095",
    );
    await monitor(c, "3095");
    assert.equal((await next).name, "MonitorStart");
    await assert.rejects(sim.waitFor("Nothing", undefined, 10));
  });
});

Deno.test("faults: silent commands, delay, drop, malformed frame, server Logout", async () => {
  await withSim({}, async (sim, connect) => {
    const c = await login(connect, "server", "password", "Server");
    sim.setSilent(["MakeCall"]);
    const silentId = c.send(
      `<MakeCall><callingDevice>3095</callingDevice><calledDirectoryNumber>1</calledDirectoryNumber></MakeCall>`,
    );
    const r = await c.request("<MonitorStartAb/>");
    assert.equal(r.el.name, "MonitorStartAbResponse");
    assert.equal(c.pending().some((f) => f.invokeId === silentId), false);
    assert.equal(sim.activeCalls(), 0);
    await sim.waitFor("MakeCall", undefined, 1000, 0);
    sim.setSilent([]);

    sim.setDelay(20);
    const d = await c.request("<MonitorStartAb/>");
    assert.equal(d.el.name, "MonitorStartAbResponse");
    sim.setDelay(0);

    sim.dropConnections();
    await c.waitEnded();
    await waitUntil(() => sim.sessionCount() === 0, { what: "dropped" });

    const m = await login(connect, "dmitry", "secret");
    sim.sendMalformedFrame();
    await m.waitEnded();
    assert.equal(m.endReason, "frame-error");

    const l = await login(connect, "maxim", "secret");
    sim.sendLogout("forced");
    const lo = await l.nextNamed("Logout");
    assert.equal(lo.invokeId, 9999);
    assert.equal(lo.el.attrs.mode, "forced");
    await l.waitEnded();
  });
});

Deno.test("pause drops sessions and refuses connections; resume listens on the same port", async () => {
  await withSim({ tls: { cert: CERT, key: KEY } }, async (sim, connect) => {
    const port = sim.port;
    const c = await login(connect, "dmitry", "secret");
    await sim.pause();
    await c.waitEnded();
    assert.equal(sim.sessionCount(), 0);
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
    await sim.resume();
    assert.equal(sim.port, port);
    const again = await login(connect, "dmitry", "secret");
    assert.equal(again.ended, false);
  });
});

Deno.test("auto-hangup clears established calls and writes a missed record for unanswered ones", async () => {
  await withSim({ answerAfterMs: 0, hangupAfterMs: 1 }, async (sim, connect) => {
    const u = await login(connect, "maxim", "secret");
    await monitor(u, "3099");
    sim.incomingCall({ from: "3095", to: "3099" });
    const seq = [
      (await u.nextNamed("DeliveredEvent")).el.name,
      (await u.nextNamed("EstablishedEvent")).el.name,
      (await u.nextNamed("ConnectionClearedEvent")).el.name,
    ];
    assert.equal(seq.length, 3);
    assert.equal(sim.activeCalls(), 0);
    assert.equal(sim.callLog("3099")[0].missed, false);
    assert.equal(sim.callLog("3095")[0].direction, "outgoing");
  });
  await withSim({ answerAfterMs: -1 }, (sim) => {
    const id = sim.incomingCall({ from: "+1", to: "3099" });
    assert.equal(sim.hangup(id, "+1"), true);
    assert.equal(sim.callLog("3099")[0].missed, true);
    assert.throws(() => sim.incomingCall({ from: "+1", to: "12345" }));
    return Promise.resolve();
  });
});

Deno.test("TLS port: a plain-TCP client is dropped, TLS clients keep working", async () => {
  await withSim({ tls: { cert: CERT, key: KEY } }, async (sim, connect) => {
    const plain = await RawClient.connect({ port: sim.port });
    plain.send(loginXml("dmitry", hashed("secret")));
    await plain.waitEnded();
    await plain.close();
    const ok = await login(connect, "dmitry", "secret");
    assert.equal(ok.ended, false);
  });
});

Deno.test("hundreds of sessions each get their events in order", async () => {
  await withSim({ answerAfterMs: -1 }, async (sim, connect) => {
    const clients: RawClient[] = [];
    for (let i = 0; i < 200; i++) {
      const c = await login(connect, "server", "password", "Server");
      await monitor(c, String(4000 + (i % 50)));
      clients.push(c);
    }
    assert.equal(sim.sessionCount(), 200);
    assert.equal(sim.monitorCount(), 200);
    const ids: number[] = [];
    for (let k = 0; k < 10; k++) {
      for (let e = 0; e < 50; e++) {
        ids.push(sim.incomingCall({ from: `+1${k}`, to: String(4000 + e) }));
      }
    }
    for (const [i, c] of clients.entries()) {
      const want = ids.filter((_, n) => n % 50 === i % 50);
      const got: number[] = [];
      for (let k = 0; k < 10; k++) {
        got.push(Number(textAt((await c.nextNamed("DeliveredEvent")).el, "connection", "callID")));
      }
      assert.deepEqual(got, want);
    }
    assert.equal(sim.activeCalls(), 500);
  });
});
