/**
 * One Flex API request through the whole application in process (`deno task bench`): the
 * hono app behind `MxFlexServer.fetch`, middleware chain (request log, path guard, client
 * address, shutdown guard, server headers), JWT check, live-token check and the cached
 * contacts body, without sockets, so the figure is the server's own cost per request.
 * The simulator and server are started once (tests/helpers/harness.ts), then every
 * iteration is one `GET /api/contacts` with a Bearer token, its body read to the end.
 *
 * @module
 */
import { flexLogin, startHarness } from "../tests/helpers/harness.ts";

const h = await startHarness();
const token = await flexLogin(h.url);
const info = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50_000 },
  completed: Promise.resolve(),
} as unknown as Deno.ServeHandlerInfo<Deno.NetAddr>;
const headers = { authorization: `Bearer ${token}` };

// Sanity check before measuring: the request really answers the address book.
{
  const res = await h.server.fetch(new Request("http://127.0.0.1/api/contacts", { headers }), info);
  const body = await res.json();
  if (res.status !== 200 || !Array.isArray(body.contacts)) {
    throw new Error(`GET /api/contacts answered ${res.status}`);
  }
}

Deno.bench("GET /api/contacts in process (Bearer JWT, body read)", async () => {
  const res = await h.server.fetch(new Request("http://127.0.0.1/api/contacts", { headers }), info);
  await res.arrayBuffer();
});

globalThis.addEventListener("unload", () => void h.close());
