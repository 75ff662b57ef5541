/**
 * Operations endpoints: `/healthz` (process up) and `/readyz` (this instance's MX sessions,
 * and which instance answered: with several instances each reports only itself).
 *
 * @module
 */
import { Hono } from "hono";
import type { MxSession } from "../lib/mx/mod.ts";
import { jsonResponse } from "../lib/http/errors.ts";
import { embeddedAsset } from "../lib/assets.ts";

/**
 * Location of the OpenAPI description served at `/api/openapi.yaml`; when the file is not
 * there (bundle, Deno Deploy) the copy embedded by scripts/gen_assets.ts is served.
 */
export const OPENAPI_FILE = new URL("../docs/openapi.yaml", import.meta.url);

/** Builds the ops router. */
export function opsRoutes(sessions: Map<string, MxSession>, instanceId: string): Hono {
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
    const mx: Record<string, { state: string; sn?: string; reconnects: number; error?: string }> =
      {};
    let ready = true;
    for (const [name, s] of sessions) {
      if (s.state !== "connected") ready = false;
      mx[name] = {
        state: s.state,
        sn: s.sn,
        reconnects: s.reconnects,
        error: s.lastError || undefined,
      };
    }
    return jsonResponse({ ready, instance: instanceId, mx }, ready ? 200 : 503);
  });
  return app;
}
