/**
 * Configuration: both seed files load unchanged, JSON vs YAML by content, validation errors
 * name the key, environment overrides, and main.ts's Go-style flags and config failures.
 */
import assert from "node:assert/strict";
import {
  applyEnv,
  CONFIG_KEYS,
  ConfigError,
  loadConfigFile,
  normalizeConfig,
  parseConfigText,
} from "../lib/config.ts";
import { main, parseFlags } from "../main.ts";
import { Program } from "./helpers/program.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);

/**
 * The seeds' config files, byte for byte (seeds/mxflex-api.md and seeds/mxproxy-api.md,
 * "Конфигурационный файл"): kept only here, as fixtures. The examples in config/ use
 * placeholders instead (the seed 1 file names a real, public MX).
 */
const SEED_FLEX_YAML = Deno.readTextFileSync(new URL("seeds/mxflex.yaml", FIXTURES));
const SEED_PROXY_JSON = Deno.readTextFileSync(new URL("seeds/mxproxy.json", FIXTURES));

async function withTempFile<T>(
  name: string,
  text: string,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "mxflex-config-" });
  try {
    const path = `${dir}/${name}`;
    await Deno.writeTextFile(path, text);
    return await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts `fn` throws a ConfigError whose message matches `re`. */
function assertConfigError(fn: () => unknown, re: RegExp, label = ""): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `${label} expected ConfigError, got ${err}`);
    assert.match(err.message, re, label);
    return true;
  }, label);
}

const MX = { addr: "10.0.0.1", login: "server", password: "pw" };

/** The seeds sit beside the repository (`../shared/seeds`; a worktree is one level deeper). */
const SEEDS_DIR = ["../../shared/seeds/", "../../../shared/seeds/"]
  .map((p) => new URL(p, import.meta.url))
  .find((u) => {
    try {
      return Deno.statSync(u).isDirectory;
    } catch {
      return false;
    }
  });

Deno.test({
  name: `config: the seed fixtures are the seeds' text, byte for byte${
    SEEDS_DIR ? "" : " (skipped: seeds not found beside the repository)"
  }`,
  ignore: !SEEDS_DIR,
  async fn() {
    for (
      const [file, lang, fixture] of [
        ["mxflex-api.md", "yaml", SEED_FLEX_YAML],
        ["mxproxy-api.md", "json", SEED_PROXY_JSON],
      ]
    ) {
      const md = await Deno.readTextFile(new URL(file, SEEDS_DIR));
      const text = md.split("## Конфигурационный файл")[1].split("```" + lang + "\n")[1]
        .split("```")[0];
      assert.equal(fixture, text, file);
    }
  },
});

Deno.test("config: seed 1 mxflex.yaml (YAML flow mapping) loads unchanged", async () => {
  await withTempFile("mxflex.yaml", SEED_FLEX_YAML, async (path) => {
    const cfg = await loadConfigFile(path);
    assert.equal(cfg.host, "localhost:8080");
    assert.equal(cfg.mx.length, 1);
    assert.deepEqual(
      { ...cfg.mx[0], tls: undefined },
      {
        name: "default",
        key: "mx",
        hostname: "89.185.246.134",
        port: 7778,
        login: "d3test",
        password: "981211",
        tls: undefined,
      },
    );
    assert.equal(cfg.flexMx, "default");
    assert.equal(cfg.tokenTtl, 3600);
    assert.equal(cfg.staticDir, "html");
    assert.equal(cfg.db, "");
    assert.deepEqual(cfg.push, {});
    assert.equal(cfg.baseDir, path.slice(0, path.lastIndexOf("/")));
  });
});

Deno.test("config: seed 2 mxproxy.json (named MX, apns, gfcm) loads unchanged", async () => {
  await withTempFile("mxproxy.json", SEED_PROXY_JSON, async (path) => {
    const cfg = await loadConfigFile(path);
    assert.equal(cfg.host, "localhost:8080");
    assert.deepEqual(cfg.mx.map((m) => [m.name, m.key, m.hostname, m.port, m.login, m.password]), [
      ["dev", "mx.dev", "127.0.0.1", 7778, "server", "password"],
    ]);
    assert.equal(cfg.flexMx, "dev");
    assert.deepEqual(cfg.push, {
      apns: { "push-cert.p12": "password" },
      gfcm: { "app-name": "GOOGLE-APP-KEY" },
    });
  });
});

