import { diffReloadable, redactConfig, REDACTED } from '../../../src/config';
import { valid, withBase } from './helpers';

const env = { SIP_PW: 'sip-secret-1', KEY: 'sk-secret-2', TOKEN: 'admin-secret-token-3', CRM: 'crm-secret-4' };

function full(patch: Record<string, unknown> = {}): Record<string, unknown> {
  return withBase({
    accounts: [{ uri: 'sip:100@pbx', registrar: 'sip:pbx', password: '${SIP_PW}' }, { uri: 'sip:101@pbx' }],
    ai: { provider: 'openai', apiKey: '${KEY}' },
    admin: { listen: '0.0.0.0', token: '${TOKEN}' },
    tools: {
      webhooks: [
        {
          name: 'lookup',
          description: 'd',
          url: 'https://user:url-secret-5@crm.example.com/x',
          headers: { Authorization: 'Bearer ${CRM}', 'X-Plain': 'v' },
        },
      ],
      transferCall: { targets: { sales: 'sip:alice:sip-uri-secret-6@pbx' } },
    },
    variables: { company: 'Example Corp' },
    ...patch,
  });
}

describe('redactConfig', () => {
  it('replaces every secret and masks passwords inside URLs', () => {
    const cfg = valid(full(), { env });
    const red = redactConfig(cfg);
    const text = JSON.stringify(red);
    for (const secret of [...Object.values(env), 'url-secret-5', 'sip-uri-secret-6']) expect(text).not.toContain(secret);
    expect(red.accounts[0]!.password).toBe(REDACTED);
    expect(red.ai.apiKey).toBe(REDACTED);
    expect(red.admin.token).toBe(REDACTED);
    expect(red.tools.webhooks[0]!.headers).toEqual({ Authorization: REDACTED, 'X-Plain': REDACTED });
    expect(red.tools.webhooks[0]!.url).toBe('https://user:[redacted]@crm.example.com/x');
    expect(red.tools.transferCall.targets.sales).toBe('sip:alice:[redacted]@pbx');
  });

  it('leaves absent secrets absent and everything else equal, without touching the original', () => {
    const cfg = valid(full(), { env });
    const red = redactConfig(cfg);
    expect(red.accounts[1]!.password).toBeUndefined();
    expect(red.variables).toEqual(cfg.variables);
    expect(red.media).toEqual(cfg.media);
    expect(cfg.ai.apiKey).toBe('sk-secret-2');
    red.media.codecs.push('opus');
    expect(cfg.media.codecs).toEqual(['PCMU', 'PCMA']);
  });
});

describe('diffReloadable', () => {
  it('finds nothing between equal configurations', () => {
    expect(diffReloadable(valid(full(), { env }), valid(full(), { env }))).toEqual({ changed: [], live: [], restart: [], needsRestart: false });
  });

  it('applies instructions, variables, greeting, tools, calls and log level live', () => {
    const a = valid(full(), { env });
    const b = valid(
      full({
        ai: { provider: 'openai', apiKey: '${KEY}', instructions: 'Be brief.', voice: 'cedar' },
        variables: { company: 'New Corp', hours: '9-5' },
        greeting: { interruptible: true },
        calls: { maxConcurrent: 4 },
        logging: { level: 'debug' },
      }),
      { env },
    );
    const d = diffReloadable(a, b);
    expect(d.live).toEqual([
      'ai.voice',
      'ai.instructions',
      'greeting.interruptible',
      'calls.maxConcurrent',
      'logging.level',
      'variables.company',
      'variables.hours',
    ]);
    expect(d.restart).toEqual([]);
    expect(d.needsRestart).toBe(false);
  });

  it('needs a restart for SIP, accounts, media, admin and the records directory', () => {
    const a = valid(full(), { env });
    const b = valid(
      full({
        sip: { transports: { udp: { port: 5070 } } },
        media: { clockRate: 16000 },
        admin: { listen: '0.0.0.0', token: '${TOKEN}', port: 9000 },
        records: { dir: '/srv/records' },
        logging: { pjsipLevel: 4 },
      }),
      { env: { ...env, SIP_PW: 'rotated' } },
    );
    const d = diffReloadable(a, b);
    expect(d.restart).toEqual([
      'sip.transports.udp.port',
      'accounts[0].password',
      'media.clockRate',
      'records.dir',
      'admin.port',
      'logging.pjsipLevel',
    ]);
    expect(d.live).toEqual([]);
    expect(d.needsRestart).toBe(true);
  });

  it('reports a list whose length changed as one change, and key-by-key changes in maps', () => {
    const a = valid(full(), { env });
    const b = valid(full({ accounts: [{ uri: 'sip:100@pbx' }] }), { env });
    expect(diffReloadable(a, b).changed).toEqual([{ path: 'accounts', reload: 'restart' }]);
    const c = valid(full({ tools: { transferCall: { targets: { sales: 'sip:300@pbx', support: 'sip:400@pbx' } } } }), { env });
    expect(diffReloadable(a, c).live).toEqual(['tools.transferCall.targets.sales', 'tools.transferCall.targets.support', 'tools.webhooks']);
  });

  it('sees transcription switched off as one live change', () => {
    const a = valid(full(), { env });
    const b = valid(full({ ai: { provider: 'openai', apiKey: '${KEY}', transcription: 'off' } }), { env });
    expect(diffReloadable(a, b).changed).toEqual([{ path: 'ai.transcription', reload: 'live' }]);
  });
});
