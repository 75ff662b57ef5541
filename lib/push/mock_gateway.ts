/**
 * Local stand-ins for the push services: a mock APNs gateway (HTTP/2 over TLS) and a mock FCM
 * v1 API with its OAuth token endpoint (plain HTTP, or HTTPS). Both bind 127.0.0.1 on a free
 * port, record every request and answer from a per-token script (replies are used in order;
 * 200 once the script runs out). The tests drive them (`tests/helpers/mock_push.ts` adds the
 * fixture certificate), and `deno task demo` uses them as its push gateways so device-token
 * registration and pushes work without Apple or Google. Never used by the server itself.
 *
 * @module
 */

/** One request as the mock saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: string;
}

/** A scripted reply. `body` objects are sent as JSON. */
export interface MockReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Certificate and key (PEM) a mock serves TLS with; clients must trust the certificate. */
export interface MockTls {
  cert: string;
  key: string;
}

/** Options of the mocks' `start`. */
export interface MockOptions {
  /** Called with every request after it was recorded (the demo logs pushes). */
  onRequest?: (r: RecordedRequest) => void;
}

/** Scripted replies per device token. */
class Script {
  #replies = new Map<string, MockReply[]>();

  /** Queues replies for a token. */
  add(token: string, replies: MockReply[]): void {
    this.#replies.set(token, [...(this.#replies.get(token) ?? []), ...replies]);
  }

  /** Next reply for a token; 200 when nothing is queued. */
  next(token: string): MockReply {
    return this.#replies.get(token)?.shift() ?? { status: 200 };
  }
}

async function record(req: Request): Promise<RecordedRequest> {
  const url = new URL(req.url);
  return {
    method: req.method,
    path: url.pathname,
    headers: Object.fromEntries(req.headers),
    body: await req.text(),
  };
}

function reply(r: MockReply): Response {
  const body = r.body === undefined
    ? null
    : typeof r.body === "string"
    ? r.body
    : JSON.stringify(r.body);
  const headers = new Headers(r.headers);
  if (body !== null && typeof r.body !== "string") headers.set("content-type", "application/json");
  return new Response(body, { status: r.status, headers });
}

/**
 * Mock APNs gateway: `POST /3/device/<token>`. Run two for production and sandbox.
 *
 * @example
 * ```ts
 * const apns = MockApns.start({ cert, key });
 * apns.script("token…", { status: 503, headers: { "retry-after": "0" } }, { status: 200 });
 * ```
 */
export class MockApns {
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Origin, e.g. `https://127.0.0.1:4433` (the certificate must name 127.0.0.1). */
  readonly url: string;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #script = new Script();

  private constructor(tls: MockTls, o: MockOptions) {
    this.#server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: tls.cert,
      key: tls.key,
      onListen: () => {},
    }, async (req) => {
      const rec = await record(req);
      this.requests.push(rec);
      o.onRequest?.(rec);
      const m = rec.path.match(/^\/3\/device\/([^/]+)$/);
      if (req.method !== "POST" || !m) return reply({ status: 404, body: { reason: "BadPath" } });
      return reply(this.#script.next(decodeURIComponent(m[1])));
    });
    this.url = `https://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Starts a gateway on a free loopback port, serving TLS with `tls`. */
  static start(tls: MockTls, o: MockOptions = {}): MockApns {
    return new MockApns(tls, o);
  }

  /** Queues replies for a device token. */
  script(token: string, ...replies: MockReply[]): void {
    this.#script.add(token, replies);
  }

  /** Requests for one device token. */
  requestsFor(token: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === `/3/device/${token}`);
  }

  /** Stops the server. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}

/**
 * Mock FCM v1 API and OAuth token endpoint on one server (plain HTTP, or HTTPS when started
 * with `{tls}`):
 * `POST /token` issues `mock-access-<n>`; `POST /v1/projects/<p>/messages:send` requires a
 * current bearer token (else 401) and answers from the per-token script.
 *
 * @example
 * ```ts
 * const fcm = MockFcm.start();
 * fcm.script("device-token", { status: 404, body: { error: { status: "NOT_FOUND" } } });
 * await fcm.close();
 * ```
 */
export class MockFcm {
  /** Message sends, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** OAuth token requests, in arrival order. */
  readonly tokenRequests: RecordedRequest[] = [];
  /** Origin, e.g. `http://127.0.0.1:4321`. */
  readonly url: string;
  /** `expires_in` (seconds) of issued access tokens. */
  expiresIn = 3600;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #script = new Script();
  #issued = new Set<string>();

  private constructor(tls: MockTls | undefined, o: MockOptions) {
    this.#server = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        onListen: () => {},
        ...(tls ? { cert: tls.cert, key: tls.key } : {}),
      },
      async (req) => {
        const rec = await record(req);
        if (req.method === "POST" && rec.path === "/token") {
          this.tokenRequests.push(rec);
          const token = `mock-access-${this.tokenRequests.length}`;
          this.#issued.add(token);
          return reply({
            status: 200,
            body: { access_token: token, expires_in: this.expiresIn, token_type: "Bearer" },
          });
        }
        if (req.method === "POST" && /^\/v1\/projects\/[^/]+\/messages:send$/.test(rec.path)) {
          this.requests.push(rec);
          o.onRequest?.(rec);
          const bearer = rec.headers["authorization"]?.replace(/^Bearer /, "") ?? "";
          if (!this.#issued.has(bearer)) {
            return reply({
              status: 401,
              body: { error: { code: 401, status: "UNAUTHENTICATED" } },
            });
          }
          const msg = JSON.parse(rec.body) as { message?: { token?: string } };
          return reply(this.#script.next(msg.message?.token ?? ""));
        }
        return reply({ status: 404, body: { error: { code: 404, status: "NOT_FOUND" } } });
      },
    );
    this.url = `${tls ? "https" : "http"}://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Starts the mock on a free loopback port; with `tls` it serves HTTPS. */
  static start(o: MockOptions & { tls?: MockTls } = {}): MockFcm {
    return new MockFcm(o.tls, o);
  }

  /** The OAuth endpoint URL (for `pushEndpoints.fcmOauth`). */
  get oauthUrl(): string {
    return `${this.url}/token`;
  }

  /** Queues replies for a device token. */
  script(token: string, ...replies: MockReply[]): void {
    this.#script.add(token, replies);
  }

  /** Makes every issued access token invalid (the next send gets 401). */
  revokeAccessTokens(): void {
    this.#issued.clear();
  }

  /** Stops the server. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}
