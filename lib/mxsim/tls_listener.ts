/**
 * TLS listener for the simulator built on `node:tls`, because Deno's own TLS connections
 * cannot disable Nagle's algorithm: with it on, the last TLS record of every frame waits for
 * the client's delayed ACK (~40 ms), which made chunked voicemail downloads 80x slower than
 * over plain TCP. Node sockets expose `setNoDelay`.
 *
 * The adapter offers just what the simulator uses of `Deno.Listener` / `Deno.Conn`.
 *
 * @module
 */
import tls from "node:tls";
import type { Socket } from "node:net";

/** The part of a connection the simulator uses. */
export interface SimConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** The part of a listener the simulator uses. */
export interface SimListener {
  readonly addr: Deno.NetAddr;
  accept(): Promise<SimConn>;
  close(): void;
}

/** Most unread bytes buffered per connection before the socket is paused. */
const HIGH_WATER = 1024 * 1024;

class NodeConn implements SimConn {
  #sock: Socket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #waiter?: () => void;

  constructor(sock: Socket) {
    this.#sock = sock;
    sock.setNoDelay(true);
    sock.on("data", (d: Uint8Array) => {
      this.#chunks.push(d);
      this.#buffered += d.length;
      if (this.#buffered > HIGH_WATER) sock.pause();
      this.#wake();
    });
    const end = () => {
      this.#ended = true;
      this.#wake();
    };
    sock.on("end", end);
    sock.on("close", end);
    sock.on("error", end);
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      await new Promise<void>((r) => this.#waiter = r);
    }
    const head = this.#chunks[0];
    const n = Math.min(p.length, head.length);
    p.set(head.subarray(0, n));
    if (n === head.length) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    this.#buffered -= n;
    if (this.#buffered <= HIGH_WATER && this.#sock.isPaused()) this.#sock.resume();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#sock.destroyed) return Promise.reject(new Deno.errors.BrokenPipe("closed"));
    // Copy: the caller may reuse its buffer as soon as the promise resolves.
    const ok = this.#sock.write(p.slice());
    if (ok) return Promise.resolve(p.length);
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.#sock.off("close", onClose);
        resolve(p.length);
      };
      const onClose = () => {
        this.#sock.off("drain", onDrain);
        reject(new Deno.errors.BrokenPipe("closed"));
      };
      this.#sock.once("drain", onDrain);
      this.#sock.once("close", onClose);
    });
  }

  close(): void {
    this.#sock.destroy();
    this.#ended = true;
    this.#wake();
  }
}

/**
 * Starts a TLS listener on `hostname:port` (0 = any free port).
 *
 * @example
 * ```ts
 * const listener = await listenTls("127.0.0.1", 0, certPem, keyPem);
 * const conn = await listener.accept(); // a SimConn with Nagle's algorithm off
 * ```
 */
export function listenTls(
  hostname: string,
  port: number,
  cert: string,
  key: string,
): Promise<SimListener> {
  const queue: SimConn[] = [];
  const waiters: Array<{ resolve: (c: SimConn) => void; reject: (e: Error) => void }> = [];
  let closed = false;
  const sockets = new Set<Socket>();
  const server = tls.createServer({ cert, key }, (sock: Socket) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    const conn = new NodeConn(sock);
    const w = waiters.shift();
    if (w) w.resolve(conn);
    else queue.push(conn);
  });
  // A client that fails the handshake must not disturb anyone else.
  server.on("tlsClientError", () => {});
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      const a = server.address() as { port: number };
      resolve({
        addr: { transport: "tcp", hostname, port: a.port },
        accept() {
          if (queue.length) return Promise.resolve(queue.shift()!);
          if (closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
          return new Promise((res, rej) => waiters.push({ resolve: res, reject: rej }));
        },
        close() {
          if (closed) return;
          closed = true;
          server.close();
          for (const w of waiters.splice(0)) {
            w.reject(new Deno.errors.BadResource("listener closed"));
          }
          for (const c of queue.splice(0)) c.close();
        },
      });
    });
  });
}
