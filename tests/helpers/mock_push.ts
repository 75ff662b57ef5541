/**
 * The mock push gateways of `lib/push/mock_gateway.ts` for tests: served with the fixture
 * certificate (`tests/fixtures/mx-cert.pem`, trusted through `pushEndpoints.caFile`), plus
 * `pushEndpoints` pointing at them and FCM error bodies.
 *
 * @module
 */
import {
  MockApns as GatewayApns,
  MockFcm as GatewayFcm,
  type MockOptions,
  type MockReply,
} from "../../lib/push/mock_gateway.ts";

export type { MockReply, RecordedRequest } from "../../lib/push/mock_gateway.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** The fixture CA/leaf certificate (PEM) clients must trust to reach {@link MockApns}. */
export const MOCK_TLS_CERT = Deno.readTextFileSync(new URL("mx-cert.pem", FIXTURES));
/** Path of {@link MOCK_TLS_CERT}, for `pushEndpoints.caFile`. */
export const MOCK_TLS_CERT_PATH = new URL("mx-cert.pem", FIXTURES).pathname;
const MOCK_TLS = {
  cert: MOCK_TLS_CERT,
  key: Deno.readTextFileSync(new URL("mx-key.pem", FIXTURES)),
};

/** Mock APNs gateway with the fixture certificate. */
export type MockApns = GatewayApns;
/** Mock APNs gateway with the fixture certificate. */
export const MockApns = {
  /** Starts a gateway on a free loopback port. */
  start: (o: MockOptions = {}): MockApns => GatewayApns.start(MOCK_TLS, o),
};

/** Mock FCM v1 API (plain HTTP, or HTTPS with the fixture certificate). */
export type MockFcm = GatewayFcm;
/** Mock FCM v1 API (plain HTTP, or HTTPS with the fixture certificate). */
export const MockFcm = {
  /** Starts the mock on a free loopback port; `tls` serves HTTPS with the fixture certificate. */
  start: (o: MockOptions & { tls?: boolean } = {}): MockFcm =>
    GatewayFcm.start({ ...o, tls: o.tls ? MOCK_TLS : undefined }),
};

/**
 * `pushEndpoints` pointing every push service at the mocks (one APNs mock for production
 * and sandbox), with the fixture certificate as `caFile`.
 */
export function mockEndpoints(apns: MockApns, fcm: MockFcm): Record<string, string> {
  return {
    apnsProduction: apns.url,
    apnsSandbox: apns.url,
    fcm: fcm.url,
    fcmOauth: fcm.oauthUrl,
    caFile: MOCK_TLS_CERT_PATH,
  };
}

/** An FCM error body as Google sends it. */
export function fcmError(
  code: number,
  status: string,
  errorCode?: string,
  field?: string,
): MockReply {
  const details: unknown[] = [];
  if (errorCode) {
    details.push({ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode });
  }
  if (field) {
    details.push({
      "@type": "type.googleapis.com/google.rpc.BadRequest",
      fieldViolations: [{ field }],
    });
  }
  return { status: code, body: { error: { code, message: status, status, details } } };
}
