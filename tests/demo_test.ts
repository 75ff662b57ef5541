/**
 * `deno task demo` as an operator runs it (a subprocess): it prints every demo user with their
 * password, its voicemails carry real WAV audio whose length matches the listed duration, and
 * device tokens register (204) with the local mock gateways, which then receive the pushes of
 * the demo's incoming calls. The printed curl examples are the ones README gives.
 */
import assert from "node:assert/strict";
import { defaultUsers } from "../lib/mxsim/mod.ts";
import { Program } from "./helpers/program.ts";

const README = Deno.readTextFileSync(new URL("../README.md", import.meta.url));

/** Reads a RIFF/WAVE header: format, channels, rate, bits and the audio's length in seconds. */
function wavInfo(b: Uint8Array) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ascii = (o: number, n: number) => String.fromCharCode(...b.subarray(o, o + n));
  assert.equal(ascii(0, 4), "RIFF");
  assert.equal(ascii(8, 4), "WAVE");
  assert.equal(ascii(12, 4), "fmt ");
  assert.equal(ascii(36, 4), "data");
  const rate = v.getUint32(24, true), bits = v.getUint16(34, true), ch = v.getUint16(22, true);
  const data = v.getUint32(40, true);
  assert.equal(data, b.length - 44, "data chunk covers the file");
  return {
    pcm: v.getUint16(20, true) === 1,
    ch,
    rate,
    bits,
    seconds: data / (rate * ch * bits / 8),
  };
}

Deno.test("demo: prints every user with their password, plays voicemail, registers push tokens", async () => {
  const p = Program.start("demo.ts", ["--port", "0", "--every", "1"]);
  try {
    await p.waitForLine(/^Press Ctrl-C to stop\.$/);
    const url = p.stdout.match(/web client: +(http:\/\/127\.0\.0\.1:\d+\/)/)![1];

    // Every user with an extension is listed with its password (generated ones as a range).
    const range = p.stdout.match(/user(\d+) … user(\d+) \/ (\S+) +(\d+)–(\d+)/)!;
    for (const u of defaultUsers()) {
      if (!u.ext) {
        assert.match(p.stdout, new RegExp(`server accounts .*${u.login} / ${u.password}`));
      } else if (u.login === `user${u.ext}`) {
        const ext = Number(u.ext);
        assert.ok(ext >= Number(range[1]) && ext <= Number(range[2]) && u.password === range[3]);
      } else {
        assert.match(
          p.stdout,
          new RegExp(`^ +${u.login} / ${u.password} +${u.ext} `, "m"),
          u.login,
        );
      }
    }

    const auth = { authorization: `Basic ${btoa("dmitry:secret")}` };
    const list = await (await fetch(`${url}mx/demo/voicemail`, { headers: auth })).json();
    assert.ok(list.voicemails.length >= 3, JSON.stringify(list));
    for (const vm of list.voicemails) {
      const res = await fetch(`${url}mx/demo/voicemail/${vm.id}`, { headers: auth });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "audio/wav");
      const info = wavInfo(new Uint8Array(await res.arrayBuffer()));
      assert.deepEqual([info.pcm, info.ch, info.rate, info.bits], [true, 1, 8000, 16]);
      assert.ok(Math.abs(info.seconds - vm.duration) <= 0.5, `${info.seconds} vs ${vm.duration}`);
      assert.ok(info.seconds >= 1, "real audio, not an empty file");
    }

    // The printed token curl, and the FCM app: both 204; then pushes reach the mock gateways.
    const curl = p.stdout.match(/-d '(\{"token":"[^']+\})' "([^"]+)"/)!;
    for (
      const [path, body] of [
        [curl[2].slice(url.length), curl[1]],
        ["mx/demo/token/fcm/com.mxflex.demo", '{"token":"demo-fcm-token-0123456789abcdef"}'],
      ]
    ) {
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body,
      });
      assert.equal(res.status, 204, `${path}: ${await res.text()}`);
    }
    // README's VoIP (PushKit) registration, as written there: 204, then `incoming` reaches
    // the mock gateway as a VoIP push to the PushKit token, the follow-up as an ordinary one.
    const voip = README.match(
      /curl -u \$U -H 'Content-Type: application\/json' \\\n\s+-d '(\{"token":"[^']+\})' \\\n\s+"\$URL\/([^"]+)"/,
    );
    assert.ok(voip, "README has the VoIP registration example");
    const res = await fetch(`${url}${voip[2]}`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: voip[1],
    });
    assert.equal(res.status, 204, `${voip[2]}: ${await res.text()}`);
    const pushKit = JSON.parse(voip[1]).token.slice(0, 8);
    await p.waitForLine(/demo: the mock APNs gateway received a push token="7C179108…"/);
    await p.waitForLine(/demo: the mock FCM gateway received a push token="demo-fcm…"/);
    await p.waitForLine(new RegExp(`received a VoIP push token="${pushKit}…"`));
    // The follow-up (answered) is an ordinary push to the alert token.
    const alert = JSON.parse(voip[1]).alertToken.slice(0, 8);
    await p.waitForLine(new RegExp(`gateway received a push token="${alert}…"`));
    assert.doesNotMatch(p.stderr, /WARN|ERROR|Uncaught/, p.output());
    p.kill("SIGTERM");
    assert.equal((await p.status).code, 0, p.output());
  } finally {
    p.kill("SIGKILL");
    await p.status;
  }
});
