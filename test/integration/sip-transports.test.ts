/**
 * Transports and media security of the native core: SIP over TCP and TLS (a self-signed
 * certificate made at test time with openssl), and SRTP, between two accounts of the agent.
 */
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logging/logger';
import { loadNativeBinding } from '../../src/native/binding';
import { UserAgent as UserAgentClass } from '../../src/sip/UserAgent';
import { runCommand, useHarnessCleanup } from '../helpers/proc';
import { tmpDir } from '../helpers/fixtures';
import { goertzel } from '../helpers/audio-analysis';
import { PcmCollector, until } from '../helpers/agent';
import { sine } from '../helpers/tone';
import type { UserAgent } from '../../src/sip/UserAgent';
import type { SipCall } from '../../src/sip/SipCall';

jest.setTimeout(60_000);
useHarnessCleanup();

let ua: UserAgent;
/** Every log line of the agent, SIP messages included (PJSIP log level 5). */
const logLines: string[] = [];

beforeAll(async () => {
  const dir = await tmpDir('sip-tls-');
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  await runCommand('openssl', 'openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { timeoutMs: 20_000 });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) logLines.push(l);
      done();
    },
  });
  ua = await UserAgentClass.start(
    loadNativeBinding(),
    {
      udp: { bindAddress: '127.0.0.1', port: 0 },
      tcp: { bindAddress: '127.0.0.1', port: 0 },
      // TLS 1.3 only: what sip.transports.tls.method: tlsv1.3 asks for (checked against openssl below).
      tls: { bindAddress: '127.0.0.1', port: 0, certFile: cert, privKeyFile: key, verifyServer: false, method: 'tlsv1.3' },
      pjLogLevel: 5,
      media: { rtpBindAddress: '127.0.0.1', clockRate: 8000, codecs: ['PCMU'], srtp: 'mandatory', srtpSecureSignaling: 0 },
    },
    createLogger({ level: 'trace', destination: sink, pretty: false }),
  );
  await ua.addAccount({ uri: 'sip:agent@127.0.0.1', isDefault: true });
});

afterAll(async () => {
  await ua?.close();
});

async function callOver(transport: 'tcp' | 'tls'): Promise<void> {
  const from = await ua.addAccount({ uri: `sip:${transport}-caller@127.0.0.1`, transport });
  const incoming = ua.waitFor('incomingCall', 10_000).then(([c]) => c as SipCall);
  const addr = ua.transports[transport];
  const out = await ua.call(from, `sip:agent@${addr};transport=${transport}`);
  const inbound = await incoming;
  expect(inbound.header('Via')).toContain(transport.toUpperCase());
  const heard = new PcmCollector(inbound);
  await inbound.answer();
  await out.waitForState('confirmed', 10_000);
  out.writeAudio(sine(1200, 1000, 8000));
  await until(() => goertzel(heard.pcm(), 0, heard.samples, 1200, 8000) > 0.05, 5000, `audio over ${transport}`);
  await out.hangup();
  await inbound.waitFor('close', 10_000).catch(() => undefined);
  await from.close();
}

test('calls over SIP/TCP carry audio, with SRTP mandatory', async () => {
  expect(ua.transports.tcp).toMatch(/^127\.0\.0\.1:\d+$/);
  await callOver('tcp');
});

test('calls over SIP/TLS carry audio, with SRTP mandatory (a plain RTP offer would fail with 488)', async () => {
  expect(ua.transports.tls).toMatch(/^127\.0\.0\.1:\d+$/);
  await callOver('tls');
});

test('SIP messages in the log show that SDES keys were exchanged, never the keys themselves', () => {
  const text = logLines.join('\n');
  // The offers and answers of the SRTP calls above went through the log at level 5.
  expect(text).toMatch(/a=crypto:\d+ [A-Z0-9_]+ inline:\[redacted\]/);
  // A key is 40 base64 characters after "inline:".
  expect(text).not.toMatch(/inline:[A-Za-z0-9+/]{30,}/);
});

test('the TLS transport takes the lowest version it was given: a TLS 1.2 client is refused, a TLS 1.3 client connects', async () => {
  const [host, port] = ua.transports.tls.split(':');
  const handshake = async (version: '-tls1_2' | '-tls1_3'): Promise<string> => {
    // stdin is /dev/null: s_client handshakes, reads end of input and leaves.
    const r = await runCommand('openssl', 'openssl', ['s_client', version, '-connect', `${host}:${port}`, '-brief'], {
      timeoutMs: 15_000,
      allowFailure: true,
    });
    return r.output;
  };
  expect(await handshake('-tls1_3')).toMatch(/Protocol version: TLSv1\.3/);
  expect(await handshake('-tls1_2')).not.toMatch(/Protocol version: TLSv1\.2/);
});
