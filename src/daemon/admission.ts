/**
 * Source admission: which addresses may start calls with the agent. Trusted are the addresses of
 * every account's registrar and outbound proxy (resolved at start and again as their DNS records
 * expire) and the address entries of `calls.allow`; `calls.allow: [any]` admits every source.
 * The result goes to the native message guard as its admission policy (403 for other sources,
 * 404 for a Request-URI user that names no account, per-source rate limits from `sip.limits`),
 * and the call manager checks the same set again for each call it is offered.
 */
import { BlockList, isIP } from 'node:net';
import { promises as dns } from 'node:dns';
import { addrSpec, compileAllowList, normalizeAddress, parseSipUri, type AllowList, type AgentConfig } from '../config';
import type { AdmissionPolicy } from '../sip';
import type { Logger } from '../logging/logger';

/** Re-resolve at least this often, and at most this often (seconds). */
const MIN_TTL_SEC = 30;
const MAX_TTL_SEC = 3600;
/** TTL assumed for names answered from /etc/hosts (no TTL there). */
const HOSTS_TTL_SEC = 300;
/** Longest wait for one host's addresses. */
const RESOLVE_TIMEOUT_MS = 5000;

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** The host of a SIP URI (`sip:pbx.example.com:5080;transport=tcp` -> `pbx.example.com`; IPv6 unbracketed). */
export function sipUriHost(uri: string): string | undefined {
  const h = parseSipUri(addrSpec(uri))?.host;
  return h?.startsWith('[') ? h.slice(1, -1) : h;
}

