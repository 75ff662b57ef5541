import assert from "node:assert/strict";
import { parseXml } from "../lib/csta/xml.ts";
import {
  CALL_EVENTS,
  decodeAbEvent,
  decodeCallEvent,
  decodeLogout,
  decodeMailEvent,
  encodeEventJson,
  pushPayload,
} from "../lib/csta/events.ts";

// The five seed events exactly as reconstructed in mx-protocol §4.2–4.6 (pretty-printed).
const SEED_XML = [
  `<OriginatedEvent>
  <monitorCrossRefID>5</monitorCrossRefID>
  <originatedConnection><callID>39</callID><deviceID>3095</deviceID></originatedConnection>
  <callingDevice><deviceIdentifier>3095</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>79031744445</deviceIdentifier></calledDevice>
  <localConnectionInfo>connected</localConnectionInfo>
  <cause>normal</cause>
  <callTypeFlags>36700160</callTypeFlags>
</OriginatedEvent>
`,
  `<DivertedEvent>
  <monitorCrossRefID>5</monitorCrossRefID>
  <connection><callID>39</callID><deviceID>3095</deviceID></connection>
  <divertingDevice><deviceIdentifier>3095</deviceIdentifier></divertingDevice>
  <newDestination><deviceIdentifier>79031744445</deviceIdentifier></newDestination>
  <cause>normal</cause>
  <callTypeFlags>170917889</callTypeFlags>
</DivertedEvent>
`,
  `<DeliveredEvent>
  <monitorCrossRefID>5</monitorCrossRefID>
  <connection>
    <callID>39</callID><deviceID>3095</deviceID>
    <globalCallID>2808630435142227620</globalCallID>
  </connection>
  <alertingDevice><deviceIdentifier>79031744445</deviceIdentifier></alertingDevice>
  <callingDevice><deviceIdentifier>3095</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>79031744445</deviceIdentifier></calledDevice>
  <localConnectionInfo>alerting</localConnectionInfo>
  <cause>normal</cause>
  <callTypeFlags>170917889</callTypeFlags>
  <cad name="__FIRST_CALL_ID__" type="string">63022-00-0000D-6A4</cad>
</DeliveredEvent>
`,
  `<EstablishedEvent>
  <monitorCrossRefID>5</monitorCrossRefID>
  <establishedConnection>
    <callID>39</callID><deviceID>3095</deviceID>
    <globalCallID>2808630435142227620</globalCallID>
  </establishedConnection>
  <answeringDevice><deviceIdentifier>79031744445</deviceIdentifier></answeringDevice>
  <answeringDisplayName>79031744445</answeringDisplayName>
  <callingDevice><deviceIdentifier>3095</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>79031744445</deviceIdentifier></calledDevice>
  <callingDisplayName>3095</callingDisplayName>
  <cause>normal</cause>
  <callTypeFlags>170917889</callTypeFlags>
  <cad name="__FIRST_CALL_ID__" type="string">63022-00-0000D-6A4</cad>
</EstablishedEvent>
`,
  `<ConnectionClearedEvent>
  <monitorCrossRefID>5</monitorCrossRefID>
  <droppedConnection><callID>39</callID><deviceID>3095</deviceID></droppedConnection>
  <releasingDevice><deviceIdentifier>3095</deviceIdentifier></releasingDevice>
  <cause>normal</cause>
</ConnectionClearedEvent>
`,
];

