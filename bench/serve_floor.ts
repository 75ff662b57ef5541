/**
 * Where `Deno.serve`'s per-stream memory goes (issue 15: "if you find where the runtime's
 * per-stream cost comes from, write it down"). Each case runs a fresh child process with a
 * minimal server and opens N idle HTTP/1.1 requests to it from this process (raw sockets), then
 * reports the child's RSS growth per request:
 *
 * - `tcp`: plain `Deno.listen`, each accepted connection with one pending 1-byte read (the
 *   floor of an idle connection in Deno, no HTTP);
 * - `pending`: `Deno.serve` whose handler never answers (the request is in flight);
 * - `empty`: answers a `ReadableStream` body that never gets a chunk;
 * - `stream`: answers a `ReadableStream` body with one `retry:` chunk (a bare SSE stream);
 * - `rid`: answers a resource-backed body (`conn.readable` of a silent local TCP connection;
 *   includes both ends of that extra connection).
 *
 * ```sh
 * deno run -A bench/serve_floor.ts [--n=5000] [--cases=tcp,pending,empty,stream,rid]
 * ```
 *
 * @module
 */
const arg = (name: string, def: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;

/** The child: one minimal server of the given case, printing its port. */
async function serveCase(kind: string): Promise<void> {
  const enc = new TextEncoder();
  if (kind === "tcp") {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    console.log(JSON.stringify({ port: (l.addr as Deno.NetAddr).port }));
    for await (const c of l) c.read(new Uint8Array(1)).catch(() => {});
    return;
  }
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const c of silent) held.push(c);
  })();
  const headers = { "content-type": "text/event-stream" };
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    if (kind === "pending") return await new Promise<Response>(() => {});
    if (kind === "rid") {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: silent.addr.port });
      return new Response(c.readable, { headers });
    }
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        if (kind === "stream") c.enqueue(enc.encode("retry: 3000\n\n"));
      },
    });
    return new Response(body, { headers });
  });
  console.log(JSON.stringify({ port: s.addr.port }));
}

/** Opens `n` idle requests against a fresh child of `kind`; returns KiB of RSS per request. */
async function measure(kind: string, n: number): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, `--serve=${kind}`],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { port } = JSON.parse((await reader.read()).value!);
  const rss = () =>
    Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`))![1]);
  const req = new TextEncoder().encode("GET /events HTTP/1.1\r\nHost: bench\r\n\r\n");
  const conns: Deno.Conn[] = [];
  const open = async (k: number) => {
    for (let i = 0; i < k; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      if (kind !== "tcp") await c.write(req);
      conns.push(c);
    }
  };
  // Warm the code paths, let the child settle, then measure the growth for n more.
  await open(50);
  await new Promise((r) => setTimeout(r, 800));
  const before = rss();
  await open(n);
  await new Promise((r) => setTimeout(r, 2000));
  const after = rss();
  child.kill();
  await child.status;
  for (const c of conns) c.close();
  return (after - before) / n;
}

if (import.meta.main) {
  const serve = arg("serve", "");
  if (serve) {
    await serveCase(serve);
  } else {
    const n = Number(arg("n", "5000"));
    for (const kind of arg("cases", "tcp,pending,empty,stream,rid").split(",")) {
      const kib = await measure(kind, n);
      console.log(`${kind.padEnd(8)} ${kib.toFixed(1)} KiB per idle request (N = ${n})`);
    }
  }
}
