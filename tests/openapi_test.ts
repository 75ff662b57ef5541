/**
 * docs/openapi.yaml against the real server: every documented operation exists in the hono
 * app and every real /api, /mx and ops route is documented; and real responses (login,
 * contacts, calls, SSE events, proxy address book, call log, voicemail, errors) conform to
 * the documented schemas.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import {
  basic,
  type Harness,
  openEvents,
  type SseReader,
  startHarness,
} from "./helpers/harness.ts";

const DOC_URL = new URL("../docs/openapi.yaml", import.meta.url);
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

// deno-lint-ignore no-explicit-any
type Json = any;

/** Parses the document once (duplicate keys are an error). */
function loadDoc(): Json {
  return parse(Deno.readTextFileSync(DOC_URL), { uniqueKeys: true });
}

/** `/api/calls/{callId}` -> `/api/calls/:callId`. */
function toHonoPath(p: string): string {
  return p.replace(/\{([^}]+)\}/g, ":$1");
}

/** "METHOD path" of every documented operation. */
function documentedRoutes(doc: Json): Set<string> {
  const out = new Set<string>();
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    for (const m of METHODS) if (item[m]) out.add(`${m.toUpperCase()} ${toHonoPath(path)}`);
  }
  return out;
}

/** "METHOD path" of every real endpoint (no middleware, no static catch-all). */
function realRoutes(h: Harness): Set<string> {
  const out = new Set<string>();
  for (const r of h.server.app.routes) {
    if (r.method === "ALL") continue;
    if (r.path === "/*" || r.path === "/index.html") continue;
    out.add(`${r.method} ${r.path}`);
  }
  return out;
}

/** Resolves a local `$ref`. */
function deref(doc: Json, s: Json): Json {
  let cur = s;
  for (let i = 0; cur && typeof cur === "object" && "$ref" in cur; i++) {
    assert.ok(i < 20, "reference loop");
    const ref: string = cur.$ref;
    assert.ok(ref.startsWith("#/"), `only local refs: ${ref}`);
    cur = doc;
    for (const seg of ref.slice(2).split("/")) {
      cur = cur?.[seg.replace(/~1/g, "/").replace(/~0/g, "~")];
    }
    assert.ok(cur !== undefined, `broken $ref ${ref}`);
  }
  return cur;
}

/** Property names an object schema declares (through allOf); undefined = open schema. */
function declaredProps(doc: Json, s: Json): Set<string> | undefined {
  s = deref(doc, s);
  if (s.additionalProperties !== undefined && s.additionalProperties !== false) return undefined;
  const names = new Set<string>(Object.keys(s.properties ?? {}));
  for (const part of s.allOf ?? []) {
    const more = declaredProps(doc, part);
    if (!more) return undefined;
    for (const n of more) names.add(n);
  }
  return names;
}

/**
 * A small JSON Schema checker for the keywords the document uses. It is stricter than
 * JSON Schema on purpose: an object property the schema does not declare is an error,
 * so fields the server sends must be documented.
 */
function check(doc: Json, value: unknown, schema: Json, at = "$", part = false): string[] {
  const s = deref(doc, schema);
  const errs: string[] = [];
  if (s.allOf) { for (const p of s.allOf) errs.push(...check(doc, value, p, at, true)); }
  if (s.oneOf || s.anyOf) {
    const alts: Json[] = s.oneOf ?? s.anyOf;
    if (!alts.some((a) => check(doc, value, a, at).length === 0)) {
      errs.push(`${at}: no alternative`);
    }
  }
  if (s.const !== undefined && value !== s.const) errs.push(`${at}: expected ${s.const}`);
  if (s.enum && !s.enum.includes(value)) errs.push(`${at}: ${value} not in enum`);
  switch (s.type) {
    case "string":
      if (typeof value !== "string") errs.push(`${at}: expected string, got ${typeof value}`);
      break;
    case "integer":
      if (!Number.isInteger(value)) errs.push(`${at}: expected integer, got ${value}`);
      break;
    case "number":
      if (typeof value !== "number") errs.push(`${at}: expected number`);
      break;
    case "boolean":
      if (typeof value !== "boolean") errs.push(`${at}: expected boolean`);
      break;
    case "array":
      if (!Array.isArray(value)) errs.push(`${at}: expected array`);
      else if (s.items) {
        value.forEach((v, i) => errs.push(...check(doc, v, s.items, `${at}[${i}]`)));
      }
      break;
    case "object": {
      if (!value || typeof value !== "object" || Array.isArray(value)) {
        errs.push(`${at}: expected object`);
        break;
      }
      const o = value as Record<string, unknown>;
      for (const k of s.required ?? []) if (!(k in o)) errs.push(`${at}: missing ${k}`);
      for (const [k, v] of Object.entries(o)) {
        if (s.properties?.[k]) errs.push(...check(doc, v, s.properties[k], `${at}.${k}`));
        else if (s.additionalProperties && typeof s.additionalProperties === "object") {
          errs.push(...check(doc, v, s.additionalProperties, `${at}.${k}`));
        }
      }
      break;
    }
  }
  // Undeclared properties (only at the level that owns the whole shape, not in allOf parts).
  if (
    !part && value && typeof value === "object" && !Array.isArray(value) &&
    (s.allOf || s.properties)
  ) {
    const names = declaredProps(doc, s);
    if (names) {
      for (const k of Object.keys(value)) {
        if (!names.has(k)) errs.push(`${at}: undocumented property ${k}`);
      }
    }
  }
  return [...new Set(errs)];
}