// The curl transcript of seeds/mxflex-api.md, byte for byte.
const SEED_SSE =
  `event: OriginatedEvent\ndata: {"callId":39,"deviceId":"3095","callingDevice":"3095","calledDevice":"79031744445","cause":"normal","callTypeFlags":36700160}\n\nevent: DivertedEvent\ndata: {"callId":39,"deviceId":"3095","divertingDevice":"3095","newDestination":"79031744445","cause":"normal","callTypeFlags":170917889}\n\nevent: DeliveredEvent\ndata: {"callId":39,"deviceId":"3095","globalCallId":"2808630435142227620","alertingDevice":"79031744445","callingDevice":"3095","calledDevice":"79031744445","localConnectionInfo":"alerting","cause":"normal","callTypeFlags":170917889,"cads":[{"name":"__FIRST_CALL_ID__","type":"string","value":"63022-00-0000D-6A4"}]}\n\nevent: EstablishedEvent\ndata: {"callId":39,"deviceId":"3095","globalCallId":"2808630435142227620","answeringDevice":"79031744445","answeringDisplayName":"79031744445","callingDevice":"3095","calledDevice":"79031744445","callingDisplayName":"3095","cause":"normal","callTypeFlags":170917889,"cads":[{"name":"__FIRST_CALL_ID__","type":"string","value":"63022-00-0000D-6A4"}]}\n\nevent: ConnectionClearedEvent\ndata: {"callId":39,"deviceId":"3095","releasingDevice":"3095","cause":"normal"}\n`;

const SEED_NAMES = [
  "OriginatedEvent",
  "DivertedEvent",
  "DeliveredEvent",
  "EstablishedEvent",
  "ConnectionClearedEvent",
];

function decode(xml: string) {
  const ev = decodeCallEvent(parseXml(xml));
  assert.ok(ev, "expected a call event");
  return ev;
}

Deno.test("seed events render to the seed SSE transcript byte for byte", () => {
  let sse = "";
  for (const xml of SEED_XML) {
    const ev = decode(xml);
    sse += `event: ${ev.name}\ndata: ${encodeEventJson(ev)}\n\n`;
  }
  // The transcript ends after the last data line; an SSE stream adds the blank line.
  assert.equal(sse, SEED_SSE + "\n");
});

Deno.test("seed events: names, routing key, call id", () => {
  SEED_XML.forEach((xml, i) => {
    const ev = decode(xml);
    assert.equal(ev.name, SEED_NAMES[i]);
    assert.equal(ev.monitorCrossRefId, 5);
    assert.equal(ev.callId, 39);
    assert.ok(CALL_EVENTS.has(ev.name));
  });
});

Deno.test("seed events: compact (unindented) and namespaced XML decode the same", () => {
  for (const xml of SEED_XML) {
    const compact = xml.replace(/>\s+</g, "><").trim();
    const ns = compact.replace(
      /^<(\w+)>/,
      '<$1 xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4">',
    );
    const want = encodeEventJson(decode(xml));
    assert.equal(encodeEventJson(decode(compact)), want);
    assert.equal(encodeEventJson(decode(ns)), want);
  }
  const prefixed = '<c:ConnectionClearedEvent xmlns:c="urn:c"><c:monitorCrossRefID>9' +
    "</c:monitorCrossRefID><c:droppedConnection><c:callID>1</c:callID><c:deviceID>2</c:deviceID>" +
    "</c:droppedConnection><c:releasingDevice><c:deviceIdentifier>2</c:deviceIdentifier>" +
    "</c:releasingDevice><c:cause>normal</c:cause></c:ConnectionClearedEvent>";
  assert.equal(
    encodeEventJson(decode(prefixed)),
    '{"callId":1,"deviceId":"2","releasingDevice":"2","cause":"normal"}',
  );
});

Deno.test("non-call messages are not call events", () => {
  for (
    const xml of [
      '<ablist size="0" index="0"/>',
      '<presence from="0" status="Available" mxStatus=""></presence>',
      "<MonitorStartResponse><monitorCrossRefID>5</monitorCrossRefID></MonitorStartResponse>",
      "<AbDeleteUserEvent><userId>1</userId></AbDeleteUserEvent>",
      '<Logout mode="x"/>',
    ]
  ) {
    assert.equal(decodeCallEvent(parseXml(xml)), undefined, xml);
  }
});

