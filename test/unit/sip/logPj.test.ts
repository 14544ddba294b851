import { Writable } from 'node:stream';
import { createLogger } from '../../../src/logging/logger';
import { logPj } from '../../../src/sip/UserAgent';

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
});
