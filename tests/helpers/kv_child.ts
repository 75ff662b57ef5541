/**
 * A second process on a KV file, for tests about what one process sees of another's writes:
 *
 * ```sh
 * deno run --unstable-kv -A tests/helpers/kv_child.ts set <db> <key> <value>
 * deno run --unstable-kv -A tests/helpers/kv_child.ts append <db> <feed> <json>
 * ```
 *
 * Prints `done` once the write is committed, then exits.
 *
 * @module
 */
import { ChangeFeed } from "../../lib/store/change_feed.ts";

if (import.meta.main) {
  const [cmd, db, name, value] = Deno.args;
  const kv = await Deno.openKv(db);
  if (cmd === "set") await kv.set([name], value);
  else if (cmd === "append") await new ChangeFeed(kv, name).append(JSON.parse(value));
  else throw new Error(`unknown command ${cmd}`);
  kv.close();
  console.log("done");
}

/** Runs the child to completion and checks that it committed. */
export async function kvChild(cmd: "set" | "append", db: string, name: string, value: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-kv", "-A", new URL(import.meta.url).pathname, cmd, db, name, value],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success || !text.includes("done")) {
    throw new Error(`kv child failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}
