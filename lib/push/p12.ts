/**
 * Reads an Apple push certificate from a PKCS#12 file (mx-protocol §6.7): the private key and
 * certificate as PEM (for `Deno.createHttpClient`), the topic (bundle id) from the subject's
 * UID attribute and the environments from Apple's private extensions.
 *
 * Deno has no PKCS#12 reader, so this uses node-forge (which handles both the legacy
 * 3DES/SHA-1 files Keychain Access exports and OpenSSL 3's AES/PBKDF2 defaults).
 *
 * Multi-topic certificates (extension 1.2.840.113635.100.6.3.6): the original rejected them.
 * MXFlex **accepts** them, because every "Apple Push Notification service SSL (Sandbox &
 * Production)" certificate Apple has issued since 2015 carries that extension, so rejecting
 * it would reject all current certificates. The topic stays the UID (what clients register
 * with, as before); the listed topics are exposed so a VoIP sender can check that
 * `<bundle>.voip` is allowed.
 *
 * @module
 */
import forge from "node-forge";

/** Subject attribute holding the bundle id. */
const OID_UID = "0.9.2342.19200300.100.1.1";
/** Apple: certificate valid for the development (sandbox) gateway. */
const OID_APNS_DEVELOPMENT = "1.2.840.113635.100.6.3.1";
/** Apple: certificate valid for the production gateway. */
const OID_APNS_PRODUCTION = "1.2.840.113635.100.6.3.2";
/** Apple: list of topics (bundle id, `.voip`, `.complication`) of a universal certificate. */
const OID_APNS_TOPICS = "1.2.840.113635.100.6.3.6";

/** What an APNs PKCS#12 file yields. */
export interface ApnsCertificate {
  /** Private key, PEM (PKCS#1 RSA as forge writes it). */
  keyPem: string;
  /** Leaf certificate, PEM. */
  certPem: string;
  /** Bundle id from the subject UID. */
  topic: string;
  /** Gateways the certificate may use; `["production", "sandbox"]` when it says neither. */
  environments: Array<"production" | "sandbox">;
  /** Topics listed by the multi-topic extension (empty when absent). */
  topics: string[];
  /** Certificate expiry, for operators' warnings. */
  notAfter: Date;
}

// node-forge ships no types; these are the few shapes used here.
interface ForgeExtension {
  id: string;
  value: string;
}
interface ForgeCert {
  subject: { getField(sel: { type: string }): { value: string } | null };
  extensions: ForgeExtension[];
  validity: { notBefore: Date; notAfter: Date };
}
interface ForgeBag {
  cert?: ForgeCert;
  key?: unknown;
}
interface ForgeAsn1 {
  tagClass: number;
  type: number;
  value: string | ForgeAsn1[];
}

/**
 * The file is not a readable APNs certificate (bad password, no key, no UID, expired).
 *
 * @example
 * ```ts
 * try {
 *   readApnsP12(der, "wrong password");
 * } catch (err) {
 *   if (err instanceof P12Error) console.error(err.message);
 * }
 * ```
 */
export class P12Error extends Error {
  /** @param message what is wrong, without secrets */
  constructor(message: string) {
    super(message);
    this.name = "P12Error";
  }
}

/**
 * Decodes a PKCS#12 file.
 *
 * @param der the file's bytes
 * @param password the file's password (never logged)
 * @param now clock for the validity check (tests)
 * @throws {P12Error} when the file cannot be used
 *
 * @example
 * ```ts
 * const c = readApnsP12(await Deno.readFile("push-cert.p12"), "password");
 * c.topic; // "com.xyzrd.PushTest"
 * ```
 */
export function readApnsP12(der: Uint8Array, password: string, now = new Date()): ApnsCertificate {
  let bags: { certs: ForgeBag[]; keys: ForgeBag[] };
  try {
    const asn1 = forge.asn1.fromDer(forge.util.binary.raw.encode(der));
    const p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password);
    const pick = (type: string): ForgeBag[] => p12.getBags({ bagType: type })[type] ?? [];
    bags = {
      certs: pick(forge.pki.oids.certBag),
      // Keys come shrouded (normal) or, from some tools, as plain key bags.
      keys: [...pick(forge.pki.oids.pkcs8ShroudedKeyBag), ...pick(forge.pki.oids.keyBag)],
    };
  } catch (e) {
    // forge's messages mention the MAC/password but never echo the password itself.
    throw new P12Error(`cannot read PKCS#12: ${e instanceof Error ? e.message : String(e)}`);
  }
  const key = bags.keys.find((b) => b.key)?.key;
  if (!key) throw new P12Error("PKCS#12 has no private key (RSA keys only)");
  // The leaf is the certificate carrying a UID; Keychain exports may add the Apple CA chain.
  const cert = bags.certs.map((b) => b.cert).find((c) => c?.subject.getField({ type: OID_UID }));
  if (!cert) throw new P12Error("PKCS#12 has no certificate with a subject UID (bundle id)");
  const topic = cert.subject.getField({ type: OID_UID })!.value;
  const { notBefore, notAfter } = cert.validity;
  if (now < notBefore || now > notAfter) {
    throw new P12Error(
      `certificate for ${topic} is not valid now (${notBefore.toISOString()} – ${notAfter.toISOString()})`,
    );
  }
  const has = (oid: string) => cert.extensions.some((e) => e.id === oid);
  const environments: Array<"production" | "sandbox"> = [];
  if (has(OID_APNS_PRODUCTION)) environments.push("production");
  if (has(OID_APNS_DEVELOPMENT)) environments.push("sandbox");
  // Neither marker: an older or unusual certificate; let both gateways decide.
  if (environments.length === 0) environments.push("production", "sandbox");
  const topicsExt = cert.extensions.find((e) => e.id === OID_APNS_TOPICS);
  return {
    keyPem: forge.pki.privateKeyToPem(key),
    certPem: forge.pki.certificateToPem(cert),
    topic,
    environments,
    topics: topicsExt ? parseTopics(topicsExt.value) : [],
    notAfter,
  };
}

/**
 * The multi-topic extension is `SEQUENCE { UTF8String topic, SEQUENCE { UTF8String kind }, … }`;
 * collect the top-level strings. Unparsable content yields no topics rather than an error,
 * since the list is advisory.
 */
function parseTopics(derValue: string): string[] {
  try {
    const seq = forge.asn1.fromDer(derValue) as ForgeAsn1;
    if (!Array.isArray(seq.value)) return [];
    return seq.value
      .filter((n) => n.type === forge.asn1.Type.UTF8 && typeof n.value === "string")
      .map((n) => forge.util.decodeUtf8(n.value as string));
  } catch {
    return [];
  }
}