Deno.test("config: the example configs load and point at no public address", async () => {
  const dir = new URL("../config/", import.meta.url);
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) files.push(e.name);
  assert.deepEqual(files.sort(), ["mxflex.yaml", "mxproxy.json"]);
  // Loopback, or names that can never reach a real MX (RFC 2606 / RFC 6761).
  const safe =
    /^(127\.\d+\.\d+\.\d+|localhost|::1|(.+\.)?example(\.(com|net|org))?|.+\.(test|invalid))$/;
  for (const name of files) {
    const cfg = await loadConfigFile(new URL(name, dir).pathname);
    for (const mx of cfg.mx) assert.match(mx.hostname, safe, `${name}: mx ${mx.name}`);
    assert.notEqual(cfg.mx[0].password, "981211", `${name}: not the seed's credentials`);
  }
});

Deno.test("config: JSON or YAML is chosen by content, not by file name", async () => {
  // JSON in a .yaml file, YAML in a .json file.
  await withTempFile("x.yaml", SEED_PROXY_JSON, async (p) => {
    assert.equal((await loadConfigFile(p)).mx[0].name, "dev");
  });
  await withTempFile("x.json", SEED_FLEX_YAML, async (p) => {
    assert.equal((await loadConfigFile(p)).mx[0].login, "d3test");
  });
  // A whole-document flow mapping with unquoted keys is YAML, not broken JSON.
  assert.deepEqual(await parseConfigText("{host: a, mx: {addr: b}}"), {
    host: "a",
    mx: { addr: "b" },
  });
  assert.deepEqual(await parseConfigText('{"a": 1}'), { a: 1 });
  await assert.rejects(
    parseConfigText("mx: [unclosed"),
    (e) => e instanceof ConfigError && /neither valid JSON nor YAML/.test(e.message),
  );
});

Deno.test("config: validation errors name the key", async () => {
  const cases: [unknown, RegExp][] = [
    ["- a\n- b", /^config must be a mapping/],
    [{ host: "localhost:8080" }, /^mx is required$/],
    [{ mx: "10.0.0.1" }, /^mx is required$/],
    [{ mx: {} }, /^mx must name at least one MX$/],
    [{ mx: { login: "a", password: "b" } }, /^mx\.addr is required$/],
    [{ mx: { addr: "10.0.0.1", password: "b" } }, /^mx\.login is required$/],
    [{ mx: { dev: { login: "a" } } }, /^mx\.dev\.addr is required$/],
    [{ mx: { dev: "10.0.0.1" } }, /^mx\.dev must be an object$/],
    [{ mx: { "a b": MX } }, /^mx\.a b: name may use/],
    [{ mx: { ...MX, addr: "10.0.0.1:99999" } }, /^mx\.addr: bad address/],
    [{ mx: { ...MX, addr: "10.0.0.1:0" } }, /^mx\.addr: bad address/],
    [{ mx: { ...MX, addr: "10.0.0.1:http" } }, /^mx\.addr: bad address/],
    [{ mx: { dev: { ...MX, addr: ":7778" } } }, /^mx\.dev\.addr: bad address/],
    [{ mx: { ...MX, login: ["x"] } }, /^mx\.login must be a string$/],
    [{ mx: { ...MX, tls: "yes" } }, /^mx\.tls must be an object$/],
    [{ mx: MX, tokenTtl: "3600" }, /^tokenTtl must be a number >= 60$/],
    [{ mx: MX, tokenTtl: 10 }, /^tokenTtl must be a number >= 60$/],
    [{ mx: MX, tokenTtl: 90.5 }, /^tokenTtl must be whole seconds$/],
    [{ mx: MX, requestTimeoutMs: 5 }, /^requestTimeoutMs must be a number >= 100$/],
    [{ mx: MX, flexMx: "other" }, /^flexMx: no MX named "other"$/],
    [{ mx: MX, tls: "cert.pem" }, /^tls must be an object/],
    [{ mx: MX, tls: { cert: "c.pem" } }, /^tls\.key is required$/],
    [{ mx: MX, acme: "yes" }, /^acme must be an object$/],
    [{ mx: MX, acme: { httpPort: 0 } }, /^acme\.httpPort must be a port number 1-65535$/],
    [{ mx: MX, acme: { httpsPort: "443" } }, /^acme\.httpsPort must be a port number/],
    [{ mx: MX, connectTimeoutMs: 5 }, /^connectTimeoutMs must be a number >= 100$/],
  ];
  for (const [raw, re] of cases) {
    const value = typeof raw === "string" ? await parseConfigText(raw) : raw;
    assertConfigError(() => normalizeConfig(value, "."), re, JSON.stringify(raw));
  }
  // The same through a file (YAML), and a file that cannot be read.
  await withTempFile("bad.yaml", "host: x\nmx: {addr: 10.0.0.1:70000, login: a}\n", async (p) => {
    await assert.rejects(loadConfigFile(p), /mx\.addr: bad address "10\.0\.0\.1:70000"/);
  });
  await assert.rejects(
    loadConfigFile("/nonexistent/mxflex.yaml"),
    (e) =>
      e instanceof ConfigError && /cannot read config \/nonexistent\/mxflex\.yaml/.test(e.message),
  );
});

