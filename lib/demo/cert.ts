/**
 * Certificate of the demo MX simulator. This key is public on purpose: it only ever secures
 * the loopback connection between MXFlex and its own simulator in `deno task demo`, and
 * MXFlex trusts it by trust-on-first-use like any MX certificate. Never use it elsewhere.
 *
 * @module
 */

/** PEM certificate (EC P-256, CN mxsim.demo, SAN localhost and 127.0.0.1). */
export const DEMO_CERT = `-----BEGIN CERTIFICATE-----
MIIBmTCCAUCgAwIBAgIUYmPzprwKMbFe0oi7HQqMaTX7sQQwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKbXhzaW0uZGVtbzAgFw0yNjExMjMwOTAxMDJaGA8yMTI2MTAz
MDA5MDEwMlowFTETMBEGA1UEAwwKbXhzaW0uZGVtbzBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABC7C16A2eo7aMzYqsU/j1RBi7u1o+m1yZSAiOXMc1ZPZzqF5cHbb
j9kJu+8oXWu0Cs/mAVz9KzHZ2yIGAgZRJDGjbDBqMB0GA1UdDgQWBBSLqjAPZlVY
wNq03Tx65JUzNmhJ4zAfBgNVHSMEGDAWgBSLqjAPZlVYwNq03Tx65JUzNmhJ4zAa
BgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwDAYDVR0TAQH/BAIwADAKBggqhkjO
PQQDAgNHADBEAiB7F6zP0a3cl5zz10AAtsD936fo02mMIl7nkSvhcfz9ZAIgJfsP
1h0Xla7NoaRnaY2NkN8MyeAopicqVbWCiFAUtFc=
-----END CERTIFICATE-----
`;

/** PEM private key matching {@link DEMO_CERT}. */
export const DEMO_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqJoeczWPYCU86FbE
KgfHUH4ojpunJkIZNi56EwgUgZahRANCAAQuwtegNnqO2jM2KrFP49UQYu7taPpt
cmUgIjlzHNWT2c6heXB224/ZCbvvKF1rtArP5gFc/Ssx2dsiBgIGUSQx
-----END PRIVATE KEY-----
`;