Deno.test("DeliveredEvent: omitempty rules and big global call id", () => {
  const ev = decode(
    "<DeliveredEvent><monitorCrossRefID>7</monitorCrossRefID>" +
      "<connection><callID>21</callID><deviceID>3095</deviceID>" +
      "<globalCallID>18446744073709551615</globalCallID></connection>" +
      "<alertingDevice><deviceIdentifier>3095</deviceIdentifier></alertingDevice>" +
      "<callingDevice><deviceIdentifier>3044</deviceIdentifier></callingDevice>" +
      "<calledDevice><deviceIdentifier>3095</deviceIdentifier></calledDevice>" +
      "<lastRedirectionDevice><deviceIdentifier>3044</deviceIdentifier></lastRedirectionDevice>" +
      "<localConnectionInfo>alerting</localConnectionInfo><cause>normal</cause>" +
      "<callTypeFlags>0</callTypeFlags><cmdsAllowed>12</cmdsAllowed>" +
      '<cad name="a" type="string"></cad><cad name="b" type="int">5</cad>' +
      "</DeliveredEvent>",
  );
  assert.equal(
    encodeEventJson(ev),
    '{"callId":21,"deviceId":"3095","globalCallId":"18446744073709551615",' +
      '"alertingDevice":"3095","callingDevice":"3044","calledDevice":"3095",' +
      '"lastRedirectionDevice":"3044","localConnectionInfo":"alerting","cause":"normal",' +
      '"cmdsAllowed":12,"cads":[{"name":"a","type":"string"},{"name":"b","type":"int","value":"5"}]}',
  );
  assert.equal(ev.monitorCrossRefId, 7);
});

Deno.test("DeliveredEvent: missing fields stay present as empty strings", () => {
  const ev = decode("<DeliveredEvent><monitorCrossRefID>1</monitorCrossRefID></DeliveredEvent>");
  assert.equal(
    encodeEventJson(ev),
    '{"callId":0,"deviceId":"","globalCallId":"","alertingDevice":"","callingDevice":"",' +
      '"calledDevice":"","localConnectionInfo":"","cause":""}',
  );
});

Deno.test("Originated/Diverted: cmdsAllowed, lastRedirectionDevice, no cads", () => {
  const orig = decode(
    "<OriginatedEvent><monitorCrossRefID>5</monitorCrossRefID>" +
      "<originatedConnection><callID>1</callID><deviceID>3095</deviceID></originatedConnection>" +
      "<callingDevice><deviceIdentifier>3095</deviceIdentifier></callingDevice>" +
      "<calledDevice><deviceIdentifier>3099</deviceIdentifier></calledDevice>" +
      "<localConnectionInfo>connected</localConnectionInfo><cause>normal</cause>" +
      '<cmdsAllowed>3</cmdsAllowed><cad name="x" type="string">y</cad></OriginatedEvent>',
  );
  assert.equal(
    encodeEventJson(orig),
    '{"callId":1,"deviceId":"3095","callingDevice":"3095","calledDevice":"3099","cause":"normal",' +
      '"cmdsAllowed":3}',
  );
  const div = decode(
    "<DivertedEvent><connection><callID>2</callID><deviceID>3095</deviceID></connection>" +
      "<divertingDevice><deviceIdentifier>3095</deviceIdentifier></divertingDevice>" +
      "<newDestination><deviceIdentifier>3099</deviceIdentifier></newDestination>" +
      "<lastRedirectionDevice><deviceIdentifier>3000</deviceIdentifier></lastRedirectionDevice>" +
      "<cause>redirected</cause><callTypeFlags>4</callTypeFlags></DivertedEvent>",
  );
  assert.equal(
    encodeEventJson(div),
    '{"callId":2,"deviceId":"3095","divertingDevice":"3095","newDestination":"3099",' +
      '"lastRedirectionDevice":"3000","cause":"redirected","callTypeFlags":4}',
  );
  assert.equal(div.monitorCrossRefId, 0);
});

