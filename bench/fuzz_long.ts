/**
 * Long fuzz run: the fuzzers of `tests/fuzz_test.ts` for N minutes (default 5), in rounds
 * with fresh seeds, printing every seed so a failure can be replayed with
 * `FUZZ_SEED=<seed> deno task test tests/fuzz_test.ts`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env bench/fuzz_long.ts 10
 * ```
 *
 * @module
 */
import { fuzzClient, fuzzFrames, fuzzSeed, fuzzXml } from "../tests/fuzz_test.ts";

const minutes = Number(Deno.args[0] ?? "5");
if (!Number.isFinite(minutes) || minutes <= 0) {
  console.error("usage: fuzz_long.ts [minutes]");
  Deno.exit(2);
}
const end = Date.now() + minutes * 60_000;
let round = 0, cases = 0, sessions = 0;
while (Date.now() < end) {
  const seed = round === 0 ? fuzzSeed() : Math.floor(Math.random() * 2 ** 32);
  round++;
  try {
    cases += fuzzFrames(seed, 5_000).cases;
    cases += fuzzXml(seed, 5_000).cases;
    await fuzzClient(seed, 50);
    sessions += 50;
  } catch (err) {
    console.error(`FAILED with seed ${seed}: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
  console.log(`round ${round} seed=${seed} ok (${cases} codec cases, ${sessions} sessions)`);
}
console.log(`done: ${round} rounds, ${cases} codec cases, ${sessions} fake-MX sessions`);