/** The response schema of an operation for a status and media type. */
function responseSchema(doc: Json, method: string, path: string, status: number, type?: string) {
  const op = doc.paths[path]?.[method];
  assert.ok(op, `${method.toUpperCase()} ${path} is documented`);
  const res = deref(doc, op.responses?.[String(status)]);
  assert.ok(res, `${method.toUpperCase()} ${path} documents ${status}`);
  const content = res.content ?? {};
  const media = content[type ?? "application/json"];
  assert.ok(media, `${method.toUpperCase()} ${path} ${status} documents ${type ?? "JSON"}`);
  return media.schema;
}

/** Asserts a response's status is documented and its JSON body fits the schema. */
async function conforms(
  doc: Json,
  res: Response,
  method: string,
  path: string,
): Promise<Json> {
  const body = await res.json();
  const schema = responseSchema(doc, method, path, res.status);
  const errs = check(doc, body, schema);
  assert.deepEqual(errs, [], `${method.toUpperCase()} ${path} ${res.status}: ${errs.join("; ")}`);
  return body;
}

Deno.test("openapi: document is OpenAPI 3.1 with resolvable references and valid examples", () => {
  const doc = loadDoc();
  assert.equal(doc.openapi, "3.1.0");
  assert.ok(doc.info?.title && doc.info?.version);
  // Every $ref resolves.
  const walk = (o: Json) => {
    if (Array.isArray(o)) return o.forEach(walk);
    if (o && typeof o === "object") {
      if (typeof o.$ref === "string") deref(doc, o);
      for (const v of Object.values(o)) walk(v);
    }
  };
  walk(doc);
  // Examples of named schemas fit them.
  for (const [name, s] of Object.entries<Json>(doc.components.schemas)) {
    if (s.example === undefined) continue;
    const errs = check(doc, s.example, s);
    assert.deepEqual(errs, [], `example of ${name}: ${errs.join("; ")}`);
  }
  // Examples of JSON responses fit their schema.
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      assert.ok(op.summary, `${m} ${path} has a summary`);
      assert.ok(op.operationId, `${m} ${path} has an operationId`);
      for (const [status, r] of Object.entries<Json>(op.responses)) {
        const media = deref(doc, r).content?.["application/json"];
        if (!media?.example) continue;
        const errs = check(doc, media.example, media.schema);
        assert.deepEqual(errs, [], `${m} ${path} ${status} example: ${errs.join("; ")}`);
      }
      // Path parameters are declared.
      const declared = new Set(
        [...(item.parameters ?? []), ...(op.parameters ?? [])]
          .map((p: Json) => deref(doc, p))
          .filter((p: Json) => p.in === "path")
          .map((p: Json) => p.name),
      );
      for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
        assert.ok(declared.has(name), `${m} ${path} declares path parameter ${name}`);
      }
    }
  }
});

Deno.test("openapi: documented routes and real routes match", async () => {
  const doc = loadDoc();
  const h = await startHarness({ waitReady: false });
  try {
    const real = realRoutes(h);
    const documented = documentedRoutes(doc);
    const undocumented = [...real].filter((r) => !documented.has(r)).sort();
    const missing = [...documented].filter((r) => !real.has(r)).sort();
    assert.deepEqual(missing, [], `documented but not served: ${missing.join(", ")}`);
    assert.deepEqual(undocumented, [], `served but not documented: ${undocumented.join(", ")}`);
    // Sanity: the filter above did not hide the routers.
    assert.ok([...real].some((r) => r.startsWith("GET /mx/:name/")));
  } finally {
    await h.close();
  }
});

