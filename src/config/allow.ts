/**
 * `calls.allow`: which callers may reach the agent besides the accounts' registrars and proxies.
 * An entry is a source address (IPv4/IPv6, optionally a CIDR), a caller URI pattern with `*` and
 * `?` wildcards (`sip:*@pbx.example.com`), or `any` (everyone). A call is admitted when its source
 * is trusted (a registrar or proxy address, see daemon/admission) or any entry matches; an empty
 * list admits only the trusted sources. URI patterns match the From URI, which a caller can forge:
 * only addresses are access control.
 */

import { BlockList, isIP } from 'node:net';
import { addrSpec } from './formats';

/** Check one `calls.allow` entry; returns a problem message or undefined. */
export function checkAllowPattern(p: string): string | undefined {
  if (p === ANY) return undefined;
  if (/^sips?:/i.test(p)) {
    return /^sips?:[^\s<>"]+$/i.test(p) ? undefined : `not a valid SIP URI pattern (got "${p}")`;
  }
  if (parseCidr(p)) return undefined;
  return `not a SIP URI pattern, IP address or CIDR (got "${p}"; expected e.g. sip:*@pbx.example.com, 192.0.2.0/24 or any)`;
}

/** What is known about a caller when admitting it. */
export interface CallerIdentity {
  /** From URI or the whole From value (`"A" <sip:a@b>;tag=1`). */
  uri: string;
  /** Source IP address of the INVITE, when known. */
  address?: string;
}

/** The entry that admits everyone. */
export const ANY = 'any';

/** A compiled allow-list. */
export interface AllowList {
  /** True when the list holds `any` (everyone is admitted). */
  readonly allowAll: boolean;
  /** The address entries (IPs and CIDRs, as written). */
  readonly addresses: readonly string[];
  /** True when the list has From URI patterns. */
  readonly hasUriPatterns: boolean;
  /** Whether this caller matches an entry. */
  allows(caller: CallerIdentity): boolean;
}

/**
 * Compile `calls.allow` entries (already validated by the config loader).
 * @throws TypeError on an entry that {@link checkAllowPattern} rejects.
 */
export function compileAllowList(patterns: readonly string[]): AllowList {
  const blocks = new BlockList();
  let hasAddress = false;
  const uriRes: RegExp[] = [];
  const addresses: string[] = [];
  for (const p of patterns) {
    const problem = checkAllowPattern(p);
    if (problem) throw new TypeError(`calls.allow: ${problem}`);
    if (p === ANY) continue;
    if (/^sips?:/i.test(p)) {
      uriRes.push(globToRegExp(p));
      continue;
    }
    const c = parseCidr(p)!;
    hasAddress = true;
    addresses.push(p);
    blocks.addSubnet(c.address, c.prefix, c.family);
  }
  const allowAll = patterns.includes(ANY);
  return {
    allowAll,
    addresses,
    hasUriPatterns: uriRes.length > 0,
    allows(caller: CallerIdentity): boolean {
      if (allowAll) return true;
      if (hasAddress && caller.address) {
        const a = normalizeAddress(caller.address);
        const fam = isIP(a);
        if (fam !== 0 && blocks.check(a, fam === 4 ? 'ipv4' : 'ipv6')) return true;
      }
      if (uriRes.length > 0) {
        const uri = stripParams(addrSpec(caller.uri));
        if (uriRes.some((re) => re.test(uri))) return true;
      }
      return false;
    },
  };
}

function parseCidr(p: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const slash = p.indexOf('/');
  const address = slash < 0 ? p : p.slice(0, slash);
  const fam = isIP(address);
  if (fam === 0) return undefined;
  const max = fam === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const s = p.slice(slash + 1);
    if (!/^\d{1,3}$/.test(s)) return undefined;
    prefix = Number(s);
    if (prefix > max) return undefined;
  }
  return { address, prefix, family: fam === 4 ? 'ipv4' : 'ipv6' };
}

/** An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) as plain IPv4. */
export function normalizeAddress(a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m ? m[1]! : a;
}

// URI parameters (`;transport=udp`) and headers are not part of who the caller is.
function stripParams(uri: string): string {
  const semi = uri.search(/[;?]/);
  return semi < 0 ? uri : uri.slice(0, semi);
}

function globToRegExp(glob: string): RegExp {
  // '?' is a wildcard here, so only ';' starts parameters in a pattern.
  const body = glob
    .split(';')[0]!
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  // The scheme and host are case-insensitive; so is the user part for the dial strings seen in practice.
  return new RegExp(`^${body}$`, 'i');
}
