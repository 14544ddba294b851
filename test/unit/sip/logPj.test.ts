import { Writable } from 'node:stream';
import { createLogger } from '../../../src/logging/logger';
import { floodKey, logPj } from '../../../src/sip/UserAgent';
import { ReportLimiter } from '../../../src/util/ReportLimiter';

function capture(): { lines: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: createLogger({ level: 'info', destination, pretty: false }) };
}

describe('logPj', () => {
  it('maps PJSIP levels to pino levels, so level 4 chatter stays below the default info level', () => {
    const { lines, log } = capture();
    logPj(log, 1, 'sip_transport.c boom');
    logPj(log, 2, 'pjsua_acc.c careful');
    logPj(log, 3, 'pjsua_core.c started');
    logPj(log, 4, 'pjsua_call.c ....Call 1 state changed to CONFIRMED');
    logPj(log, 5, 'sip_endpoint.c .....detail');
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [50, 'sip_transport.c boom'],
      [40, 'pjsua_acc.c careful'],
      [30, 'pjsua_core.c started'],
    ]);
  });

  it('logs whole SIP messages (message logging on) at info, marked, instead of dropping them as debug', () => {
    const { lines, log } = capture();
    logPj(log, 4, 'pjsua_core.c .TX 512 bytes Request msg REGISTER/cseq=2 (tdta0x1) to UDP 127.0.0.1:5060:\nREGISTER sip:127.0.0.1 SIP/2.0\r\n');
    logPj(log, 4, 'pjsua_core.c .RX 330 bytes Response msg 200/REGISTER/cseq=2 (rdata0x1) from UDP 127.0.0.1:5060:\nSIP/2.0 200 OK\r\n');
    expect(lines.map((l) => [l.level, l.sipMessage, String(l.msg).split('\n')[0]])).toEqual([
      [30, true, 'pjsua_core.c .TX 512 bytes Request msg REGISTER/cseq=2 (tdta0x1) to UDP 127.0.0.1:5060:'],
      [30, true, 'pjsua_core.c .RX 330 bytes Response msg 200/REGISTER/cseq=2 (rdata0x1) from UDP 127.0.0.1:5060:'],
    ]);
  });

  it('says what outside packets trigger at most once per source and kind per interval, counting the rest', () => {
    const { lines, log } = capture();
    let now = 0;
    const limiter = new ReportLimiter({ intervalMs: 60_000, now: () => now });
    const bad = (src: string): string => `sip_endpoint.c Error processing packet from ${src}: Missing required header(s) (PJSIP_EMISSINGHDR) Call-ID [code 171050]:\nINVITE sip:a@b SIP/2.0`;
    for (let i = 0; i < 100; i++) logPj(log, 2, bad('192.0.2.7:5060'), limiter);
    logPj(log, 2, bad('198.51.100.1:5062'), limiter);
    for (let i = 0; i < 50; i++) logPj(log, 3, "sip_parser.c Error parsing '99999999999': String value was greater than the maximum allowed value.", limiter);
    logPj(log, 2, 'pjsua_acc.c registration failed', limiter);
    logPj(log, 2, 'pjsua_acc.c registration failed', limiter);
    expect(lines.map((l) => String(l.msg).split('\n')[0].slice(0, 50))).toEqual([
      'sip_endpoint.c Error processing packet from 192.0.',
      'sip_endpoint.c Error processing packet from 198.51',
      "sip_parser.c Error parsing '99999999999': String v",
      'pjsua_acc.c registration failed',
      'pjsua_acc.c registration failed',
    ]);
    now = 60_000;
    logPj(log, 2, bad('192.0.2.7:5061'), limiter);
    expect(lines.at(-1)).toMatchObject({ heldBack: 99 });
    expect(String(lines.at(-1)!.msg)).toMatch(/99 more like this since the last report/);
  });

  it('keys a line by the source of the packet (IPv4, IPv6) or by its kind', () => {
    expect(floodKey('sip_endpoint.c Error processing packet from 192.0.2.7:5060: x')).toBe('bad-packet 192.0.2.7');
    expect(floodKey('sip_endpoint.c Error processing packet from [2001:db8::1]:5060: x')).toBe('bad-packet [2001:db8::1]');
    expect(floodKey('sip_parser.c Error parsing')).toBe('parser');
    expect(floodKey('pjsua_call.c Call 1 state changed')).toBeUndefined();
  });
});