Deno.test("openapi: /api/openapi.yaml serves this document without a token", async () => {
  const h = await startHarness({ waitReady: false });
  try {
    const res = await fetch(`${h.url}/api/openapi.yaml`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /yaml/);
    assert.equal(await res.text(), Deno.readTextFileSync(DOC_URL));
  } finally {
    await h.close();
  }
});

Deno.test("openapi: Flex API responses and SSE events fit the schemas", async () => {
  const doc = loadDoc();
  const h = await startHarness();
  const u = h.url;
  let sse: SseReader | undefined;
  try {
    // Login: 200, 401, 400.
    let res = await fetch(`${u}/api/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ login: "dmitry", password: "secret" }),
    });
    assert.equal(res.status, 200);
    const login = await conforms(doc, res, "post", "/api/login");
    const token: string = login.access_token;
    res = await fetch(`${u}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: "dmitry", password: "wrong" }),
    });
    assert.equal(res.status, 401);
    await conforms(doc, res, "post", "/api/login");
    res = await fetch(`${u}/api/login`, { method: "POST", body: new URLSearchParams({}) });
    assert.equal(res.status, 400);
    await conforms(doc, res, "post", "/api/login");

    const auth = { Authorization: `Bearer ${token}` };
    // Missing token.
    res = await fetch(`${u}/api/contacts`);
    assert.equal(res.status, 401);
    await conforms(doc, res, "get", "/api/contacts");

    res = await fetch(`${u}/api/contacts`, { headers: auth });
    assert.equal(res.status, 200);
    const contacts = await conforms(doc, res, "get", "/api/contacts");
    assert.ok(contacts.contacts.some((c: Json) => c.ext === "3099"));

    // Events of one call, then call control.
    sse = await openEvents(u, token);

    res = await fetch(`${u}/api/call`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ to: "3099" }),
    });
    assert.equal(res.status, 200);
    const made = await conforms(doc, res, "post", "/api/call");
    const callId: number = made.call.callId;

    const seen = await sse.until("EstablishedEvent");
    res = await fetch(`${u}/api/calls/${callId}/hold`, { method: "POST", headers: auth });
    assert.equal(res.status, 204);
    seen.push(...await sse.until("HeldEvent"));
    res = await fetch(`${u}/api/calls/${callId}/retrieve`, { method: "POST", headers: auth });
    assert.equal(res.status, 204);
    seen.push(...await sse.until("RetrievedEvent"));
    res = await fetch(`${u}/api/calls/${callId}`, { method: "DELETE", headers: auth });
    assert.equal(res.status, 204);
    seen.push(...await sse.until("ConnectionClearedEvent"));

    // A second call, transferred away.
    res = await fetch(`${u}/api/call`, {
      method: "POST",
      body: new URLSearchParams({ to: "3044", access_token: token }),
    });
    assert.equal(res.status, 200);
    const second: number = (await conforms(doc, res, "post", "/api/call")).call.callId;
    seen.push(...await sse.until("EstablishedEvent"));
    res = await fetch(`${u}/api/calls/${second}/transfer`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ to: "3099" }),
    });
    assert.equal(res.status, 200);
    await conforms(doc, res, "post", "/api/calls/{callId}/transfer");
    seen.push(...await sse.until("TransferredEvent"));

    const names = seen.map((e) => e.event);
    const expected = [
      "OriginatedEvent",
      "DeliveredEvent",
      "EstablishedEvent",
      "HeldEvent",
      "RetrievedEvent",
      "ConnectionClearedEvent",
      "TransferredEvent",
    ];
    for (const n of expected) {
      assert.ok(names.includes(n), `saw ${n} in ${names.join(", ")}`);
    }
    for (const e of seen) {
      const schema = doc.components.schemas[e.event];
      assert.ok(schema, `event ${e.event} is documented`);
      assert.ok(e.id, "events carry ids");
      const errs = check(doc, JSON.parse(e.data), schema);
      assert.deepEqual(errs, [], `${e.event}: ${errs.join("; ")}\n${e.data}`);
    }

    // Errors of call control.
    res = await fetch(`${u}/api/calls/abc/hold`, { method: "POST", headers: auth });
    assert.equal(res.status, 400);
    await conforms(doc, res, "post", "/api/calls/{callId}/hold");
    res = await fetch(`${u}/api/calls/${callId}/hold`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ deviceId: "3099" }),
    });
    assert.equal(res.status, 403);
    await conforms(doc, res, "post", "/api/calls/{callId}/hold");
    res = await fetch(`${u}/api/call`, { method: "POST", headers: auth });
    assert.equal(res.status, 400);
    await conforms(doc, res, "post", "/api/call");

    // Ops.
    res = await fetch(`${u}/healthz`);
    assert.equal(res.status, 200);
    await conforms(doc, res, "get", "/healthz");
    res = await fetch(`${u}/readyz`);
    assert.equal(res.status, 200);
    await conforms(doc, res, "get", "/readyz");
    res = await fetch(`${u}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    await res.body?.cancel();

    // Logout ends the stream and the token.
    res = await fetch(`${u}/api/logout`, { headers: auth });
    assert.equal(res.status, 204);
    await res.body?.cancel();
    assert.equal(await sse.ended(), true);
    res = await fetch(`${u}/api/contacts`, { headers: auth });
    assert.equal(res.status, 401);
    await conforms(doc, res, "get", "/api/contacts");
  } finally {
    await sse?.cancel();
    await h.close();
  }
});

Deno.test("openapi: Proxy API responses fit the schemas", async () => {
  const doc = loadDoc();
  const h = await startHarness();
  const u = `${h.url}/mx/test`;
  const auth = { Authorization: basic() };
  try {
    let res = await fetch(`${u}/addressbook`, { headers: auth });
    assert.equal(res.status, 200);
    const book = await conforms(doc, res, "get", "/mx/{name}/addressbook");
    assert.equal(book.addressbook["43884852031096113"]?.ext, "3099");

    res = await fetch(`${u}/addressbook`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Basic/);
    await conforms(doc, res, "get", "/mx/{name}/addressbook");

    res = await fetch(`${h.url}/mx/nope/addressbook`, { headers: auth });
    assert.equal(res.status, 404);
    await conforms(doc, res, "get", "/mx/{name}/addressbook");

    h.sim.addCallLog("3095", { callingPartyNo: "3095", originalCalledPartyNo: "3099" });
    res = await fetch(`${u}/calllog`, { headers: auth });
    assert.equal(res.status, 200);
    const log = await conforms(doc, res, "get", "/mx/{name}/calllog");
    assert.ok(log.callog.length >= 1);
    res = await fetch(`${u}/calllog?timestamp=yesterday`, { headers: auth });
    assert.equal(res.status, 400);
    await conforms(doc, res, "get", "/mx/{name}/calllog");

    const id = h.sim.addVoicemail("3095", {
      from: "3099",
      fromName: "Maxim Donchenko",
      duration: 3,
      content: new Uint8Array(64),
    });
    res = await fetch(`${u}/voicemail`, { headers: auth });
    assert.equal(res.status, 200);
    const vm = await conforms(doc, res, "get", "/mx/{name}/voicemail");
    assert.ok(vm.voicemails.some((v: Json) => v.id === id));

    res = await fetch(`${u}/voicemail/${id}`, {
      method: "PATCH",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({}),
    });
    assert.equal(res.status, 400);
    await conforms(doc, res, "patch", "/mx/{name}/voicemail/{id}");

    res = await fetch(`${u}/call`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ from: "3095", to: "3099" }),
    });
    assert.equal(res.status, 200);
    await conforms(doc, res, "post", "/mx/{name}/call");
    res = await fetch(`${u}/call`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ to: "3099" }),
    });
    assert.equal(res.status, 400);
    await conforms(doc, res, "post", "/mx/{name}/call");

    res = await fetch(`${u}/token/nope/com.example`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ token: "x".repeat(64) }),
    });
    assert.equal(res.status, 404);
    await conforms(doc, res, "post", "/mx/{name}/token/{kind}/{bundle}");
  } finally {
    await h.close();
  }
});

/** Schema of each SSE event name: the call events' schemas are named after them. */
const EVENT_SCHEMA: Record<string, string> = {
  presence: "PresenceEvent",
  contact: "ContactEvent",
  snapshot: "SnapshotEvent",
};

Deno.test("openapi: live-state responses and events fit the schemas", async () => {
  const doc = loadDoc();
  const h = await startHarness({ sim: { presenceOnCalls: true } });
  const u = h.url;
  let sse: SseReader | undefined;
  try {
    const login = await fetch(`${u}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: "dmitry", password: "secret" }),
    });
    const token: string = (await login.json()).access_token;
    const auth = { Authorization: `Bearer ${token}` };
    const json = { ...auth, "Content-Type": "application/json" };
    sse = await openEvents(u, token);
    const seen: { event: string; data: string; id?: string }[] = [];

    // A call: current calls, presence on calls, a consultation transfer.
    const id = h.sim.incomingCall({ from: "3044", to: "3095" });
    seen.push(...await sse.until("presence"));
    let res = await fetch(`${u}/api/calls`, { headers: auth });
    assert.equal(res.status, 200);
    const current = await conforms(doc, res, "get", "/api/calls");
    assert.equal(current.calls.length, 1);
    res = await fetch(`${u}/api/calls/${id}/transfer`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ to: "3099", consult: true }),
    });
    assert.equal(res.status, 200);
    const consult = await conforms(doc, res, "post", "/api/calls/{callId}/transfer");
    seen.push(...await sse.until("EstablishedEvent"));
    res = await fetch(`${u}/api/calls/${id}/complete`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ consultCallId: consult.call.callId }),
    });
    assert.equal(res.status, 204);
    seen.push(...await sse.until("TransferredEvent"));
    res = await fetch(`${u}/api/calls/${id}/complete`, { method: "POST", headers: auth });
    assert.equal(res.status, 400);
    await conforms(doc, res, "post", "/api/calls/{callId}/complete");

    // Own presence, a contact change.
    res = await fetch(`${u}/api/presence`, {
      method: "PUT",
      headers: json,
      body: JSON.stringify({ status: "Away", note: "back at 3" }),
    });
    assert.equal(res.status, 204);
    res = await fetch(`${u}/api/presence`, {
      method: "PUT",
      headers: json,
      body: JSON.stringify({ status: "Gone" }),
    });
    assert.equal(res.status, 400);
    await conforms(doc, res, "put", "/api/presence");
    h.sim.addUser({
      login: "nina",
      password: "secret",
      jid: "43884853000900001",
      ext: "3100",
      firstName: "Nina",
      lastName: "New",
    });
    seen.push(...await sse.until("contact"));
    const last = seen.at(-1)!.id;
    await sse.cancel();
    // A snapshot (an id from another process).
    sse = await openEvents(u, token, { lastEventId: `x${last}` });
    seen.push(await sse.next());

    for (const n of ["presence", "contact", "snapshot", "HeldEvent", "TransferredEvent"]) {
      assert.ok(seen.some((e) => e.event === n), `saw ${n}`);
    }
    for (const e of seen) {
      const schema = doc.components.schemas[EVENT_SCHEMA[e.event] ?? e.event];
      assert.ok(schema, `event ${e.event} is documented`);
      const errs = check(doc, JSON.parse(e.data), schema);
      assert.deepEqual(errs, [], `${e.event}: ${errs.join("; ")}\n${e.data}`);
    }

    // History and voicemail with the JWT.
    h.sim.addCallLog("3095", { callingPartyNo: "3044", originalCalledPartyNo: "3095" });
    res = await fetch(`${u}/api/calllog`, { headers: auth });
    assert.equal(res.status, 200);
    assert.ok((await conforms(doc, res, "get", "/api/calllog")).calllog.length >= 1);
    res = await fetch(`${u}/api/calllog?timestamp=soon`, { headers: auth });
    assert.equal(res.status, 400);
    await conforms(doc, res, "get", "/api/calllog");
    const mail = h.sim.addVoicemail("3095", {
      from: "3099",
      duration: 3,
      note: "hi",
      content: new Uint8Array(16),
    });
    res = await fetch(`${u}/api/voicemail`, { headers: auth });
    assert.equal(res.status, 200);
    const list = await conforms(doc, res, "get", "/api/voicemail");
    assert.ok(list.voicemails.some((v: Json) => v.id === mail));
    res = await fetch(`${u}/api/voicemail/${mail}?access_token=${token}`);
    assert.equal(res.status, 200);
    const media = responseSchema(doc, "get", "/api/voicemail/{id}", 200, "audio/wav");
    assert.ok(media);
    await res.body?.cancel();
    res = await fetch(`${u}/api/voicemail/999999`, { headers: auth });
    assert.equal(res.status, 404);
    await conforms(doc, res, "get", "/api/voicemail/{id}");
    res = await fetch(`${u}/api/voicemail/${mail}`, { method: "PATCH", headers: json, body: "{}" });
    assert.equal(res.status, 400);
    await conforms(doc, res, "patch", "/api/voicemail/{id}");
    res = await fetch(`${u}/api/voicemail/a.b`, { method: "DELETE", headers: auth });
    assert.equal(res.status, 400);
    await conforms(doc, res, "delete", "/api/voicemail/{id}");
    // After logout: 401.
    await (await fetch(`${u}/api/logout`, { headers: auth })).body?.cancel();
    res = await fetch(`${u}/api/voicemail`, { headers: auth });
    assert.equal(res.status, 401);
    await conforms(doc, res, "get", "/api/voicemail");
  } finally {
    await sse?.cancel();
    await h.close();
  }
});