Deno.test("HeldEvent and RetrievedEvent shapes", () => {
  const held = decode(`<HeldEvent>
  <monitorCrossRefID>5</monitorCrossRefID>
  <heldConnection><callID>39</callID><deviceID>3095</deviceID></heldConnection>
  <holdingDevice><deviceIdentifier>3095</deviceIdentifier></holdingDevice>
  <localConnectionInfo>hold</localConnectionInfo>
  <cause>normal</cause>
  <cmdsAllowed>8</cmdsAllowed>
  <callTypeFlags>170917889</callTypeFlags>
</HeldEvent>`);
  assert.equal(held.name, "HeldEvent");
  assert.equal(
    encodeEventJson(held),
    '{"callId":39,"deviceId":"3095","holdingDevice":"3095","localConnectionInfo":"hold",' +
      '"cause":"normal","callTypeFlags":170917889,"cmdsAllowed":8}',
  );
  const ret = decode(
    "<RetrievedEvent><monitorCrossRefID>5</monitorCrossRefID><retrievedConnection>" +
      "<callID>39</callID><deviceID>3095</deviceID><globalCallID>2808630435142227620</globalCallID>" +
      "</retrievedConnection><retrievingDevice><deviceIdentifier>3095</deviceIdentifier>" +
      "</retrievingDevice><localConnectionInfo>connected</localConnectionInfo>" +
      "<cause>normal</cause></RetrievedEvent>",
  );
  assert.equal(
    encodeEventJson(ret),
    '{"callId":39,"deviceId":"3095","globalCallId":"2808630435142227620",' +
      '"retrievingDevice":"3095","localConnectionInfo":"connected","cause":"normal"}',
  );
});

Deno.test("TransferedEvent (server typo) becomes TransferredEvent", () => {
  const xml = (root: string) =>
    `<${root}><monitorCrossRefID>5</monitorCrossRefID>` +
    "<primaryOldCall><callID>39</callID><deviceID>3095</deviceID></primaryOldCall>" +
    "<secondaryOldCall><callID>40</callID><deviceID>3095</deviceID></secondaryOldCall>" +
    "<transferringDevice><deviceIdentifier>3095</deviceIdentifier></transferringDevice>" +
    "<transferredToDevice><deviceIdentifier>3099</deviceIdentifier></transferredToDevice>" +
    `<localConnectionInfo>null</localConnectionInfo><cause>transfer</cause></${root}>`;
  for (const root of ["TransferedEvent", "TransferredEvent"]) {
    const ev = decode(xml(root));
    assert.equal(ev.name, "TransferredEvent");
    assert.equal(ev.callId, 39);
    assert.equal(
      encodeEventJson(ev),
      '{"callId":39,"deviceId":"3095","transferringDevice":"3095","transferredToDevice":"3099",' +
        '"localConnectionInfo":"null","cause":"transfer"}',
    );
  }
});

