import assert from "node:assert/strict";
import { parseXml } from "../lib/csta/xml.ts";
import { hashPassword, isHashedPassword } from "../lib/csta/password.ts";
import {
  addressBookRequest,
  answerCall,
  callLogRequest,
  clearConnection,
  deflectCall,
  holdCall,
  isErrorReply,
  KEEPALIVE,
  loginRequest,
  logout,
  mailCancelReceive,
  mailDeleteIncoming,
  mailGetListIncoming,
  mailReceiveIncoming,
  mailSetStatus,
  makeCall,
  monitorStart,
  monitorStartAb,
  monitorStop,
  parseAbEntry,
  parseAbList,
  parseCallLog,
  parseErrorReply,
  parseLoginReply,
  parseMailChunk,
  parseMailList,
  parseMakeCall,
  parseMonitorStart,
  parseTransfer,
  retrieveCall,
  setCallMode,
  shouldRetryPlain,
  singleStepTransferCall,
  updateVmNote,
} from "../lib/csta/commands/mod.ts";
import { CstaError, LoginFailedError, ProtocolError, RefusedError } from "../lib/csta/errors.ts";

const NS = ' xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"';
const HASH = "W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n";

// --- password ------------------------------------------------------------------------------

Deno.test("hashPassword: base64(SHA-1) + LF, as in the seed", async () => {
  assert.equal(await hashPassword("password"), HASH);
  assert.equal(await hashPassword(""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=\n");
  // UTF-8 bytes, not UTF-16 code units.
  assert.equal(await hashPassword("пароль"), "VnC0NYrih/6OdML/b2KT+QVAkHc=\n");
});

Deno.test("isHashedPassword recognises only a 20-byte base64 hash ending in LF", async () => {
  assert.equal(isHashedPassword(HASH), true);
  assert.equal(isHashedPassword(await hashPassword("anything else")), true);
  assert.equal(isHashedPassword("W6ph5Mm5Pz8GgiULbPgzG37mj9g="), false); // no LF
  assert.equal(isHashedPassword("password"), false);
  assert.equal(isHashedPassword("abc\n"), false); // too short
  assert.equal(isHashedPassword("QUJDRA==\n"), false); // valid base64, 4 bytes
  assert.equal(isHashedPassword("W6ph5Mm5Pz8GgiULbPgzG37mj9!=\n"), false); // bad alphabet
  assert.equal(isHashedPassword(HASH + "\n"), false);
});

// --- login ---------------------------------------------------------------------------------

Deno.test("loginRequest: the seed example byte for byte", () => {
  const xml = loginRequest({
    type: "User",
    userName: "user_login",
    password: HASH,
    platform: "CRM",
    version: "1.0",
  });
  assert.equal(
    xml,
    '<loginRequest type="User" platform="CRM" version="1.0"><userName>user_login</userName>' +
      "<pwd>W6ph5Mm5Pz8GgiULbPgzG37mj9g=&#xA;</pwd></loginRequest>",
  );
  // The frame example in §1.2 says this payload is 145 bytes.
  assert.equal(new TextEncoder().encode(xml).length, 145);
});

Deno.test("loginRequest: attribute order, empties omitted, escaping", () => {
  assert.equal(
    loginRequest({
      mediaCapab: "Voicemail|CallRec",
      loginCapab: "Audio",
      version: "7.0",
      platform: "iPhone",
      serverType: "",
      clientType: "Mobile",
      type: "User",
      userName: 'a&b<"c">',
      password: "p'w",
    }),
    '<loginRequest type="User" clientType="Mobile" platform="iPhone" version="7.0" ' +
      'loginCapab="Audio" mediaCapab="Voicemail|CallRec"><userName>a&amp;b&lt;&quot;c&quot;&gt;' +
      "</userName><pwd>p&apos;w</pwd></loginRequest>",
  );
  assert.equal(
    loginRequest({ type: "Server", userName: "server", password: "x" }),
    '<loginRequest type="Server"><userName>server</userName><pwd>x</pwd></loginRequest>',
  );
});

Deno.test("parseLoginReply: the captured loginResponce", () => {
  const e = parseXml(
    '<loginResponce Code="0" sn="631HC" apiversion="11" ext="273"\n' +
      '    userId="43892780322813134" softPhonePwd="yTEuJ15RheXzp27fAqc334X"\n' +
      '    proto="TLS" mxport="5061" clientport="1234" >Login OK</loginResponce>',
  );
  assert.deepEqual(parseLoginReply(e), {
    sn: "631HC",
    ext: "273",
    jid: "43892780322813134", // beyond 2^53: every digit kept
    apiVersion: 11,
    softPhonePwd: "yTEuJ15RheXzp27fAqc334X",
  });
});

Deno.test("parseLoginReply: Server login has no jid; mxCapab is kept", () => {
  const e = parseXml('<loginResponce Code="0" sn="63022" apiversion="9" userId="0" mxCapab="X"/>');
  assert.deepEqual(parseLoginReply(e), {
    sn: "63022",
    ext: "",
    jid: "",
    apiVersion: 9,
    mxCapab: "X",
  });
});

Deno.test("parseLoginReply: loginFailed with Code or code", () => {
  for (const attr of ["Code", "code"]) {
    const e = parseXml(
      `<loginFailed ${attr}="4" sn="63022" apiversion="11"> Invalid password </loginFailed>`,
    );
    assert.throws(() => parseLoginReply(e), (err: unknown) => {
      assert.ok(err instanceof LoginFailedError);
      assert.equal(err.code, 4);
      assert.equal(err.apiVersion, 11);
      assert.equal(err.sn, "63022");
      assert.equal(err.message, "Invalid password");
      assert.equal(shouldRetryPlain(err), true);
      return true;
    });
  }
});

Deno.test("shouldRetryPlain: only codes 2 and 4 with apiVersion > 2", () => {
  const f = (code: number, api: number) =>
    shouldRetryPlain(new LoginFailedError(code, api, "", ""));
  assert.equal(f(2, 3), true);
  assert.equal(f(4, 11), true);
  assert.equal(f(2, 2), false);
  assert.equal(f(3, 11), false);
  assert.equal(f(0, 11), false);
});

Deno.test("parseLoginReply: unknown reply name", () => {
  assert.throws(
    () => parseLoginReply(parseXml("<CSTAErrorCode><x>y</x></CSTAErrorCode>")),
    (err: unknown) =>
      err instanceof ProtocolError && err.message === "unknown login response CSTAErrorCode",
  );
});

Deno.test("fixed payloads", () => {
  assert.equal(logout(), "<logout/>");
  assert.equal(KEEPALIVE, "<keepalive />");
  assert.equal(KEEPALIVE.length, 13);
  assert.equal(monitorStartAb(), "<MonitorStartAb/>");
});

// --- monitors ------------------------------------------------------------------------------

Deno.test("monitorStart / monitorStop with and without the ed4 namespace", () => {
  assert.equal(
    monitorStart("3095"),
    "<MonitorStart><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>",
  );
  assert.equal(
    monitorStart("3095", { namespace: true }),
    `<MonitorStart${NS}><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>`,
  );
  assert.equal(
    monitorStop(12),
    "<MonitorStop><monitorCrossRefID>12</monitorCrossRefID></MonitorStop>",
  );
  assert.equal(
    monitorStop(12, { namespace: true }),
    `<MonitorStop${NS}><monitorCrossRefID>12</monitorCrossRefID></MonitorStop>`,
  );
});

Deno.test("parseMonitorStart: pretty, namespaced, error, garbage", () => {
  const pretty = parseXml(`<MonitorStartResponse>
  <monitorCrossRefID>12</monitorCrossRefID>
  <actualMonitorMediaClass><voice>true</voice></actualMonitorMediaClass>
</MonitorStartResponse>`);
  assert.equal(parseMonitorStart(pretty), 12);
  const ns = parseXml(
    `<csta:MonitorStartResponse xmlns:csta="urn:x"><csta:monitorCrossRefID>7</csta:monitorCrossRefID></csta:MonitorStartResponse>`,
  );
  assert.equal(parseMonitorStart(ns), 7);
  assert.throws(
    () =>
      parseMonitorStart(
        parseXml("<CSTAErrorCode><operation>invalidDeviceID</operation></CSTAErrorCode>"),
      ),
    (err: unknown) => err instanceof RefusedError && err.message === "invalidDeviceID",
  );
  assert.throws(() => parseMonitorStart(parseXml("<Foo/>")), ProtocolError);
});

// --- address book --------------------------------------------------------------------------

Deno.test("addressBookRequest", () => {
  assert.equal(addressBookRequest(0), '<iq type="get" id="addressbook" index="0"></iq>');
  assert.equal(addressBookRequest(3), '<iq type="get" id="addressbook" index="3"></iq>');
});

const AB_LIST = `<?xml version="1.0" encoding="UTF-8"?>
<ablist size="17" index="0">
  <abentry jid="43884852633771555" presence="LoggedOut" presenceNote="">
    <firstName>SMS</firstName>
    <lastName>Gateway C73</lastName>
    <businessPhone>3010</businessPhone>
    <homePhone></homePhone>
    <cellPhone></cellPhone>
    <email></email>
    <homeSystem>0</homeSystem>
    <did></did>
    <exchangeId></exchangeId>
  </abentry>
  <abentry jid="43884851428118509" presence="Available" presenceNote="at lunch">
    <firstName>Peter</firstName>
    <lastName>Hyde</lastName>
    <businessPhone>3044</businessPhone>
    <homePhone>+1-202-555-0104</homePhone>
    <cellPhone>+1-512-555-0136</cellPhone>
    <email>peterh@xyzrd.com</email>
    <homeSystem>43884850000000001</homeSystem>
    <did>15125550136</did>
    <exchangeId>ex1</exchangeId>
  </abentry>
</ablist>`;

Deno.test("parseAbList: pretty-printed page with full and empty entries", () => {
  const page = parseAbList(parseXml(AB_LIST));
  assert.equal(page.size, 17);
  assert.equal(page.index, 0);
  assert.deepEqual(page.contacts, [
    {
      jid: "43884852633771555",
      presence: "LoggedOut",
      presenceNote: "",
      firstName: "SMS",
      lastName: "Gateway C73",
      ext: "3010",
      homePhone: "",
      cellPhone: "",
      email: "",
      homeSystem: "",
      did: "",
      exchangeId: "",
    },
    {
      jid: "43884851428118509",
      presence: "Available",
      presenceNote: "at lunch",
      firstName: "Peter",
      lastName: "Hyde",
      ext: "3044",
      homePhone: "+1-202-555-0104",
      cellPhone: "+1-512-555-0136",
      email: "peterh@xyzrd.com",
      homeSystem: "43884850000000001",
      did: "15125550136",
      exchangeId: "ex1",
    },
  ]);
});

Deno.test("parseAbEntry: missing children decode as empty; big JID intact", () => {
  const c = parseAbEntry(
    parseXml('<abentry jid="18446744073709551615"><businessPhone>1</businessPhone></abentry>'),
  );
  assert.equal(c.jid, "18446744073709551615");
  assert.equal(c.ext, "1");
  assert.equal(c.presence, "");
  assert.equal(c.homeSystem, "");
  assert.equal(parseAbList(parseXml("<ablist/>")).contacts.length, 0);
});

// --- MakeCall / call mode ------------------------------------------------------------------

Deno.test("makeCall: plain and namespaced", () => {
  assert.equal(
    makeCall("3095", "+79031744445"),
    '<MakeCall><callingDevice typeOfNumber="deviceID">3095</callingDevice>' +
      "<calledDirectoryNumber>+79031744445</calledDirectoryNumber></MakeCall>",
  );
  assert.equal(
    makeCall("3095", "1099", { namespace: true }),
    `<MakeCall${NS}><callingDevice typeOfNumber="deviceID">3095</callingDevice>` +
      "<calledDirectoryNumber>1099</calledDirectoryNumber></MakeCall>",
  );
});

Deno.test("parseMakeCall: sample reply, namespaced reply, errors", () => {
  const sample = parseXml(`<MakeCallResponse>
  <callingDevice><callID>25</callID><deviceID>3095</deviceID></callingDevice>
  <calledDevice>1099</calledDevice>
</MakeCallResponse>`);
  assert.deepEqual(parseMakeCall(sample), { callId: 25, deviceId: "3095", called: "1099" });
  const ns = parseXml(
    `<MakeCallResponse${NS}><callingDevice><callID>32</callID><deviceID>3095</deviceID>` +
      `</callingDevice><calledDevice><deviceIdentifier>+79031744445</deviceIdentifier>` +
      `</calledDevice></MakeCallResponse>`,
  );
  assert.deepEqual(parseMakeCall(ns), { callId: 32, deviceId: "3095", called: "+79031744445" });
  assert.throws(
    () =>
      parseMakeCall(
        parseXml("<CSTAErrorCode><privateErrorCode>URM Denied</privateErrorCode></CSTAErrorCode>"),
      ),
    (err: unknown) => err instanceof RefusedError && err.message === "URM Denied",
  );
  assert.throws(
    () => parseMakeCall(parseXml("<Other/>")),
    (err: unknown) =>
      err instanceof ProtocolError && err.message === "unknown makecall response Other",
  );
});

Deno.test("setCallMode: remote (seed example), empty address, local", () => {
  assert.equal(
    setCallMode({ mode: "remote", address: "79031744445", ringDelay: 2, vmDelay: 28 }),
    '<iq type="set" id="mode" mode="remote" ringdelay="2" vmdelay="28">' +
      "<address>79031744445</address></iq>",
  );
  assert.equal(
    setCallMode({ mode: "remote", ringDelay: 1, vmDelay: 30 }),
    '<iq type="set" id="mode" mode="remote" ringdelay="1" vmdelay="30"><address></address></iq>',
  );
  assert.equal(setCallMode({ mode: "local" }), '<iq type="set" id="mode" mode="local"></iq>');
});

// --- call log ------------------------------------------------------------------------------

Deno.test("callLogRequest", () => {
  assert.equal(callLogRequest(-1), '<iq type="get" id="calllog" timestamp="-1"></iq>');
  assert.equal(
    callLogRequest(1501101426),
    '<iq type="get" id="calllog" timestamp="1501101426"></iq>',
  );
});

Deno.test("parseCallLog: reconstructed block", () => {
  const e = parseXml(`<callloginfo>
  <callinfo missed="false" direction="outgoing">
    <record_id>375</record_id>
    <gcid>63022-00-0000D-177</gcid>
    <connectTimestamp>1501101426</connectTimestamp>
    <disconnectTimestamp>1501101436</disconnectTimestamp>
    <callingPartyNo>3044</callingPartyNo>
    <originalCalledPartyNo>3099</originalCalledPartyNo>
    <firstName>Maxim</firstName>
    <lastName>Donchenko</lastName>
    <extension>3099</extension>
    <serviceName></serviceName>
    <serviceExtension></serviceExtension>
    <callType>1</callType>
    <legType>3</legType>
    <selfLegType>1</selfLegType>
    <monitorType>0</monitorType>
  </callinfo>
  <callinfo missed="true" direction="incoming"><record_id>376</record_id></callinfo>
</callloginfo>`);
  const log = parseCallLog(e);
  assert.equal(log.length, 2);
  assert.deepEqual(log[0], {
    missed: false,
    direction: "outgoing",
    recordId: 375,
    gcid: "63022-00-0000D-177",
    connect: 1501101426,
    disconnect: 1501101436,
    callingPartyNo: "3044",
    originalCalledPartyNo: "3099",
    firstName: "Maxim",
    lastName: "Donchenko",
    ext: "3099",
    serviceName: "",
    serviceExtension: "",
    callType: 1,
    legType: 3,
    selfLegType: 1,
    monitorType: 0,
  });
  assert.equal(log[1].missed, true);
  assert.equal(log[1].direction, "incoming");
  assert.equal(log[1].recordId, 376);
  assert.equal(log[1].connect, 0);
  assert.equal(log[1].gcid, "");
});

// --- voicemail -----------------------------------------------------------------------------

Deno.test("voicemail command payloads", () => {
  assert.equal(
    mailGetListIncoming("3095"),
    "<MailGetListIncoming><userID>3095</userID></MailGetListIncoming>",
  );
  assert.equal(
    mailReceiveIncoming("80", false),
    "<MailReceiveIncoming><faxSessionID>80</faxSessionID></MailReceiveIncoming>",
  );
  assert.equal(
    mailReceiveIncoming("80", true),
    "<MailReceiveIncoming><faxSessionID>80</faxSessionID><nextChunk></nextChunk></MailReceiveIncoming>",
  );
  assert.equal(
    mailCancelReceive("80"),
    "<MailCancelReceive><mailId>80</mailId></MailCancelReceive>",
  );
  assert.equal(
    mailSetStatus("80", true),
    "<MailSetStatus><mailId>80</mailId><read>true</read></MailSetStatus>",
  );
  assert.equal(
    mailSetStatus("80", false),
    "<MailSetStatus><mailId>80</mailId><read>false</read></MailSetStatus>",
  );
  assert.equal(
    updateVmNote("80", "note text"),
    "<UpdateVmNote><mailId>80</mailId><note>note text</note></UpdateVmNote>",
  );
  assert.equal(
    updateVmNote("80", "a\nb & c"),
    "<UpdateVmNote><mailId>80</mailId><note>a&#xA;b &amp; c</note></UpdateVmNote>",
  );
  assert.equal(
    mailDeleteIncoming("80"),
    "<MailDeleteIncoming><mailId>80</mailId></MailDeleteIncoming>",
  );
});

Deno.test("parseMailList: reconstructed reply", () => {
  const e = parseXml(`<MailGetListIncomingResponse rowCount="2">
  <mail from="3095" fromName="Dmitry Sedykh" callerName="" to="3099" ownerType="user">
    <mailId>80</mailId>
    <received>1502204638</received>
    <duration>3</duration>
    <read>true</read>
    <note></note>
  </mail>
  <mail from="3095" fromName="Dmitry Sedykh" to="3099" ownerType="user">
    <mailId>81</mailId><received>1502210275</received><duration>555</duration>
    <read>false</read><note>call back</note><mediaType>VoiceMail</mediaType>
  </mail>
</MailGetListIncomingResponse>`);
  assert.deepEqual(parseMailList(e), [
    {
      id: "80",
      from: "3095",
      fromName: "Dmitry Sedykh",
      callerName: "",
      to: "3099",
      ownerType: "user",
      received: 1502204638,
      duration: 3,
      read: true,
      note: "",
    },
    {
      id: "81",
      from: "3095",
      fromName: "Dmitry Sedykh",
      callerName: "",
      to: "3099",
      ownerType: "user",
      received: 1502210275,
      duration: 555,
      read: false,
      note: "call back",
      mediaType: "VoiceMail",
    },
  ]);
  assert.throws(
    () => parseMailList(parseXml("<CSTAErrorCode><a>no</a></CSTAErrorCode>")),
    RefusedError,
  );
});

Deno.test("parseMailChunk: base64 with line breaks decodes to the exact bytes", () => {
  const bytes = new Uint8Array(3000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  const b64 = btoa(bin).replace(/.{76}/g, "$&\r\n"); // MIME-style wrapping
  const e = parseXml(
    `<MailReceiveIncomingResponse mailId="80" chunkNumber="1" totalChunks="3" chunkSize="3000">
  <fileFormat>wav</fileFormat>
  <documentName>message.wav</documentName>
  <mediaContent>
${b64}
  </mediaContent>
</MailReceiveIncomingResponse>`,
  );
  const ch = parseMailChunk(e);
  assert.equal(ch.mailId, "80");
  assert.equal(ch.chunkNumber, 1);
  assert.equal(ch.totalChunks, 3);
  assert.equal(ch.fileFormat, "wav");
  assert.equal(ch.documentName, "message.wav");
  assert.deepEqual(ch.data, bytes);
});

Deno.test("parseMailChunk: empty content, bad base64, error reply", () => {
  const empty = parseMailChunk(parseXml('<x mailId="1" chunkNumber="2" totalChunks="2"/>'));
  assert.equal(empty.data.length, 0);
  assert.equal(empty.chunkNumber, 2);
  assert.throws(
    () => parseMailChunk(parseXml("<x><mediaContent>@@@@</mediaContent></x>")),
    ProtocolError,
  );
  assert.throws(
    () => parseMailChunk(parseXml("<CSTAErrorCode><e>no such mail</e></CSTAErrorCode>")),
    (err: unknown) => err instanceof RefusedError && err.message === "no such mail",
  );
});

// --- call control --------------------------------------------------------------------------

Deno.test("call-control payloads", () => {
  assert.equal(
    clearConnection(43, "3095"),
    "<ClearConnection><connectionToBeCleared><callID>43</callID><deviceID>3095</deviceID>" +
      "</connectionToBeCleared></ClearConnection>",
  );
  assert.equal(
    holdCall(43, "3095"),
    "<HoldCall><callToBeHeld><callID>43</callID><deviceID>3095</deviceID></callToBeHeld></HoldCall>",
  );
  assert.equal(
    retrieveCall(43, "3095"),
    "<RetrieveCall><callToBeRetrieved><callID>43</callID><deviceID>3095</deviceID>" +
      "</callToBeRetrieved></RetrieveCall>",
  );
  assert.equal(
    answerCall(43, "3095"),
    "<AnswerCall><callToBeAnswered><callID>43</callID><deviceID>3095</deviceID>" +
      "</callToBeAnswered></AnswerCall>",
  );
  assert.equal(
    singleStepTransferCall(43, "3095", "*86"),
    "<SingleStepTransferCall><activeCall><callID>43</callID><deviceID>3095</deviceID>" +
      "</activeCall><transferredTo>*86</transferredTo></SingleStepTransferCall>",
  );
  assert.equal(
    deflectCall(43, "3095", "3099"),
    "<DeflectCall><callToBeDiverted><callID>43</callID><deviceID>3095</deviceID>" +
      "</callToBeDiverted><newDestination>3099</newDestination></DeflectCall>",
  );
});

Deno.test("parseTransfer", () => {
  const e = parseXml(`<SingleStepTransferCallResponse>
  <transferredCall><callID>44</callID><deviceID>3099</deviceID></transferredCall>
</SingleStepTransferCallResponse>`);
  assert.deepEqual(parseTransfer(e), { callId: 44, deviceId: "3099" });
  assert.throws(() => parseTransfer(parseXml("<CSTAErrorCode/>")), RefusedError);
});

// --- CSTAErrorCode -------------------------------------------------------------------------

Deno.test("CSTAErrorCode: sample, last non-empty child, fallback", () => {
  const sample = parseXml(
    "<CSTAErrorCode><privateErrorCode>URM Denied</privateErrorCode></CSTAErrorCode>",
  );
  assert.equal(isErrorReply(sample), true);
  assert.equal(parseErrorReply(sample), "URM Denied");
  assert.equal(
    parseErrorReply(
      parseXml(`<CSTAErrorCode${NS}>
  <operation>invalidCallID</operation>
  <privateErrorCode>  Call not found </privateErrorCode>
  <extra></extra>
</CSTAErrorCode>`),
    ),
    "Call not found",
  );
  assert.equal(parseErrorReply(parseXml("<CSTAErrorCode/>")), "CSTA error");
  assert.equal(parseErrorReply(parseXml("<CSTAErrorCode><a> </a></CSTAErrorCode>")), "CSTA error");
  assert.equal(isErrorReply(parseXml("<MakeCallResponse/>")), false);
  const err = new RefusedError("x");
  assert.ok(err instanceof CstaError);
  assert.equal(err.name, "RefusedError");
});
