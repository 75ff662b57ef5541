/**
 * A private listener for one instance's operations endpoints (`/healthz`, `/readyz`,
 * `/metrics`), on its own port. Behind a shared port (`--instances N`, `reusePort`) a request
 * reaches whichever instance the kernel picks, so health checks and Prometheus scrapes would
 * see a random instance each time; `opsHost: "127.0.0.1:9100"` gives instance k the port
 * 9100 + k − 1, where it answers for itself only.
 *
 * @example
 * ```ts
 * const ops = await listenOps(server.fetch, "127.0.0.1:9100", 2); // 127.0.0.1:9101
 * await ops.shutdown();
 * ```
 *
 * @module
 */
import { type Handler, listen, type Listening } from "./listen.ts";
import { hostMode } from "./host_rule.ts";
import { errorResponse } from "../http/errors.ts";

/** The paths the ops listener serves; anything else is 404. */
export const OPS_PATHS: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * The port of instance `index` (1-based) for an `opsHost` port: `port + index - 1`; 0 stays 0
 * (any free port).
 *
 * @example
 * ```ts
 * opsPort(9100, 3); // 9102
 * ```
 */
export function opsPort(port: number, index: number | undefined): number {
  return port === 0 || index === undefined ? port : port + index - 1;
}

/**
 * Serves `handler` for {@link OPS_PATHS} on `host` (plain HTTP) shifted by the instance index.
 * @throws {Error} when `host` is not a plain-HTTP address with a port
 *
 * @example
 * ```ts
 * const ops = await listenOps(server.fetch, "127.0.0.1:9100", 1); // 127.0.0.1:9100
 * await ops.shutdown();
 * ```
 */
export async function listenOps(
  handler: Handler,
  host: string,
  index: number | undefined,
): Promise<Listening> {
  const mode = hostMode(host);
  if (mode.mode !== "http") {
    throw new Error(`opsHost ${host}: an IP address or localhost with a port`);
  }
  const only: Handler = (req, info) =>
    OPS_PATHS.has(new URL(req.url).pathname) ? handler(req, info) : errorResponse(404, "not found");
  return await listen(only, { host: `${mode.hostname}:${opsPort(mode.port, index)}` });
}