Deno.test("config: mistyped keys: refused in tls, mx….tls and acme, warned of elsewhere", async () => {
  // Keys this project added are checked like rateLimits: a typo in `fingerprint` must not
  // quietly mean trust on first use, one in `directoryUrl` not the production CA.
  const refused: [unknown, RegExp][] = [
    [{ mx: { ...MX, tls: { fingerprnt: "AB:CD" } } }, /^mx\.tls\.fingerprnt: unknown key/],
    [{ mx: { dev: { ...MX, tls: { CA: "ca.pem" } } } }, /^mx\.dev\.tls\.CA: unknown key/],
    [{ mx: MX, acme: { directoryURL: "https://x" } }, /^acme\.directoryURL: unknown key/],
    [{ mx: MX, tls: { cert: "c", key: "k", chain: "x" } }, /^tls\.chain: unknown key/],
  ];
  for (const [raw, re] of refused) {
    assertConfigError(() => normalizeConfig(raw, "."), re, JSON.stringify(raw));
  }
  // Top-level and MX-entry keys: the Go originals ignored unknown ones, so they still load,
  // with a warning naming the key (and the key meant, when only the case differs).
  const cfg = normalizeConfig({
    mx: { dev: { ...MX, pasword: "x" } },
    tokenTTL: 60,
    trustedProxy: ["127.0.0.1"],
  }, ".");
  assert.equal(cfg.tokenTtl, 3600);
  assert.deepEqual(cfg.warnings, [
    "config: tokenTTL: unknown key, ignored (did you mean tokenTtl?)",
    `config: trustedProxy: unknown key, ignored (known: ${CONFIG_KEYS.join(", ")})`,
    "config: mx.dev.pasword: unknown key, ignored (known: addr, login, password, tls)",
  ]);
  // The seeds' files and the examples load without a warning.
  for (const text of [SEED_FLEX_YAML, SEED_PROXY_JSON]) {
    assert.deepEqual(normalizeConfig(await parseConfigText(text), ".").warnings, []);
  }
  for (const name of ["mxflex.yaml", "mxproxy.json"]) {
    const cfg = await loadConfigFile(new URL(`../config/${name}`, import.meta.url).pathname);
    assert.deepEqual(cfg.warnings, [], name);
  }
});

Deno.test("main: an unknown config key is a WARN line at start-up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mxflex-config-" });
  await Deno.writeTextFile(
    `${dir}/mxflex.json`,
    JSON.stringify({ host: "127.0.0.1:0", mx: { addr: "127.0.0.1:1", login: "s" }, tokenTTL: 60 }),
  );
  const p = Program.start("main.ts", ["-config", `${dir}/mxflex.json`, "-db", `${dir}/kv.db`]);
  try {
    await p.waitForLine(/listening on/);
    assert.match(
      p.stderr,
      /WARN +config: tokenTTL: unknown key, ignored \(did you mean tokenTtl\?\)/,
    );
    p.kill("SIGTERM");
    assert.equal((await p.status).code, 0, p.output());
  } finally {
    p.kill("SIGKILL");
    await p.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: defaults and optional keys", () => {
  const cfg = normalizeConfig({
    mx: { a: { addr: "[::1]:7000", login: "s" }, b: { addr: "mx.example.com", login: "t" } },
    flexMx: "b",
    tokenTtl: 600,
    db: "data/kv.db",
    tls: { cert: "c.pem", key: "k.pem" },
    acme: {
      email: "ops@example.com",
      directoryUrl: "https://acme-staging-v02.api.letsencrypt.org/directory",
      httpPort: 8080,
      httpsPort: 8443,
    },
    connectTimeoutMs: 2500,
  }, "/etc/mxflex");
  assert.deepEqual(cfg.mx.map((m) => [m.name, m.hostname, m.port]), [
    ["a", "::1", 7000],
    ["b", "mx.example.com", 7778],
  ]);
  assert.equal(cfg.flexMx, "b");
  assert.equal(cfg.host, "localhost:8080");
  assert.equal(cfg.tokenTtl, 600);
  assert.equal(cfg.db, "data/kv.db");
  assert.deepEqual(cfg.tls, { cert: "c.pem", key: "k.pem" });
  assert.equal(cfg.acme.directoryUrl, "https://acme-staging-v02.api.letsencrypt.org/directory");
  assert.equal(cfg.acme.cacheDir, undefined);
  assert.deepEqual([cfg.acme.httpPort, cfg.acme.httpsPort], [8080, 8443]);
  assert.equal(cfg.connectTimeoutMs, 2500);
  assert.equal(normalizeConfig({ mx: MX }, ".").connectTimeoutMs, 5000, "default <= 10 s");
  assert.equal(cfg.baseDir, "/etc/mxflex");
});

