/**
 * The demo's push apps, backed by local mock gateways (`lib/push/mock_gateway.ts`) instead of
 * Apple and Google: an APNs app `com.xyzrd.PushTest` (token key, production and sandbox), a
 * PushKit (VoIP) app `com.mxflex.voipdemo` with the same key, and an FCM app
 * `com.mxflex.demo`. Keys are generated at start-up into a temporary directory, so
 * device-token registration answers 204 and incoming calls of a registered user are pushed,
 * all on loopback.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { MockApns, MockFcm, type RecordedRequest } from "../push/mock_gateway.ts";
import { DEMO_CERT, DEMO_KEY } from "./cert.ts";

/** The demo's APNs bundle id (the seed's example). */
export const DEMO_APNS_BUNDLE = "com.xyzrd.PushTest";
/** The demo's PushKit (VoIP) app: `incoming` goes to `<bundle>.voip`, follow-ups to the bundle. */
export const DEMO_VOIP_BUNDLE = "com.mxflex.voipdemo";
/** The demo's FCM app name. */
export const DEMO_FCM_APP = "com.mxflex.demo";

/** A running {@link startDemoPush}. */
export interface DemoPush {
  /** Config keys (`apnsKeys`, `fcm`, `pushEndpoints`) to merge into the server's config. */
  config: Record<string, unknown>;
  /** Stops the gateways and removes the generated keys. */
  close(): Promise<void>;
}

/**
 * Starts both mock gateways and writes the keys and trust file they need into a temporary
 * directory. `onPush` hears of every push a gateway receives (`"apns"` or `"fcm"`).
 *
 * @example
 * ```ts
 * const push = await startDemoPush((service) => console.log(`push via ${service}`));
 * const config = normalizeConfig({ ...base, ...push.config }, Deno.cwd());
 * ```
 */
export async function startDemoPush(
  onPush: (service: "apns" | "fcm", r: RecordedRequest) => void = () => {},
): Promise<DemoPush> {
  const dir = await Deno.makeTempDir({ prefix: "mxflex-demo-push-" });
  const apns = MockApns.start({ cert: DEMO_CERT, key: DEMO_KEY }, {
    onRequest: (r) => onPush("apns", r),
  });
  const fcm = MockFcm.start({
    onRequest: (r) => r.path.endsWith(":send") && onPush("fcm", r),
  });
  try {
    const ec = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
    ]);
    const rsa = await crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      true,
      ["sign"],
    );
    await Deno.writeTextFile(`${dir}/AuthKey_DEMO000001.p8`, await pkcs8(ec.privateKey), {
      mode: 0o600,
    });
    await Deno.writeTextFile(
      `${dir}/fcm-service-account.json`,
      JSON.stringify({
        type: "service_account",
        project_id: "mxflex-demo",
        client_email: "demo@mxflex-demo.iam.gserviceaccount.com",
        private_key: await pkcs8(rsa.privateKey),
        token_uri: fcm.oauthUrl,
      }),
      { mode: 0o600 },
    );
    await Deno.writeTextFile(`${dir}/demo-ca.pem`, DEMO_CERT);
  } catch (err) {
    await Promise.all([apns.close(), fcm.close()]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
  return {
    config: {
      apnsKeys: [{
        key: `${dir}/AuthKey_DEMO000001.p8`,
        keyId: "DEMO000001",
        teamId: "DEMOTEAM01",
        topic: DEMO_APNS_BUNDLE,
      }, {
        key: `${dir}/AuthKey_DEMO000001.p8`,
        keyId: "DEMO000001",
        teamId: "DEMOTEAM01",
        topic: DEMO_VOIP_BUNDLE,
        voip: true,
      }],
      fcm: { [DEMO_FCM_APP]: `${dir}/fcm-service-account.json` },
      pushEndpoints: {
        apnsProduction: apns.url,
        apnsSandbox: apns.url,
        fcm: fcm.url,
        fcmOauth: fcm.oauthUrl,
        caFile: `${dir}/demo-ca.pem`,
      },
    },
    async close() {
      await Promise.all([apns.close(), fcm.close()]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A private key as PKCS#8 PEM. */
async function pkcs8(key: CryptoKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
  const b64 = Buffer.from(der).toString("base64").match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}
