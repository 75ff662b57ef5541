/**
 * Operations endpoints: `/healthz` (process up) and `/readyz` (this instance's MX sessions, in
 * ACME mode the certificate's, and which instance answered: with several instances each
 * reports only itself).
 *
 * @module
 */
import { Hono } from "hono";
import type { MxSession } from "../lib/mx/mod.ts";
import type { HttpsStatus } from "../lib/listen/https_status.ts";
import { jsonResponse } from "../lib/http/errors.ts";
import { embeddedAsset } from "../lib/assets.ts";

/**
 * Location of the OpenAPI description served at `/api/openapi.yaml`; when the file is not
 * there (bundle, Deno Deploy) the copy embedded by scripts/gen_assets.ts is served.
 */
export const OPENAPI_FILE = new URL("../docs/openapi.yaml", import.meta.url);

/**
 * Builds the ops router. `/readyz` is 200 when every MX session is connected and, with an
 * active `https` (ACME mode), a certificate is served; otherwise 503, saying why.
 *
 * @example
 * ```ts
 * app.route("/", opsRoutes(sessions, "mx-gw-1"));
 * ```
 */
export function opsRoutes(
  sessions: Map<string, MxSession>,
  instanceId: string,
  https?: HttpsStatus,
): Hono {
  const app = new Hono();
  app.get("/api/openapi.yaml", async () => {
    let body: BodyInit;
    try {
      body = await Deno.readTextFile(OPENAPI_FILE);
    } catch (err) {
      const asset = await embeddedAsset("docs/openapi.yaml");
      if (!asset) throw err;
      body = asset.body;
    }
    return new Response(body, {
      headers: { "Content-Type": "application/yaml; charset=utf-8", "Cache-Control": "no-cache" },
    });
  });
  app.get("/healthz", () => jsonResponse({ status: "ok" }));
  app.get("/readyz", () => {
    const mx: Record<
      string,
      { state: string; sn?: string; reconnects: number; error?: string; nextAttempt?: string }
    > = {};
    let ready = true;
    for (const [name, s] of sessions) {
      if (s.state !== "connected") ready = false;
      mx[name] = {
        state: s.state,
        sn: s.sn,
        reconnects: s.reconnects,
        error: s.lastError || undefined,
        nextAttempt: s.state === "connected" ? undefined : s.nextAttempt?.toISOString(),
      };
    }
    const tls = https?.view();
    if (tls && !https!.ready) ready = false;
    const body = { ready, instance: instanceId, mx, ...(tls ? { https: tls } : {}) };
    return jsonResponse(body, ready ? 200 : 503);
  });
  return app;
}
