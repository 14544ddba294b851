import { join } from 'node:path';
import { FIXTURES, problems, valid, warnings, withBase } from './helpers';

describe('conflicting settings', () => {
  it('rejects G.711 passthrough with a wideband bridge', () => {
    expect(problems(withBase({ media: { clockRate: 16000 }, ai: { provider: 'echo', audioFormat: 'pcmu' } }))).toEqual([
      'ai.audioFormat: pcmu (G.711 passthrough) needs media.clockRate 8000 (got 16000); use pcm',
    ]);
    expect(valid(withBase({ media: { clockRate: 8000 }, ai: { provider: 'echo', audioFormat: 'pcma' } })).ai.audioFormat).toBe('pcma');
  });

  it('requires a token when the admin API listens beyond loopback', () => {
    expect(problems(withBase({ admin: { listen: '0.0.0.0' } }))).toEqual([
      'admin.token: required when admin.listen is not loopback (0.0.0.0); set token or tokenFile',
    ]);
    expect(problems(withBase({ admin: { listen: '::' } }))).toHaveLength(1);
    for (const listen of ['127.0.0.1', '127.0.0.53', '::1', 'localhost']) expect(problems(withBase({ admin: { listen } }))).toEqual([]);
    expect(problems(withBase({ admin: { listen: '0.0.0.0', enabled: false } }))).toEqual([]);
    expect(problems(withBase({ admin: { listen: '0.0.0.0', token: '${T}' } }), { env: { T: 'a-long-enough-token-123' } })).toEqual([]);
    expect(problems(withBase({ admin: { listen: '0.0.0.0', token: '${T}' } }), { env: { T: 'short' } })).toEqual([
      'admin.token: too short (at least 16 characters)',
    ]);
  });

  it('requires transfer targets when the transfer tool is on, and a known default target', () => {
    expect(problems(withBase({ tools: { transferCall: { enabled: true } } }))).toEqual([
      'tools.transferCall.targets: required when transferCall is enabled (at least one name: sip:uri)',
    ]);
    expect(problems(withBase({ tools: { transferCall: { enabled: true, targets: { sales: 'sip:200@pbx' }, defaultTarget: 'support' } } }))).toEqual([
      'tools.transferCall.defaultTarget: "support" is not in targets (known: sales)',
    ]);
  });

  it('requires a usable transfer target for onAiFailure transfer', () => {
    expect(problems(withBase({ calls: { onAiFailure: 'transfer' } }))).toEqual(['calls.transferTarget: required when calls.onAiFailure is transfer']);
    expect(problems(withBase({ calls: { onAiFailure: 'transfer', transferTarget: 'reception' } }))).toEqual([
      'calls.transferTarget: "reception" is neither a tools.transferCall.targets name nor a SIP URI',
    ]);
    expect(problems(withBase({ calls: { onAiFailure: 'transfer', transferTarget: 'sip:200@pbx' } }))).toEqual([]);
    expect(
      problems(withBase({ calls: { onAiFailure: 'transfer', transferTarget: 'reception' }, tools: { transferCall: { targets: { reception: 'sip:200@pbx' } } } })),
    ).toEqual([]);
  });

  it('keeps webhook names off the built-in tools', () => {
    expect(problems(withBase({ tools: { webhooks: [{ name: 'end_call', description: 'd', url: 'https://x.example/' }] } }))).toEqual([
      'tools.webhooks[0].name: end_call is the name of a built-in tool',
    ]);
  });

  it('requires an API key for the openai provider, once', () => {
    expect(problems(withBase({ ai: { provider: 'openai' } }))).toEqual(['ai.apiKey: required when ai.provider is openai (set apiKey or apiKeyFile)']);
    // The unreadable file is the problem to fix; "required" on top would be noise.
    expect(problems(withBase({ ai: { provider: 'openai', apiKeyFile: 'secrets/missing' } }))).toEqual([
      `ai.apiKeyFile: cannot read ${join(FIXTURES, 'secrets/missing')} (ENOENT)`,
    ]);
    expect(problems(withBase({ ai: { provider: 'openai', apiKey: '${KEY}' } }))).toEqual(['ai.apiKey: environment variable KEY is not set']);
  });

  it('rejects turn detection keys that do not apply to the chosen type', () => {
    expect(problems(withBase({ ai: { provider: 'echo', turnDetection: { type: 'semantic_vad', threshold: 0.7, idleTimeoutMs: 5000 } } }))).toEqual([
      'ai.turnDetection.threshold: only applies to type server_vad (type is semantic_vad)',
      'ai.turnDetection.idleTimeoutMs: only applies to type server_vad (type is semantic_vad)',
    ]);
    expect(problems(withBase({ ai: { provider: 'echo', turnDetection: { eagerness: 'high' } } }))).toEqual([
      'ai.turnDetection.eagerness: only applies to type semantic_vad (type is server_vad)',
    ]);
    expect(problems(withBase({ ai: { provider: 'echo', turnDetection: { type: 'none', createResponse: false } } }))).toEqual([
      'ai.turnDetection.createResponse: does not apply to type none',
    ]);
  });

  it('refuses turn detection none with the openai provider: nothing would commit the caller audio', () => {
    expect(problems(withBase({ ai: { provider: 'openai', apiKey: 'sk-test-0123456789', turnDetection: { type: 'none' } } }))).toEqual([
      "ai.turnDetection.type: none is not supported on a phone line: nothing would commit the caller's audio, so the model would never answer; use server_vad or semantic_vad",
    ]);
  });

  it('checks transports against accounts', () => {
    expect(
      problems(
        withBase({
          sip: { transports: { tcp: { enabled: false } } },
          accounts: [
            { uri: 'sip:100@pbx', transport: 'tls' },
            { uri: 'sips:101@pbx' },
            { uri: 'sip:102@pbx', registrar: 'sip:pbx;transport=tcp' },
          ],
        }),
      ),
    ).toEqual([
      'accounts[0].transport: tls is not enabled in sip.transports',
      'accounts[1].uri: a sips: URI needs sip.transports.tls.enabled',
      'accounts[2].registrar: transport=tcp is not enabled in sip.transports',
    ]);
    expect(problems(withBase({ sip: { transports: { udp: { enabled: false }, tcp: { enabled: false } } } }))).toEqual([
      'sip.transports: enable at least one of udp, tcp, tls',
    ]);
  });

  it('rejects port clashes between TCP listeners', () => {
    expect(
      problems(withBase({ sip: { transports: { tls: { enabled: true, port: 5060 } } }, admin: { port: 5060 } }), { checkFiles: false }),
    ).toEqual([
      'sip.transports.tls.port: 5060 is already used by sip.transports.tcp (both are TCP listeners)',
      'admin.port: 5060 is already used by sip.transports.tcp',
      'admin.port: 5060 is already used by sip.transports.tls',
    ]);
    expect(problems(withBase({ sip: { transports: { tcp: { bindAddress: '192.0.2.1' } } }, admin: { port: 5060 } }))).toEqual([]);
  });

  it('requires the TLS certificate and key together', () => {
    expect(problems(withBase({ sip: { transports: { tls: { certFile: 'greeting.wav' } } } }))).toEqual([
      'sip.transports.tls.privKeyFile: required with certFile',
    ]);
  });

  it('checks the jitter buffer ordering', () => {
    expect(problems(withBase({ media: { jitterBuffer: { initMs: 500, minPrefetchMs: 300, maxPrefetchMs: 200, maxMs: 100 } } }))).toEqual([
      'media.jitterBuffer.minPrefetchMs: must not exceed maxPrefetchMs (300 > 200)',
      'media.jitterBuffer.initMs: must not exceed maxPrefetchMs (500 > 200)',
      'media.jitterBuffer.maxPrefetchMs: must not exceed maxMs (200 > 100)',
    ]);
  });

  it('checks the RTP port range against the port space and the call limit', () => {
    expect(problems(withBase({ media: { rtpPortStart: 10001, rtpPortRange: 10 }, calls: { maxConcurrent: 8 } }))).toEqual([
      'media.rtpPortStart: must be even (got 10001; RTP uses even ports, RTCP the next)',
      'media.rtpPortRange: 10 ports fit 5 calls but calls.maxConcurrent is 8 (2 ports per call)',
    ]);
    expect(problems(withBase({ media: { rtpPortStart: 60000, rtpPortRange: 10000 } }))).toEqual([
      'media.rtpPortRange: rtpPortStart + rtpPortRange must not pass 65536 (got 70000)',
    ]);
  });

  it('rejects mandatory SRTP without TLS', () => {
    expect(problems(withBase({ media: { srtp: 'mandatory' } }))).toEqual([
      'media.srtp: mandatory needs sip.transports.tls.enabled: SDES keys must not travel over plain SIP',
    ]);
  });

  it('checks the opening line and the DTMF template too', () => {
    expect(problems(withBase({ ai: { provider: 'echo', openingLine: 'Say {{digit}}' }, calls: { dtmf: { template: 'Pressed {{digit}} {{var.x}}' } } }))).toEqual([
      expect.stringMatching(/^ai\.openingLine: unknown template variable \{\{digit\}\} \(line 1/),
      expect.stringMatching(/^calls\.dtmf\.template: unknown template variable \{\{var\.x\}\} \(line 1/),
    ]);
    expect(valid(withBase({ variables: { x: 'y' }, calls: { dtmf: { template: 'Pressed {{digit}} {{var.x}}' } } })).calls.dtmf.template).toBe(
      'Pressed {{digit}} {{var.x}}',
    );
  });
});

describe('warnings for settings that work but are probably not meant', () => {
  it('warns about wideband codecs on a narrowband bridge, transcripts without transcription, plain ws://', () => {
    expect(
      warnings(
        withBase({
          media: { codecs: ['G722', 'PCMU'] },
          ai: { provider: 'openai', apiKey: '${K}', transcription: 'off', url: 'ws://ai.example.com/v1/realtime' },
        }),
        { env: { K: 'k' } },
      ),
    ).toEqual([
      'media.codecs: G722/opus are narrowed to 8 kHz by the bridge; set media.clockRate 16000 to keep wideband',
      'ai.url: ws:// sends the API key and all audio unencrypted; use wss://',
      'ai.transcription: off while records.transcripts is on: transcripts will hold only the agent side',
    ]);
  });

  it('stays quiet for ws:// on loopback (a local test server)', () => {
    expect(warnings(withBase({ ai: { provider: 'openai', apiKey: '${K}', url: 'ws://127.0.0.1:9000/v1/realtime' } }), { env: { K: 'k' } })).toEqual([]);
  });

  it('warns when no caller could be admitted, and when calls.allow admits everyone', () => {
    expect(warnings(withBase({ calls: { allow: [] } }))).toEqual([
      'calls.allow: empty, and no account has a registrar or proxy: every incoming call gets 403; list the addresses of your PBX or trunk',
    ]);
    expect(warnings(withBase({ calls: { allow: [] }, accounts: [{ uri: 'sip:1@h', proxy: 'sip:sbc.example.com;lr' }] }))).toEqual([]);
    expect(warnings(withBase({ calls: { allow: ['any'] } }))).toEqual([
      'calls.allow: any: every address that reaches the SIP port talks to the model (scanners find a public one within hours); list your PBX or trunk addresses instead',
    ]);
  });

  it('warns when registering without a password', () => {
    expect(warnings(withBase({ accounts: [{ uri: 'sip:1@pbx', registrar: 'sip:pbx' }] }))).toEqual([
      'accounts[0].password: unset while registering: works only with a registrar that does not challenge',
    ]);
  });
});
