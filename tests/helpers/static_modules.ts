/** The web client's JavaScript modules on disk, for tests that compare them with what loads. */

/** Paths as the browser asks for them (`/app.js`, `/lib/calls.js`, …) of every `.js` under static/, sorted. */
export async function staticModules(): Promise<string[]> {
  const root = new URL("../../static/", import.meta.url);
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(new URL(rel, root))) {
      if (e.isDirectory) await walk(`${rel}${e.name}/`);
      else if (e.name.endsWith(".js")) out.push(`/${rel}${e.name}`);
    }
  };
  await walk("");
  return out.sort();
}