Deno.test("config: environment overrides (Deploy, containers)", async () => {
  const env = (m: Record<string, string>) => (k: string) => m[k];
  const cfg = applyEnv(
    normalizeConfig(await parseConfigText(SEED_FLEX_YAML), "."),
    env({
      MXFLEX_HOST: "flex.example.com",
      MXFLEX_MX_ADDR: "[2001:db8::5]:7779",
      MXFLEX_MX_LOGIN: "other",
      MXFLEX_MX_PASSWORD: "s3cret",
      MXFLEX_TOKEN_TTL: "7200",
      MXFLEX_DB: "https://api.deno.com/databases/x/connect",
    }),
  );
  assert.equal(cfg.host, "flex.example.com");
  assert.deepEqual([cfg.mx[0].hostname, cfg.mx[0].port], ["2001:db8::5", 7779]);
  assert.equal(cfg.mx[0].login, "other");
  assert.equal(cfg.mx[0].password, "s3cret");
  assert.equal(cfg.tokenTtl, 7200);
  assert.equal(cfg.db, "https://api.deno.com/databases/x/connect");

  // No variables: nothing changes.
  const same = applyEnv(normalizeConfig(await parseConfigText(SEED_FLEX_YAML), "."), env({}));
  assert.deepEqual(same, normalizeConfig(await parseConfigText(SEED_FLEX_YAML), "."));

  // Several MX: only the Flex API's MX is overridden.
  const multi = applyEnv(
    normalizeConfig({ mx: { a: MX, b: MX }, flexMx: "b" }, "."),
    env({ MXFLEX_MX_ADDR: "10.9.9.9", MXFLEX_MX_LOGIN: "flex" }),
  );
  assert.deepEqual(multi.mx.map((m) => [m.name, m.hostname, m.login]), [
    ["a", "10.0.0.1", "server"],
    ["b", "10.9.9.9", "flex"],
  ]);

  const fresh = () => normalizeConfig({ mx: MX }, ".");
  assertConfigError(
    () => applyEnv(fresh(), env({ MXFLEX_MX_ADDR: "10.0.0.1:0" })),
    /^MXFLEX_MX_ADDR: /,
  );
  for (const ttl of ["30", "abc", "90.5"]) {
    assertConfigError(
      () => applyEnv(fresh(), env({ MXFLEX_TOKEN_TTL: ttl })),
      /^MXFLEX_TOKEN_TTL /,
    );
  }
});

Deno.test("main: parseFlags takes one or two dashes, `-flag value` and `-flag=value`", () => {
  const base = {
    csta: false,
    debug: false,
    logFormat: "text",
    help: false,
    version: false,
    instances: 1,
    reusePort: false,
  };
  assert.deepEqual(parseFlags([]), base);
  for (
    const args of [
      ["-config", "a.yaml"],
      ["--config", "a.yaml"],
      ["-config=a.yaml"],
      ["--config=a.yaml"],
    ]
  ) {
    assert.deepEqual(parseFlags(args), { ...base, config: "a.yaml" }, args.join(" "));
  }
  assert.deepEqual(
    parseFlags([
      "-host",
      "localhost:8080",
      "--db=x.db",
      "-csta",
      "--debug",
      "-logflag",
      "64",
      "--log-format=json",
    ]),
    {
      ...base,
      host: "localhost:8080",
      db: "x.db",
      csta: true,
      debug: true,
      logflag: 64,
      logFormat: "json",
    },
  );
  // A value may itself start with "=" or contain one.
  assert.equal(parseFlags(["-config=dir/a=b.yaml"]).config, "dir/a=b.yaml");
  assert.equal(parseFlags(["-debug=false", "-csta=true"]).debug, false);
  assert.equal(parseFlags(["-csta=true"]).csta, true);
  assert.equal(parseFlags(["--help"]).help, true);
  assert.equal(parseFlags(["-h"]).help, true);
  assert.equal(parseFlags(["-version"]).version, true);
  assert.throws(() => parseFlags(["-nope"]), /unknown flag -nope/);
  assert.throws(() => parseFlags(["-config"]), /flag -config needs a value/);
  assert.throws(() => parseFlags(["config.yaml"]), /unexpected argument/);
  assert.throws(() => parseFlags(["-log-format", "xml"]), /-log-format is text or json/);
  assert.equal(parseFlags(["--instances", "4"]).instances, 4);
  assert.equal(parseFlags(["-reuse-port"]).reusePort, true);
  for (const n of ["0", "1.5", "x", "65"]) {
    assert.throws(() => parseFlags(["-instances", n]), /-instances is a whole number/);
  }
});

