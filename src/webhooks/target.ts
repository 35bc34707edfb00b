// Where a webhook may post. The server runs inside the operator's network, so
// by default a hook may only reach public addresses: not loopback, private,
// link-local (169.254.169.254: cloud metadata), CGNAT, unspecified, multicast
// or reserved ones, nor those written IPv4-mapped or embedded in NAT64/6to4
// IPv6 addresses — else webhooks (and `ping`, which reports what happened)
// would let an admin token probe and reach internal services.
// CAIRN_WEBHOOK_ALLOW_PRIVATE=true lifts this. The check runs on the
// addresses the host name resolves to, and the connection then goes to the
// address checked (no second lookup that DNS rebinding could answer differently).
import dns from 'node:dns';
import net from 'node:net';

/** IPv4 ranges that are not public (IANA special-purpose registry, the ones that matter here). */
const BLOCKED_V4: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

const BLOCKED_V6: Array<[string, number]> = [
  ['::', 96], // unspecified, loopback, IPv4-compatible
  ['::ffff:0:0:0', 96], // IPv4-translated
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

function v4Hex(address: string): [string, string] {
  const n = address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  return [(n >>> 16).toString(16), (n & 0xffff).toString(16)];
}

function blockList(): net.BlockList {
  const list = new net.BlockList();
  for (const [address, prefix] of BLOCKED_V4) {
    list.addSubnet(address, prefix, 'ipv4'); // BlockList also matches these written ::ffff:a.b.c.d
    const [hi, lo] = v4Hex(address);
    list.addSubnet(`64:ff9b::${hi}:${lo}`, 96 + prefix, 'ipv6'); // NAT64 (RFC 6052)
    list.addSubnet(`2002:${hi}:${lo}::`, 16 + prefix, 'ipv6'); // 6to4
  }
  for (const [address, prefix] of BLOCKED_V6) list.addSubnet(address, prefix, 'ipv6');
  return list;
}

const BLOCKED = blockList();

/** Whether an IP address is a public one a webhook may reach by default. */
export function isPublicAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 0) return false;
  return !BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** A webhook URL that may not be posted to; the message says why, and never what is listening there. */
export class WebhookTargetError extends Error {
  constructor(message: string, readonly kind: 'blocked' | 'unresolved') {
    super(message);
    this.name = 'WebhookTargetError';
  }
}

export interface WebhookTarget {
  url: URL;
  /** the address to connect to, checked */
  address: string;
  family: 4 | 6;
}

export type Lookup = (host: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: Lookup = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

/**
 * Resolves a webhook URL's host and checks every address it resolves to
 * (one non-public address refuses it: a name is not to be half internal).
 */
export async function resolveTarget(url: string, allowPrivate: boolean, lookup: Lookup = systemLookup): Promise<WebhookTarget> {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses = net.isIP(host) ? [{ address: host, family: net.isIP(host) }] : await lookup(host);
  } catch (err) {
    throw new WebhookTargetError(`cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'unresolved');
  }
  if (addresses.length === 0) throw new WebhookTargetError(`cannot resolve ${host}: no addresses`, 'unresolved');
  if (!allowPrivate && addresses.some((a) => !isPublicAddress(a.address))) {
    throw new WebhookTargetError(
      `${host} is or resolves to a loopback, private, link-local or otherwise non-public address; webhooks may only post to public addresses unless the server runs with CAIRN_WEBHOOK_ALLOW_PRIVATE=true`,
      'blocked',
    );
  }
  const first = addresses[0]!;
  return { url: parsed, address: first.address, family: first.family === 6 ? 6 : 4 };
}
