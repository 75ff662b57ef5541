import assert from "node:assert/strict";
import { XMLParser } from "fast-xml-parser";
import {
  el,
  escapeXml,
  intAt,
  parseXml,
  rootName,
  textAt,
  type XmlElement,
} from "../lib/csta/xml.ts";
import { XmlError } from "../lib/csta/errors.ts";

Deno.test("xml: prolog, namespaces and entities", () => {
  const e = parseXml(
    `<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><csta:MakeCall xmlns:csta="urn:x" xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callingDevice typeOfNumber="deviceID">3095</callingDevice><pwd>a&#xA;&amp;&lt;&#65;</pwd></csta:MakeCall>`,
  );
  assert.equal(e.name, "MakeCall");
  assert.deepEqual(e.children[0].attrs, { typeOfNumber: "deviceID" });
  assert.equal(textAt(e, "callingDevice"), "3095");
  assert.equal(e.children[1].text, "a\n&<A");
});

Deno.test("xml: self-closing, CDATA, single quotes, numbers", () => {
  const e = parseXml(`<a x='1'><b/><c><![CDATA[<raw>]]></c><n> 42 </n></a>`);
  assert.equal(e.attrs.x, "1");
  assert.equal(e.children.length, 3);
  assert.equal(textAt(e, "c"), "<raw>");
  assert.equal(intAt(e, "n"), 42);
  assert.equal(intAt(e, "missing"), 0);
});

Deno.test("xml: malformed documents raise XmlError", () => {
  for (
    const bad of [
      "",
      "<a>",
      "<a></b>",
      "<a><b></a>",
      "text",
      "<a x=1></a>",
      "<a></a><b></b>",
      "<a>&bogus;</a>",
      "<a><!DOCTYPE x></a>",
      "<a x='<'></a>",
      "<" + "a>".repeat(1),
      "<x>" + "<y>".repeat(100) + "</y>".repeat(100) + "</x>",
    ]
  ) {
    assert.throws(() => parseXml(bad), XmlError, bad);
  }
});

Deno.test("xml: rootName skips prolog and reads the local name", () => {
  assert.equal(rootName(`<?xml version="1.0"?>\n<!-- x --><ns:DeliveredEvent>`), "DeliveredEvent");
  assert.equal(rootName("garbage"), "");
});

Deno.test("xml: escaping matches Go (tab, CR, LF as character references)", () => {
  assert.equal(escapeXml(`a&b<c>"d'\t\r\n`), "a&amp;b&lt;c&gt;&quot;d&apos;&#x9;&#xD;&#xA;");
  assert.equal(
    el("iq", { type: "get", id: "addressbook", index: 0, skip: undefined }).xml,
    `<iq type="get" id="addressbook" index="0"></iq>`,
  );
  const nested = el("a", {}, el("b", {}, "x<y"), null, undefined, 5);
  assert.equal(nested.xml, "<a><b>x&lt;y</b>5</a>");
  assert.equal(parseXml(nested.xml).children[0].text, "x<y");
});

/** Converts our tree to fast-xml-parser's shape, to compare the two parsers. */
function toFxp(e: XmlElement): unknown {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e.attrs)) o["@" + k] = v;
  for (const c of e.children) {
    const v = toFxp(c);
    o[c.name] = o[c.name] === undefined ? [v] : [...(o[c.name] as unknown[]), v];
  }
  const t = e.text.trim();
  if (t) o["#text"] = t;
  return o;
}

Deno.test("xml: agrees with fast-xml-parser on random documents (differential)", () => {
  const fxp = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@",
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    alwaysCreateTextNode: true,
    isArray: (_n: string, _j: unknown, _leaf: boolean, isAttr: boolean) => !isAttr,
  });
  /** fast-xml-parser gives "" for empty elements and strings for text-only ones. */
  const canon = (v: unknown): unknown => {
    if (v === "") return {};
    if (typeof v === "string") return { "#text": v };
    if (Array.isArray(v)) return v.map(canon);
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.entries(o)
        .filter(([k, x]) => !(k === "#text" && x === ""))
        .map(([k, x]) => [k, k.startsWith("@") || k === "#text" ? x : canon(x)]),
    );
  };
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const names = ["a", "callID", "deviceID", "x-y", "m.n"];
  const texts = ["", "3095", "a &amp; b", "&lt;tag&gt;", "é ü", "1 2"];
  const gen = (depth: number): string => {
    const name = names[rnd(names.length)];
    const attrs = rnd(3) === 0 ? ` k${rnd(3)}="${texts[rnd(texts.length)]}"` : "";
    if (depth > 3 || rnd(3) === 0) return `<${name}${attrs}>${texts[rnd(texts.length)]}</${name}>`;
    let inner = "";
    for (let i = rnd(4); i >= 0; i--) inner += gen(depth + 1);
    return `<${name}${attrs}>${inner}</${name}>`;
  };
  for (let i = 0; i < 300; i++) {
    const doc = `<root>${gen(0)}</root>`;
    const ours = { root: [toFxp(parseXml(doc))] };
    const theirs = canon(fxp.parse(doc));
    assert.deepEqual(ours, theirs, doc);
  }
});
