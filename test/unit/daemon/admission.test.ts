import { SourceAdmission, accountUsers, sipUriHost, sipUriUser, trustedHosts, type Resolved } from '../../../src/daemon/admission';
import type { AdmissionPolicy } from '../../../src/sip';
import { createLogger } from '../../../src/logging/logger';
import { withBase, valid } from '../config/helpers';

const log = createLogger({ level: 'silent' });

describe('SIP URI parts', () => {
  it('takes the host of registrar and proxy URIs, IPv6 unbracketed', () => {
    expect(sipUriHost('sip:pbx.example.com')).toBe('pbx.example.com');
    expect(sipUriHost('sip:pbx.example.com:5080;transport=tcp')).toBe('pbx.example.com');
    expect(sipUriHost('<sip:proxy.example.com;lr>')).toBe('proxy.example.com');
    expect(sipUriHost('sips:100@[2001:db8::1]:5061')).toBe('2001:db8::1');
    expect(sipUriHost('not a uri')).toBeUndefined();
  });

  it('takes the user of account URIs, unescaped, without a password', () => {
    expect(sipUriUser('sip:agent@127.0.0.1')).toBe('agent');
    expect(sipUriUser('sip:%2B4930123@trunk.example.com')).toBe('+4930123');
    expect(sipUriUser('sip:bob:secret@h')).toBe('bob');
    expect(sipUriUser('sip:h')).toBe('');
  });

  it('lists the distinct registrar and proxy hosts with the key naming each', () => {
    const cfg = valid(
      withBase({
        accounts: [
          { uri: 'sip:1@a', registrar: 'sip:pbx.example.com', proxy: 'sip:sbc.example.com;lr' },
          { uri: 'sip:2@a', registrar: 'sip:PBX.example.com:5080' },
        ],
      }),
    );
    expect(trustedHosts(cfg)).toEqual([
      { host: 'pbx.example.com', path: 'accounts[0].registrar' },
      { host: 'sbc.example.com', path: 'accounts[0].proxy' },
    ]);
  });

  it("gives the guard every account's user once", () => {
    expect(accountUsers(valid(withBase({ accounts: [{ uri: 'sip:1@a' }, { uri: 'sip:2@a' }, { uri: 'sip:1@b' }] })))).toEqual(['1', '2']);
  });
});

describe('SourceAdmission', () => {
  function setup(answers: Record<string, Resolved | Error>) {
    const policies: AdmissionPolicy[] = [];
    const asked: string[] = [];
    const adm = new SourceAdmission({
      target: { setAdmission: (p) => policies.push(p) },
      log,
      resolve: async (host) => {
        asked.push(host);
        const a = answers[host];
        if (!a || a instanceof Error) throw a ?? new Error(`ENOTFOUND ${host}`);
        return a;
      },
    });
    return { adm, policies, asked, answers };
  }

  afterEach(() => jest.useRealTimers());

  it('trusts the resolved registrar and the calls.allow addresses, and tells the guard so', async () => {
    const { adm, policies } = setup({ 'pbx.example.com': { addresses: ['192.0.2.10', '2001:db8::10'], ttlSec: 300 } });
    await adm.configure(valid(withBase({ accounts: [{ uri: 'sip:100@pbx.example.com', registrar: 'sip:pbx.example.com' }], calls: { allow: ['198.51.100.0/24', 'sip:*@x'] } })));
    expect(adm.trusts('192.0.2.10')).toBe(true);
    expect(adm.trusts('::ffff:192.0.2.10')).toBe(true);
    expect(adm.trusts('2001:db8::10')).toBe(true);
    expect(adm.trusts('198.51.100.77')).toBe(true);
    expect(adm.trusts('192.0.2.11')).toBe(false);
    expect(adm.trusts(undefined)).toBe(false);
    expect(policies.at(-1)).toMatchObject({
      anySource: false,
      fromPatterns: true,
      trusted: ['192.0.2.10', '2001:db8::10', '198.51.100.0/24'],
      users: ['100'],
      invitesPerSec: 20,
      retryAfterSec: 5,
    });
    adm.close();
  });

  it('re-resolves when the shortest TTL runs out and follows the new address', async () => {
    jest.useFakeTimers();
    const { adm, answers, asked } = setup({ 'pbx.example.com': { addresses: ['192.0.2.10'], ttlSec: 60 } });
    await adm.configure(valid(withBase({ accounts: [{ uri: 'sip:1@a', registrar: 'sip:pbx.example.com' }] })));
    expect(adm.trusts('192.0.2.10')).toBe(true);
    answers['pbx.example.com'] = { addresses: ['192.0.2.20'], ttlSec: 60 };
    await jest.advanceTimersByTimeAsync(59_000);
    expect(asked).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(asked).toHaveLength(2);
    expect(adm.trusts('192.0.2.20')).toBe(true);
    expect(adm.trusts('192.0.2.10')).toBe(false);
    adm.close();
  });

  it('keeps the last addresses when a lookup fails, and retries sooner', async () => {
    jest.useFakeTimers();
    const { adm, answers, asked } = setup({ 'pbx.example.com': { addresses: ['192.0.2.10'], ttlSec: 3600 } });
    await adm.configure(valid(withBase({ accounts: [{ uri: 'sip:1@a', registrar: 'sip:pbx.example.com' }] })));
    answers['pbx.example.com'] = new Error('SERVFAIL');
    await jest.advanceTimersByTimeAsync(3600_000);
    expect(asked).toHaveLength(2);
    expect(adm.trusts('192.0.2.10')).toBe(true);
    answers['pbx.example.com'] = { addresses: ['192.0.2.30'], ttlSec: 3600 };
    await jest.advanceTimersByTimeAsync(30_000);
    expect(asked).toHaveLength(3);
    expect(adm.trusts('192.0.2.30')).toBe(true);
    adm.close();
  });

  it('does not wait more than 5 s for a host that gets no answer (it is retried in 30 s)', async () => {
    jest.useFakeTimers();
    const policies: AdmissionPolicy[] = [];
    let calls = 0;
    const adm = new SourceAdmission({
      target: { setAdmission: (p) => policies.push(p) },
      log,
      resolve: () => {
        calls += 1;
        return calls === 1 ? new Promise<Resolved>(() => undefined) : Promise.resolve({ addresses: ['192.0.2.40'], ttlSec: 300 });
      },
    });
    const configured = adm.configure(valid(withBase({ accounts: [{ uri: 'sip:1@a', registrar: 'sip:pbx.example.com' }] })));
    await jest.advanceTimersByTimeAsync(5000);
    await configured;
    expect(policies).toHaveLength(1);
    expect(adm.trusts('192.0.2.40')).toBe(false);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(adm.trusts('192.0.2.40')).toBe(true);
    adm.close();
  });

  it('admits any source only with calls.allow: [any]', async () => {
    const { adm, policies } = setup({});
    await adm.configure(valid(withBase({ calls: { allow: ['any'] } })));
    expect(adm.trusts('203.0.113.1')).toBe(true);
    expect(policies.at(-1)).toMatchObject({ anySource: true });
    await adm.configure(valid(withBase({ calls: { allow: [] } })));
    expect(adm.trusts('203.0.113.1')).toBe(false);
    expect(policies.at(-1)).toMatchObject({ anySource: false, trusted: [] });
    adm.close();
  });
});