/** The user part of a SIP URI, unescaped ('' when none). */
export function sipUriUser(uri: string): string {
  const u = parseSipUri(addrSpec(uri))?.user;
  if (u === undefined) return '';
  const name = u.split(':')[0]!;
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** The Request-URI users the accounts answer; empty (any) when an account has no user part. */
export function accountUsers(cfg: AgentConfig): string[] {
  const users = cfg.accounts.map((a) => sipUriUser(a.uri));
  return users.includes('') ? [] : [...new Set(users)];
}

/** A host resolved to addresses, with when to look again (seconds). */
export interface Resolved {
  addresses: string[];
  ttlSec: number;
}

/** Resolve `host` to its IPv4 and IPv6 addresses with their TTL (falls back to the system resolver). */
export async function resolveHost(host: string): Promise<Resolved> {
  if (isIP(host)) return { addresses: [host], ttlSec: MAX_TTL_SEC };
  const [v4, v6] = await Promise.allSettled([dns.resolve4(host, { ttl: true }), dns.resolve6(host, { ttl: true })]);
  const recs = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
  if (recs.length > 0) {
    const ttl = Math.min(...recs.map((r) => r.ttl));
    return { addresses: recs.map((r) => r.address), ttlSec: clampTtl(ttl) };
  }
  // Names from /etc/hosts (localhost, a static PBX entry) are not in DNS.
  const all = await dns.lookup(host, { all: true });
  return { addresses: all.map((a) => a.address), ttlSec: HOSTS_TTL_SEC };
}

function clampTtl(ttl: number): number {
  return Math.min(MAX_TTL_SEC, Math.max(MIN_TTL_SEC, Number.isFinite(ttl) ? ttl : MIN_TTL_SEC));
}

/** Where trust comes from: the host of each registrar and proxy, with the config path naming it. */
export function trustedHosts(cfg: AgentConfig): { host: string; path: string }[] {
  const out: { host: string; path: string }[] = [];
  cfg.accounts.forEach((a, i) => {
    for (const key of ['registrar', 'proxy'] as const) {
      const uri = a[key];
      const host = uri ? sipUriHost(uri) : undefined;
      if (host && !out.some((o) => o.host.toLowerCase() === host.toLowerCase())) out.push({ host, path: `accounts[${i}].${key}` });
    }
  });
  return out;
}

/** The sink the policy goes to (the user agent). */
export interface AdmissionTarget {
  setAdmission(policy: AdmissionPolicy): void;
}

/**
 * Holds the latest policy until the user agent exists (it is passed to UserAgent.start, so it is
 * in force from the first packet), then forwards every change to it.
 */
export class AdmissionRelay implements AdmissionTarget {
  policy: AdmissionPolicy | undefined;
  #ua: AdmissionTarget | undefined;
  setAdmission(policy: AdmissionPolicy): void {
    this.policy = policy;
    this.#ua?.setAdmission(policy);
  }
  attach(ua: AdmissionTarget): void {
    this.#ua = ua;
    if (this.policy) ua.setAdmission(this.policy);
  }
}

/** Options of {@link SourceAdmission}. */
export interface SourceAdmissionOptions {
  target: AdmissionTarget;
  log: Logger;
  /** Host resolver (tests pass their own). */
  resolve?: (host: string) => Promise<Resolved>;
}

/**
 * Keeps the trusted source set current and the native policy in step with it and the config.
 * A host that fails to resolve keeps its last addresses and is retried after MIN_TTL_SEC.
 */
export class SourceAdmission {
  readonly #target: AdmissionTarget;
  readonly #log: Logger;
  readonly #resolve: (host: string) => Promise<Resolved>;
  #cfg: AgentConfig | undefined;
  #allow: AllowList = compileAllowList([]);
  #hosts: { host: string; path: string }[] = [];
  readonly #resolved = new Map<string, string[]>();
  #trusted = new BlockList();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #generation = 0;

  constructor(o: SourceAdmissionOptions) {
    this.#target = o.target;
    this.#log = o.log;
    this.#resolve = o.resolve ?? resolveHost;
  }

  /** Apply `cfg` (start and reload): resolve the trusted hosts, then set the native policy. */
  async configure(cfg: AgentConfig): Promise<void> {
    this.#cfg = cfg;
    this.#allow = compileAllowList(cfg.calls.allow);
    const hosts = trustedHosts(cfg);
    const changed = hosts.map((h) => h.host).join() !== this.#hosts.map((h) => h.host).join();
    this.#hosts = hosts;
    if (changed) {
      for (const k of [...this.#resolved.keys()]) if (!hosts.some((h) => h.host === k)) this.#resolved.delete(k);
      await this.#refresh();
    } else {
      this.#apply();
    }
    if (!this.#allow.allowAll && hosts.length === 0 && this.#allow.addresses.length === 0 && !this.#allow.hasUriPatterns) {
      this.#log.warn('no caller can reach the agent: no account has a registrar or proxy and calls.allow is empty; add the addresses of your PBX or trunk to calls.allow');
    }
  }

  /** True when calls from `address` are admitted by source (a trusted address, an allowed one, or any). */
  trusts(address: string | undefined): boolean {
    if (this.#allow.allowAll) return true;
    if (!address) return false;
    const a = normalizeAddress(address);
    const fam = isIP(a);
    return fam !== 0 && this.#trusted.check(a, fam === 4 ? 'ipv4' : 'ipv6');
  }

  /** The registrar and proxy addresses currently trusted. */
  resolvedAddresses(): string[] {
    return [...new Set([...this.#resolved.values()].flat())];
  }

  /** Stop re-resolving. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #refresh(): Promise<void> {
    const gen = ++this.#generation;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    let nextSec = MAX_TTL_SEC;
    await Promise.all(
      this.#hosts.map(async ({ host, path }) => {
        try {
          // A dead DNS server must not hold up the start (or a reload) for long.
          const r = await withTimeout(this.#resolve(host), RESOLVE_TIMEOUT_MS, `no answer within ${RESOLVE_TIMEOUT_MS} ms`);
          const before = this.#resolved.get(host);
          this.#resolved.set(host, r.addresses);
          if (before && before.join() !== r.addresses.join()) this.#log.info({ host, addresses: r.addresses }, `trusted source ${host} now resolves to ${r.addresses.join(', ')} [${path}]`);
          nextSec = Math.min(nextSec, r.ttlSec);
        } catch (err) {
          const kept = this.#resolved.get(host);
          this.#log.warn(
            { host, err: (err as Error).message },
            `cannot resolve ${host} [${path}]: ${kept ? `keeping ${kept.join(', ')}` : 'calls from it are not admitted until it resolves'}; retrying in ${MIN_TTL_SEC} s`,
          );
          nextSec = Math.min(nextSec, MIN_TTL_SEC);
        }
      }),
    );
    if (this.#closed || gen !== this.#generation) return;
    this.#apply();
    if (this.#hosts.some((h) => !isIP(h.host))) {
      this.#timer = setTimeout(() => void this.#refresh(), nextSec * 1000);
      this.#timer.unref();
    }
  }

  #apply(): void {
    const cfg = this.#cfg;
    if (!cfg) return;
    const trusted = [...this.resolvedAddresses(), ...this.#allow.addresses];
    const list = new BlockList();
    for (const t of trusted) {
      const [addr, prefix] = t.split('/') as [string, string | undefined];
      const fam = isIP(addr);
      if (fam === 0) continue;
      list.addSubnet(addr, prefix === undefined ? (fam === 4 ? 32 : 128) : Number(prefix), fam === 4 ? 'ipv4' : 'ipv6');
    }
    this.#trusted = list;
    const l = cfg.sip.limits;
    this.#target.setAdmission({
      anySource: this.#allow.allowAll,
      fromPatterns: this.#allow.hasUriPatterns,
      trusted,
      users: accountUsers(cfg),
      invitesPerSec: l.invitesPerSecond,
      inviteBurst: l.inviteBurst,
      requestsPerSec: l.requestsPerSecond,
      requestBurst: l.requestBurst,
      retryAfterSec: l.retryAfterSec,
      logIntervalSec: l.logIntervalSec,
    });
  }
}
