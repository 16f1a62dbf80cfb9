import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far from a receiver's clock a timestamped signature's time may be, by default, for it to accept it. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** `X-Atelier-Signature`: `sha256=` and the hex HMAC-SHA256 of the exact body bytes, keyed by the secret. */
export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/**
 * `X-Atelier-Timestamped-Signature`: `t=<unix seconds>,sha256=<hex HMAC-SHA256 of "<t>.<body>">`. The
 * time of this delivery is signed with the body, so a receiver can refuse a delivery captured and
 * replayed later, which `X-Atelier-Signature` alone cannot tell from the real one.
 */
export function signTimestamped(body: string, secret: string, unixSeconds: number): string {
  const digest = createHmac('sha256', secret).update(`${unixSeconds}.${body}`, 'utf8').digest('hex');
  return `t=${unixSeconds},sha256=${digest}`;
}

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** What a receiver does: recompute the signature over the raw body and compare in constant time. */
export function verifySignature(body: string, secret: string, header: string | undefined): boolean {
  return header !== undefined && sameText(signBody(body, secret), header);
}

/**
 * What a receiver does with the timestamped signature: recompute it for the time it names, compare in
 * constant time, and accept it only if that time is within `toleranceSeconds` of its own clock.
 */
export function verifyTimestamped(
  body: string,
  secret: string,
  header: string | undefined,
  nowSeconds: number,
  toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS,
): boolean {
  const t = /^t=(\d{1,12}),sha256=[0-9a-f]{64}$/.exec(header ?? '')?.[1];
  if (header === undefined || t === undefined) return false;
  return (
    Math.abs(nowSeconds - Number(t)) <= toleranceSeconds && sameText(signTimestamped(body, secret, Number(t)), header)
  );
}
