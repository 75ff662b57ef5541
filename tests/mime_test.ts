/** The one Content-Type table (lib/http/mime.ts): static files, embedded assets, voicemail. */
import assert from "node:assert/strict";
import { contentTypeFor, mimeForFormat } from "../lib/http/mime.ts";

Deno.test("mime: file names by extension, voicemail formats by name, unknown is octet-stream", () => {
  assert.equal(contentTypeFor("static/index.html"), "text/html; charset=utf-8");
  assert.equal(contentTypeFor("lib/CALLS.JS"), "text/javascript; charset=utf-8");
  assert.equal(contentTypeFor("docs/openapi.yaml"), "application/yaml; charset=utf-8");
  assert.equal(contentTypeFor("favicon.svg"), "image/svg+xml");
  assert.equal(contentTypeFor("archive.tar.zst"), "application/octet-stream");
  assert.equal(mimeForFormat("wav"), "audio/wav");
  assert.equal(mimeForFormat(".GSM"), "audio/gsm");
  assert.equal(mimeForFormat("opus"), "audio/ogg");
  assert.equal(mimeForFormat("tif"), "image/tiff");
  assert.equal(mimeForFormat(""), "application/octet-stream");
});

Deno.test("mime: names of Object.prototype members are unknown types, not functions", () => {
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
    assert.equal(mimeForFormat(name), "application/octet-stream", `format ${name}`);
    assert.equal(contentTypeFor(`x.${name}`), "application/octet-stream", `file x.${name}`);
  }
});
