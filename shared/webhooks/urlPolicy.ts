import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * SSRF guard for webhook URLs, first line: at registration (and on PATCH) the host is resolved and every address
 * must be public. The second line is at delivery, where `request-filtering-agent` checks the address actually
 * connected to (see postWebhook.ts), so a DNS answer that changes after registration (DNS rebinding) is caught too.
 *
 * "Public" is ipaddr.js's `unicast` range — the same rule request-filtering-agent applies — which excludes
 * loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with the cloud metadata address, fe80::/10),
 * carrier-grade NAT (100.64/10), unspecified, multicast, reserved and IPv4-mapped IPv6 addresses.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  return ipaddr.parse(address).range() === 'unicast';
}

/** Cloud metadata services: refused even when private targets are allowed for local development. */
export const METADATA_ADDRESSES = ['169.254.169.254', 'fd00:ec2::254'];

export type WebhookUrlVerdict = { allowed: true } | { allowed: false; reason: string };

const LOOKUP_TIMEOUT_MS = 3000;

/**
 * Resolves the URL's host (DNS) and says whether PayFlow may send webhooks there. A host that does not resolve
 * now is allowed: it cannot be judged, and the delivery-time check refuses it should it later point inside.
 */
export async function checkWebhookUrlWithDns(url: string, allowPrivate: boolean): Promise<WebhookUrlVerdict> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (METADATA_ADDRESSES.includes(host)) return { allowed: false, reason: `${host} is a cloud metadata address` };
  if (allowPrivate) return { allowed: true };
  if (isIP(host)) {
    return isPublicAddress(host) ? { allowed: true } : { allowed: false, reason: `${host} is not a public address` };
  }
  let addresses: { address: string }[];
  try {
    addresses = await Promise.race([
      lookup(host, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('DNS lookup timed out')), LOOKUP_TIMEOUT_MS).unref()),
    ]);
  } catch {
    return { allowed: true };
  }
  const inside = addresses.find((a) => !isPublicAddress(a.address));
  return inside ? { allowed: false, reason: `${host} resolves to ${inside.address}, which is not a public address` } : { allowed: true };
}