Deno.test("main: a missing or invalid config returns 2 (in process)", async () => {
  assert.equal(await main(["-config", "/nonexistent"]), 2);
  assert.equal(await main(["--bogus"]), 2);
  await withTempFile("bad.yaml", "host: x\n", async (p) => {
    assert.equal(await main([`--config=${p}`]), 2);
  });
});

Deno.test("main: `-config /nonexistent` exits 2 with one error line and no stack trace", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      new URL("../main.ts", import.meta.url).pathname,
      "-config",
      "/nonexistent",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, stderr);
  assert.match(stderr, /ERROR config: cannot read config \/nonexistent/);
  assert.doesNotMatch(stderr, /^\s+at /m);
  assert.doesNotMatch(stderr, /Uncaught|Stack backtrace/);
  assert.equal(new TextDecoder().decode(out.stdout), "");
});

Deno.test("main: a config file that is not there names the working directory, exit 2", async () => {
  // `deno task start` runs in the repository, wherever the operator typed it: a relative
  // path that is not found says where it was looked for.
  const dir = await Deno.makeTempDir({ prefix: "mxflex-config-" });
  try {
    for (
      const [args, re] of [
        [
          [],
          /^.*ERROR config: no mxflex\.yaml or mxproxy\.json in (\S+) \(name a file with -config\)$/,
        ],
        [["-config", "office.yaml"], /^.*ERROR config: cannot read config office\.yaml in (\S+): /],
      ] as const
    ) {
      const p = Program.start("main.ts", [...args], { cwd: dir });
      const { code } = await p.status;
      assert.equal(code, 2, p.output());
      assert.equal(p.stderrLines.length, 1, p.output());
      const m = p.stderrLines[0].match(re);
      assert.ok(m, p.output());
      assert.equal(await Deno.realPath(m[1]), await Deno.realPath(dir));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: rateLimits defaults, overrides per sub-key, typos and bad values refused", () => {
  const base = { mx: { addr: "127.0.0.1", login: "a", password: "b" } };
  const d = normalizeConfig(base, ".").rateLimits;
  assert.deepEqual(d, {
    loginAddress: { failures: 10, windowSeconds: 3600, blockSeconds: 900 },
    address: { failures: 100, windowSeconds: 3600, blockSeconds: 3600 },
    login: { failures: 100, windowSeconds: 86400, delaySeconds: 60, maxDelaySeconds: 3600 },
    knownAddressDays: 30,
    streams: { perToken: 10, perUser: 50 },
  });
  const r = normalizeConfig({
    ...base,
    rateLimits: { loginAddress: { failures: 5 }, knownAddressDays: 7, streams: { perUser: 4 } },
  }, ".").rateLimits;
  assert.deepEqual(r.loginAddress, { failures: 5, windowSeconds: 3600, blockSeconds: 900 });
  assert.equal(r.knownAddressDays, 7);
  assert.deepEqual(r.streams, { perToken: 10, perUser: 4 });
  const bad: [unknown, RegExp][] = [
    [{ loginAdress: {} }, /rateLimits\.loginAdress: unknown key/],
    [{ login: { failure: 3 } }, /rateLimits\.login\.failure: unknown key/],
    [{ address: { failures: 0 } }, /rateLimits\.address\.failures must be a whole number >= 1/],
    [{ streams: { perToken: 1.5 } }, /rateLimits\.streams\.perToken must be a whole number/],
    [{ knownAddressDays: "30" }, /rateLimits\.knownAddressDays must be a whole number/],
    [{ streams: [] }, /rateLimits\.streams must be an object/],
    ["strict", /rateLimits must be an object/],
  ];
  for (const [rateLimits, re] of bad) {
    assert.throws(
      () => normalizeConfig({ ...base, rateLimits }, "."),
      (e: Error) => e instanceof ConfigError && re.test(e.message),
      JSON.stringify(rateLimits),
    );
  }
});