Deno.test("Failed, NetworkReached, ServiceInitiated, RecordingState shapes", () => {
  assert.equal(
    encodeEventJson(decode(
      "<FailedEvent><failedConnection><callID>3</callID><deviceID>3095</deviceID>" +
        "</failedConnection><callingDevice><deviceIdentifier>3095</deviceIdentifier>" +
        "</callingDevice><calledDevice><deviceIdentifier>999</deviceIdentifier></calledDevice>" +
        "<localConnectionInfo>fail</localConnectionInfo><cause>busy</cause></FailedEvent>",
    )),
    '{"callId":3,"deviceId":"3095","callingDevice":"3095","calledDevice":"999",' +
      '"localConnectionInfo":"fail","cause":"busy"}',
  );
  assert.equal(
    encodeEventJson(decode(
      "<NetworkReachedEvent><outboundConnection><callID>4</callID><deviceID>3095</deviceID>" +
        "</outboundConnection><networkInterfaceUsed><deviceIdentifier>trunk1</deviceIdentifier>" +
        "</networkInterfaceUsed><callingDevice><deviceIdentifier>3095</deviceIdentifier>" +
        "</callingDevice><calledDevice><deviceIdentifier>+1555</deviceIdentifier></calledDevice>" +
        "<localConnectionInfo>connected</localConnectionInfo><cause>normal</cause>" +
        "</NetworkReachedEvent>",
    )),
    '{"callId":4,"deviceId":"3095","networkInterfaceUsed":"trunk1","callingDevice":"3095",' +
      '"calledDevice":"+1555","localConnectionInfo":"connected","cause":"normal"}',
  );
  assert.equal(
    encodeEventJson(decode(
      "<ServiceInitiatedEvent><initiatedConnection><callID>5</callID><deviceID>3095</deviceID>" +
        "</initiatedConnection><initiatingDevice><deviceIdentifier>3095</deviceIdentifier>" +
        "</initiatingDevice><localConnectionInfo>initiated</localConnectionInfo>" +
        '<cause>newCall</cause><cad name="k" type="string">v</cad></ServiceInitiatedEvent>',
    )),
    '{"callId":5,"deviceId":"3095","initiatingDevice":"3095","localConnectionInfo":"initiated",' +
      '"cause":"newCall","cads":[{"name":"k","type":"string","value":"v"}]}',
  );
  const rec = decode(
    "<RecordingStateEvent><monitorCrossRefID>2</monitorCrossRefID><callID>6</callID>" +
      "<deviceID>3095</deviceID><RecIsAvailable>true</RecIsAvailable>" +
      "<RecIsActive>false</RecIsActive></RecordingStateEvent>",
  );
  assert.equal(rec.callId, 6);
  assert.equal(
    encodeEventJson(rec),
    '{"callId":6,"deviceId":"3095","recIsAvailable":true,"recIsActive":false}',
  );
});

Deno.test("pushPayload equals the seed push example for matching XML", () => {
  const ev = decode(`<DeliveredEvent>
  <monitorCrossRefID>5</monitorCrossRefID>
  <connection>
    <callID>21</callID><deviceID>3095</deviceID>
    <globalCallID>2808630435142226622</globalCallID>
  </connection>
  <alertingDevice><deviceIdentifier>3095</deviceIdentifier></alertingDevice>
  <callingDevice><deviceIdentifier>3044</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>3095</deviceIdentifier></calledDevice>
  <lastRedirectionDevice><deviceIdentifier>3044</deviceIdentifier></lastRedirectionDevice>
  <localConnectionInfo>alerting</localConnectionInfo>
  <cause>normal</cause>
  <callTypeFlags>170917889</callTypeFlags>
  <cmdsAllowed>3</cmdsAllowed>
  <cad name="__FIRST_CALL_ID__" type="string">63022-00-0000D-6A4</cad>
</DeliveredEvent>`);
  assert.equal(
    JSON.stringify(pushPayload(ev, 1501101426)),
    '{"callId":21,"deviceId":"3095","globalCallId":"2808630435142226622","alertingDevice":"3095",' +
      '"callingDevice":"3044","calledDevice":"3095","lastRedirectionDevice":"3044",' +
      '"localConnectionInfo":"alerting","cause":"normal","callTypeFlags":170917889,' +
      '"time":1501101426}',
  );
});

Deno.test("pushPayload: lastRedirectionDevice always present, zero flags omitted", () => {
  const ev = decode(SEED_XML[2].replace("170917889", "0"));
  assert.deepEqual(Object.keys(pushPayload(ev, 1)), [
    "callId",
    "deviceId",
    "globalCallId",
    "alertingDevice",
    "callingDevice",
    "calledDevice",
    "lastRedirectionDevice",
    "localConnectionInfo",
    "cause",
    "time",
  ]);
  assert.equal(pushPayload(ev, 1).lastRedirectionDevice, "");
});

// --- address book events -------------------------------------------------------------------

const AB_UPDATE = `<AbUpdateUserEvent>
  <abentry jid="43884851147406145" presence="Available" presenceNote="">
    <firstName>Dmitry</firstName><lastName>Sedykh</lastName>
    <businessPhone>3095</businessPhone><cellPhone>+79031744445</cellPhone>
    <email>dmitrys@xyzrd.com</email>
  </abentry>
</AbUpdateUserEvent>`;

