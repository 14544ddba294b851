/**
 * How the native core reports bad input and SIP failures: TypeErrors naming the argument, SIP
 * failures keeping their status, InvalidStateError on a closed agent, and a port in use.
 */
import * as dgram from 'node:dgram';
import { startAgent } from '../helpers/agent';
import { freePort } from '../helpers/ports';
import { startKamailio } from '../helpers/kamailio';
import { useHarnessCleanup } from '../helpers/proc';
import { InvalidStateError } from '../../src/util/errors';
import type { UserAgent } from '../../src/sip/UserAgent';
import type { SipAccount } from '../../src/sip/SipAccount';

jest.setTimeout(60_000);
useHarnessCleanup();

let ua: UserAgent;
let acc: SipAccount;

beforeAll(async () => {
  ua = await startAgent();
  acc = await ua.addAccount({ uri: 'sip:agent@127.0.0.1', isDefault: true });
});

afterAll(async () => {
  await ua?.close();
});

test('bad arguments are TypeErrors that name the argument', async () => {
  // The addon throws the process's own TypeError (jest's sandbox has another realm's), so check the name.
  const err = await ua.call(acc, 'not a uri').catch((e: unknown) => e);
  expect((err as Error).name).toBe('TypeError');
  expect((err as Error).message).toMatch(/uri must be a SIP URI/);
  await expect(ua.call(acc, 'sip:x@127.0.0.1', { headers: { 'Bad Header': 'x' } })).rejects.toThrow(/not a valid SIP header/);
  await expect(ua.addAccount({ uri: '' })).rejects.toThrow(/idUri is required/);
});

test('a destination carrying URI headers (?Route=..., P-Asserted-Identity) is refused before anything is sent', async () => {
  const route = await ua.call(acc, 'sip:200@127.0.0.1?Route=%3Csip:evil.example.com;lr%3E').catch((e: unknown) => e);
  expect((route as Error).name).toBe('TypeError');
  expect((route as Error).message).toMatch(/must not carry headers/);
  const pai = await ua.call(acc, '<sip:200@127.0.0.1?P-Asserted-Identity=sip:ceo@example.com>').catch((e: unknown) => e);
  expect((pai as Error).message).toMatch(/must not carry headers/);
  expect(ua.calls).toHaveLength(0);
});

test('a call to a user the proxy does not know ends with 404, surfaced as the call end, not an exception', async () => {
  const kam = await startKamailio({ users: { someone: 'pw-someone' } });
  const out = await ua.call(acc, `sip:nobody@127.0.0.1:${kam.port}`);
  const [end] = await out.waitFor('ended', 10_000);
  expect(end.sipCode).toBe(404);
  expect(end.by).toBe('remote');
  await kam.stop();
});

test('a SIP port already in use fails start() with an error naming the transport, and the process lives on', async () => {
  const port = await freePort('udp');
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(port, '127.0.0.1', () => r()));
  try {
    // PJSIP is a process singleton: close the running agent before trying a second one.
    await ua.close();
    const err = await startAgent({ udp: { bindAddress: '127.0.0.1', port } }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(new RegExp(`start\\(\\) failed: udp transport on 127\\.0\\.0\\.1:${port}: Address already in use`));
  } finally {
    sock.close();
  }
  // The library is usable again afterwards.
  ua = await startAgent();
  acc = await ua.addAccount({ uri: 'sip:agent@127.0.0.1', isDefault: true });
  expect(ua.transports.udp).toMatch(/^127\.0\.0\.1:\d+$/);
});

test('actions on a closed agent are InvalidStateErrors', async () => {
  const other = ua;
  await other.close();
  await expect(other.addAccount({ uri: 'sip:late@127.0.0.1' })).rejects.toBeInstanceOf(InvalidStateError);
  ua = await startAgent();
});
