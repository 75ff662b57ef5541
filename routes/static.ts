/**
 * Static files: `html/` in the working directory as the seed says, falling back to the
 * built-in web client in `static/`, then to the copy of `static/` embedded in the program
 * (lib/assets.ts; a bundle or Deno Deploy has no `static/` directory). No token needed.
 * Paths are confined to the directory: `..`, encoded separators, NUL bytes and symlinks
 * leading outside are refused.
 *
 * @module
 */
import { Hono } from "hono";
import { HttpError } from "../lib/http/errors.ts";
import { embeddedAsset } from "../lib/assets.ts";
import { contentTypeFor } from "../lib/http/mime.ts";

/**
 * Turns a request path into a safe relative file path, or undefined when it tries to leave
 * the directory or is otherwise unacceptable.
 *
 * @example
 * ```ts
 * safeRelativePath("/lib/calls.js"); // "lib/calls.js"
 * safeRelativePath("/%2e%2e/secret"); // undefined
 * ```
 */
export function safeRelativePath(urlPath: string): string | undefined {
  let p: string;
  try {
    p = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (p.includes("\0") || p.includes("\\")) return undefined;
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.some((s) => s === ".." || s.startsWith("."))) return undefined;
  return parts.join("/");
}

/** A directory of which only some files are served. */
export interface StaticDir {
  /** Absolute or relative to the working directory. */
  path: string;
  /** Whether the file at `rel` (relative to the directory) may be served. */
  serves: (rel: string) => boolean;
}

/** Options for {@link staticRoutes}. */
export interface StaticOptions {
  /**
   * Directories searched in order: a path (every file served) or a {@link StaticDir}.
   */
  dirs: Array<string | StaticDir>;
  /** Fall back to the embedded copy of `static/` (lib/assets.ts); default true. */
  embedded?: boolean;
}

/**
 * Builds the static-file router (mount last: it catches every GET).
 *
 * @example
 * ```ts
 * app.route("/", staticRoutes({ dirs: ["html", { path: "static", serves: isWebClientFile }] }));
 * ```
 */
export function staticRoutes(o: StaticOptions): Hono {
  const app = new Hono();
  app.get("/index.html", (c) => c.redirect("/", 301));
  app.get("/*", async (c) => {
    const rel = safeRelativePath(new URL(c.req.url).pathname) ?? null;
    if (rel === null) throw new HttpError(404, "not found");
    const name = rel === "" ? "index.html" : rel;
    for (const dir of o.dirs) {
      if (typeof dir !== "string" && !dir.serves(name)) continue;
      const file = await openInside(typeof dir === "string" ? dir : dir.path, name);
      if (!file) continue;
      const { handle, size, mtime } = file;
      const etag = `W/"${size}-${mtime}"`;
      if (c.req.header("if-none-match") === etag) {
        handle.close();
        return new Response(null, { status: 304, headers: { ETag: etag } });
      }
      return new Response(handle.readable, {
        headers: {
          "Content-Type": contentTypeFor(name),
          "Content-Length": String(size),
          ETag: etag,
          "Cache-Control": "no-cache",
          "X-Content-Type-Options": "nosniff",
        },
      });
    }
    const asset = o.embedded === false ? undefined : await embeddedAsset(`static/${name}`);
    if (asset) {
      const etag = `"${asset.etag}"`;
      if (c.req.header("if-none-match") === etag) {
        return new Response(null, { status: 304, headers: { ETag: etag } });
      }
      return new Response(asset.body, {
        headers: {
          "Content-Type": asset.type,
          "Content-Length": String(asset.body.length),
          ETag: etag,
          "Cache-Control": "no-cache",
          "X-Content-Type-Options": "nosniff",
        },
      });
    }
    throw new HttpError(404, "not found");
  });
  return app;
}

async function openInside(
  dir: string,
  rel: string,
): Promise<{ handle: Deno.FsFile; size: number; mtime: number } | undefined> {
  let root: string, real: string;
  try {
    root = await Deno.realPath(dir);
    real = await Deno.realPath(`${root}/${rel}`);
  } catch {
    return undefined;
  }
  // A symlink inside the directory must not lead outside it.
  if (real !== root && !real.startsWith(root + "/")) return undefined;
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(real, { read: true });
    const st = await handle.stat();
    if (!st.isFile) {
      handle.close();
      return undefined;
    }
    return { handle, size: st.size, mtime: st.mtime?.getTime() ?? 0 };
  } catch {
    try {
      handle?.close();
    } catch {
      // already closed
    }
    return undefined;
  }
}