Deno.test("AbUpdateUserEvent / AbAddUserEvent read the <abentry> child", () => {
  const want = {
    jid: "43884851147406145",
    presence: "Available",
    presenceNote: "",
    firstName: "Dmitry",
    lastName: "Sedykh",
    ext: "3095",
    homePhone: "",
    cellPhone: "+79031744445",
    email: "dmitrys@xyzrd.com",
    homeSystem: "",
    did: "",
    exchangeId: "",
  };
  assert.deepEqual(decodeAbEvent(parseXml(AB_UPDATE)), { kind: "update", contact: want });
  const add = AB_UPDATE.replaceAll("AbUpdateUserEvent", "AbAddUserEvent");
  assert.deepEqual(decodeAbEvent(parseXml(add)), { kind: "add", contact: want });
});

Deno.test("Ab events: the seed bug (fields read from the root) is not reproduced", () => {
  // Decoy fields on the root must be ignored; only <abentry> counts.
  const xml = '<AbAddUserEvent jid="1"><firstName>Wrong</firstName>' +
    '<abentry jid="2"><firstName>Right</firstName><businessPhone>3001</businessPhone></abentry>' +
    "</AbAddUserEvent>";
  const ev = decodeAbEvent(parseXml(xml));
  assert.ok(ev && ev.kind === "add");
  assert.equal(ev.contact.jid, "2");
  assert.equal(ev.contact.firstName, "Right");
  assert.equal(ev.contact.ext, "3001");
  // Root-only fields (no <abentry>) are malformed: ignored, not applied as an empty contact.
  assert.equal(
    decodeAbEvent(
      parseXml('<AbUpdateUserEvent jid="1"><firstName>X</firstName></AbUpdateUserEvent>'),
    ),
    undefined,
  );
});

Deno.test("AbDeleteUserEvent and unrelated messages", () => {
  assert.deepEqual(
    decodeAbEvent(
      parseXml("<AbDeleteUserEvent>\n  <userId>43884851147406145</userId>\n</AbDeleteUserEvent>"),
    ),
    { kind: "delete", jid: "43884851147406145" },
  );
  assert.equal(decodeAbEvent(parseXml("<AbDeleteUserEvent/>")), undefined);
  assert.equal(decodeAbEvent(parseXml(SEED_XML[0])), undefined);
});

// --- mail and logout -----------------------------------------------------------------------

Deno.test("MailIncomingReadyEvent", () => {
  const e = parseXml(`<MailIncomingReadyEvent from="3095" fromName="Dmitry Sedykh" callerName=""
    to="3099" ownerId="43884852031096113" ownerType="user" private="false" urgent="true">
  <monitorCrossRefID>5</monitorCrossRefID>
  <mailId>82</mailId>
  <mediaType>VoiceMail</mediaType>
  <gcid>63022-00-0000D-180</gcid>
  <received>1502210999</received>
  <duration>12</duration>
  <read>false</read>
  <note></note>
  <fileFormat>wav</fileFormat>
</MailIncomingReadyEvent>`);
  assert.deepEqual(decodeMailEvent(e), {
    monitorCrossRefId: 5,
    mail: {
      id: "82",
      from: "3095",
      fromName: "Dmitry Sedykh",
      callerName: "",
      to: "3099",
      ownerType: "user",
      received: 1502210999,
      duration: 12,
      read: false,
      note: "",
      mediaType: "VoiceMail",
    },
    ownerId: "43884852031096113",
    private: false,
    urgent: true,
    gcid: "63022-00-0000D-180",
    fileFormat: "wav",
  });
  assert.equal(decodeMailEvent(parseXml(SEED_XML[0])), undefined);
});

Deno.test("decodeLogout", () => {
  assert.equal(decodeLogout(parseXml('<Logout mode="forced"/>')), "forced");
  assert.equal(decodeLogout(parseXml("<Logout/>")), "");
  assert.equal(decodeLogout(parseXml("<logout/>")), undefined); // ours, lowercase
});
