import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig, MAX_CONFIG_BYTES, DEFAULT_INSTRUCTIONS } from '../../../src/config';
import { ConfigError } from '../../../src/util/errors';
import { FIXTURES, base, problems, valid, warnings, withBase } from './helpers';

const env = { OPENAI_API_KEY: 'sk-test-env' };

describe('defaults', () => {
  it('fills every default from a minimal config', () => {
    const cfg = valid({ accounts: [{ uri: 'sip:100@127.0.0.1' }], ai: { provider: 'echo' } });
    expect(cfg.sip.transports.udp).toEqual({ enabled: true, port: 5060 });
    expect(cfg.sip.limits).toEqual({ invitesPerSecond: 20, inviteBurst: 40, requestsPerSecond: 50, requestBurst: 100, retryAfterSec: 5, logIntervalSec: 60 });
    expect(cfg.sip.transports.tcp).toEqual({ enabled: true, port: 5060 });
    expect(cfg.sip.transports.tls).toMatchObject({ enabled: false, port: 5061, verifyServer: true, method: 'tlsv1.2' });
    expect(cfg.accounts[0]).toEqual({
      uri: 'sip:100@127.0.0.1',
      username: '100',
      registerExpiresSec: 300,
      retryIntervalSec: 60,
      keepaliveSec: 30,
      transport: 'auto',
    });
    expect(cfg.media).toMatchObject({ clockRate: 8000, codecs: ['PCMU', 'PCMA'], srtp: 'disabled', rtpPortStart: 10000 });
    expect(cfg.ai).toMatchObject({
      url: 'wss://api.openai.com/v1/realtime',
      model: 'gpt-realtime',
      auth: 'bearer',
      voice: 'marin',
      speed: 1,
      audioFormat: 'pcm',
      instructions: DEFAULT_INSTRUCTIONS,
      noiseReduction: 'near_field',
      transcription: { model: 'gpt-4o-mini-transcribe' },
      maxSessionMinutes: 55,
    });
    expect(cfg.ai.turnDetection).toEqual({
      type: 'server_vad',
      threshold: 0.5,
      prefixPaddingMs: 300,
      silenceDurationMs: 500,
      eagerness: 'auto',
      createResponse: true,
      interruptResponse: true,
    });
    expect(cfg.ai.prices).toEqual({ currency: 'USD', audioInput: 32, audioCachedInput: 0.4, audioOutput: 64, textInput: 4, textCachedInput: 0.4, textOutput: 16 });
    expect(cfg.tools).toEqual({ endCall: { enabled: true }, transferCall: { enabled: false, targets: {} }, webhooks: [], mcp: [] });
    expect(cfg.calls).toMatchObject({ maxConcurrent: 8, allow: [], onAiFailure: 'hangup', dtmf: { toModel: true, template: 'Caller pressed {{digit}}' } });
    expect(cfg.records).toEqual({ dir: '/var/lib/sip-ai-agent/records', retentionDays: 30, recordAudio: false, transcripts: true, store: 'files', postgres: {} });
    expect(cfg.admin).toEqual({ enabled: true, listen: '127.0.0.1', port: 8089 });
    expect(cfg.logging).toEqual({ level: 'info', pjsipLevel: 2, pretty: 'auto', sipMessages: false });
    expect(cfg.variables).toEqual({});
    expect(cfg.greeting).toEqual({ interruptible: false });
  });

  it('treats an empty YAML value like an absent key', () => {
    const cfg = parseConfig('accounts:\n  - uri: sip:100@127.0.0.1\n    registrar:\nai:\n  provider: echo\ncalls:\n  allow:\n', { env: {} });
    expect(cfg.accounts[0]!.registrar).toBeUndefined();
    expect(cfg.calls.allow).toEqual([]);
  });

  it('does not share default objects between loads', () => {
    const a = valid(base());
    a.media.codecs.push('G722');
    expect(valid(base()).media.codecs).toEqual(['PCMU', 'PCMA']);
  });
});

describe('instance', () => {
  it('takes a name made for labels and headers, and refuses anything else', () => {
    expect(valid({ accounts: [{ uri: 'sip:100@127.0.0.1' }], ai: { provider: 'echo' }, instance: { id: 'agent-1.east' } }).instance.id).toBe('agent-1.east');
    expect(valid({ accounts: [{ uri: 'sip:100@127.0.0.1' }], ai: { provider: 'echo' } }).instance.id).toBeUndefined();
    expect(problems({ accounts: [{ uri: 'sip:100@127.0.0.1' }], ai: { provider: 'echo' }, instance: { id: 'agent 1' } })).toEqual([expect.stringMatching(/^instance\.id: not a valid instance id/)]);
  });
});

describe('records.store', () => {
  const base = { accounts: [{ uri: 'sip:100@127.0.0.1' }], ai: { provider: 'echo' } };
  it('postgres needs a connection URL, and a postgres:// one', () => {
    expect(problems({ ...base, records: { store: 'postgres' } })).toEqual([expect.stringMatching(/^records\.postgres\.url: required when records\.store is postgres/)]);
    expect(problems({ ...base, records: { store: 'postgres', postgres: { url: 'mysql://db/calls' } } })).toEqual([expect.stringMatching(/^records\.postgres\.url: not a postgres:\/\/ URL/)]);
    expect(valid({ ...base, records: { store: 'postgres', postgres: { url: 'postgres://agent:pw@db.example.com/calls' } } }).records.store).toBe('postgres');
    expect(valid(base).records.store).toBe('files');
  });
});

describe('YAML and JSON files', () => {
  it('loads YAML, reading the *File secret and resolving paths against the file', () => {
    const cfg = loadConfig(join(FIXTURES, 'minimal.yaml'), { env });
    expect(cfg.accounts[0]!.password).toBe('s3cret-pw');
    expect(cfg.accounts[0]!.passwordFile).toBe(join(FIXTURES, 'secrets/sip-password'));
    expect(cfg.ai.apiKey).toBe('sk-test-env');
    expect(cfg.greeting.file).toBe(join(FIXTURES, 'greeting.wav'));
  });

  it('loads the same configuration from JSON', () => {
    expect(loadConfig(join(FIXTURES, 'minimal.json'), { env })).toEqual(loadConfig(join(FIXTURES, 'minimal.yaml'), { env }));
  });

  it('sniffs the format when the extension says nothing', () => {
    expect(loadConfig(join(FIXTURES, 'minimal.conf'), { env }).ai.apiKey).toBe('sk-test-env');
    expect(parseConfig('{"accounts":[{"uri":"sip:1@h"}],"ai":{"provider":"echo"}}', { env: {} }).accounts[0]!.uri).toBe('sip:1@h');
  });

  it('reports YAML syntax errors, duplicate keys included, with their line', () => {
    expect(() => loadConfig(join(FIXTURES, 'broken.yaml'), { env })).toThrow(ConfigError);
    try {
      loadConfig(join(FIXTURES, 'broken.yaml'), { env });
    } catch (err) {
      const msgs = (err as ConfigError).problems.map((p) => p.message);
      expect(msgs.length).toBeGreaterThanOrEqual(2);
      expect(msgs.every((m) => m.startsWith('YAML syntax error: '))).toBe(true);
      expect(msgs.some((m) => /unique/i.test(m) && /line 3/.test(m))).toBe(true);
    }
  });

  it('reports invalid JSON with its line', () => {
    expect(() => parseConfig('{\n  "accounts": [\n}', { format: 'json' })).toThrow(/not valid JSON \(line 3\)/);
  });

  it('rejects a missing file, an empty file and a file that is not a mapping', () => {
    expect(() => loadConfig(join(FIXTURES, 'nope.yaml'))).toThrow(/cannot read config file \[path:.*nope\.yaml, error:ENOENT\]/);
    expect(() => parseConfig('# only comments\n')).toThrow(/config file is empty/);
    expect(() => parseConfig('- a\n- b\n')).toThrow(/must hold a mapping/);
  });

  it('refuses files over the size cap before parsing them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    try {
      const big = join(dir, 'big.yaml');
      writeFileSync(big, `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
      expect(() => loadConfig(big)).toThrow(/config file too large/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bounds YAML alias expansion', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    expect(() => parseConfig(lines.join('\n'))).toThrow(ConfigError);
  });
});

describe('environment substitution', () => {
  it('substitutes ${VAR} anywhere in a string, and ${VAR:-fallback} when unset or empty', () => {
    const cfg = valid(
      withBase({
        sip: { userAgent: 'agent/${VER} (${HOST:-unknown})' },
        variables: { company: '${CO:-Example Corp}' },
      }),
      { env: { VER: '1.2', CO: '' } },
    );
    expect(cfg.sip.userAgent).toBe('agent/1.2 (unknown)');
    expect(cfg.variables.company).toBe('Example Corp');
  });

  it('names the key and the variable when a variable is unset', () => {
    expect(problems(withBase({ accounts: [{ uri: 'sip:100@pbx', password: '${SIP_PASSWORD}' }] }))).toEqual([
      'accounts[0].password: environment variable SIP_PASSWORD is not set',
    ]);
  });

  it('keeps $${...} as a literal ${...}', () => {
    const cfg = valid(withBase({ variables: { note: 'costs $${PRICE} and ${X}' } }), { env: { X: 'y', PRICE: 'no' } });
    expect(cfg.variables.note).toBe('costs ${PRICE} and y');
  });

  it('reports malformed references', () => {
    const p = problems(withBase({ variables: { a: 'x ${1BAD} y', b: 'open ${NAME' } }));
    expect(p).toEqual([
      expect.stringMatching(/^variables\.a: invalid environment variable reference \$\{1BAD\}/),
      expect.stringMatching(/^variables\.b: unterminated \$\{/),
    ]);
  });

  it('coerces substituted numbers and booleans to the key type', () => {
    const cfg = valid(withBase({ sip: { transports: { udp: { port: '${PORT}', enabled: '${UDP}' } } } }), {
      env: { PORT: '5080', UDP: 'true' },
    });
    expect(cfg.sip.transports.udp.port).toBe(5080);
    expect(cfg.sip.transports.udp.enabled).toBe(true);
  });

  it('substitutes inside webhook header values and parameter schemas', () => {
    const cfg = valid(
      withBase({
        tools: {
          webhooks: [
            {
              name: 'lookup',
              description: 'd',
              url: 'https://crm.example.com/${PATH_PART}',
              headers: { Authorization: 'Bearer ${CRM_TOKEN}' },
              parameters: { type: 'object', properties: { id: { type: 'string', description: '${DESC}' } } },
            },
          ],
        },
      }),
      { env: { CRM_TOKEN: 't0k', PATH_PART: 'lookup', DESC: 'order id' } },
    );
    const w = cfg.tools.webhooks[0]!;
    expect(w.headers.Authorization).toBe('Bearer t0k');
    expect(w.url).toBe('https://crm.example.com/lookup');
    expect(w.parameters).toEqual({ type: 'object', properties: { id: { type: 'string', description: 'order id' } } });
  });

  it('uses process.env when no env is given', () => {
    process.env.CFG_TEST_UA = 'from-process-env';
    try {
      const cfg = parseConfig('accounts: [{uri: "sip:1@h"}]\nai: {provider: echo}\nsip: {userAgent: "${CFG_TEST_UA}"}\n');
      expect(cfg.sip.userAgent).toBe('from-process-env');
    } finally {
      delete process.env.CFG_TEST_UA;
    }
  });
});

describe('*File secrets', () => {
  it('reads and trims secrets; works with ${CREDENTIALS_DIRECTORY}', () => {
    const cfg = valid(
      withBase({
        accounts: [{ uri: 'sip:100@pbx', passwordFile: '${CREDENTIALS_DIRECTORY}/sip-password' }],
        ai: { provider: 'openai', apiKeyFile: 'secrets/openai-key' },
      }),
      { env: { CREDENTIALS_DIRECTORY: join(FIXTURES, 'secrets') } },
    );
    expect(cfg.accounts[0]!.password).toBe('s3cret-pw');
    expect(cfg.ai.apiKey).toBe('sk-test-from-file');
  });

  it('reads instructionsFile as a template', () => {
    const cfg = valid(withBase({ ai: { instructionsFile: 'instructions.txt' }, variables: { company: 'X' } }));
    expect(cfg.ai.instructions).toBe(
      'You answer calls for {{var.company}}.\nThe caller is {{ callerNumber }}; customer id {{header.X-Customer-Id}}.',
    );
  });

  it('reports missing, empty and doubly-set secrets at the *File key', () => {
    const p = problems(
      withBase({
        accounts: [
          { uri: 'sip:100@pbx', passwordFile: 'secrets/missing' },
          { uri: 'sip:101@pbx', passwordFile: 'secrets/empty' },
          { uri: 'sip:102@pbx', password: 'x', passwordFile: 'secrets/sip-password' },
        ],
        ai: { provider: 'openai', apiKeyFile: 'secrets' },
      }),
    );
    expect(p).toEqual([
      `accounts[0].passwordFile: cannot read ${join(FIXTURES, 'secrets/missing')} (ENOENT)`,
      `accounts[1].passwordFile: file is empty: ${join(FIXTURES, 'secrets/empty')}`,
      'accounts[2].passwordFile: set either password or passwordFile, not both',
      `ai.apiKeyFile: not a regular file: ${join(FIXTURES, 'secrets')}`,
    ]);
  });

  it('reports template problems of instructionsFile at that key, with the line in the file', () => {
    expect(problems(withBase({ ai: { instructionsFile: 'instructions-typo.txt' }, variables: { company: 'X' } }))).toEqual([
      'ai.instructionsFile: unknown template variable {{calller}} (line 3; did you mean {{caller}}?)',
    ]);
  });

  it('takes file content literally (no ${} substitution in secrets)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    try {
      writeFileSync(join(dir, 'pw'), 'a${B}c\n');
      const cfg = valid(withBase({ accounts: [{ uri: 'sip:1@h', passwordFile: join(dir, 'pw') }] }));
      expect(cfg.accounts[0]!.password).toBe('a${B}c');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('warnings', () => {
  it('warns about secrets written in clear, but not about substituted ones', () => {
    expect(warnings(withBase({ accounts: [{ uri: 'sip:1@h', registrar: 'sip:h', password: 'plain' }] }))).toEqual([
      'accounts[0].password: secret written in the config file in clear; prefer ${ENV} or the *File key',
    ]);
    expect(warnings(withBase({ accounts: [{ uri: 'sip:1@h', registrar: 'sip:h', password: '${P}' }] }), { env: { P: 'x' } })).toEqual([]);
  });

  it('warns that realm * hands a password digest to anyone who challenges, callers included', () => {
    const w = warnings(withBase({ accounts: [{ uri: 'sip:1@h', registrar: 'sip:h', password: '${P}', realm: '*' }] }), { env: { P: 'x' } });
    expect(w).toEqual([expect.stringMatching(/^accounts\[0\]\.realm: \* answers a digest challenge from anyone, callers included/)]);
  });

  it('leaves the realm unset by default (the registrar\'s, learned) and warns when credentials could never be sent', () => {
    expect(valid(withBase({ accounts: [{ uri: 'sip:1@h', registrar: 'sip:h' }] })).accounts[0]!.realm).toBeUndefined();
    expect(warnings(withBase({ accounts: [{ uri: 'sip:1@h', password: '${P}' }] }), { env: { P: 'x' } })).toEqual([
      'accounts[0].realm: unset with no registrar: the credentials are never sent; set the realm your trunk or proxy challenges with',
    ]);
    expect(warnings(withBase({ accounts: [{ uri: 'sip:1@h', password: '${P}', realm: 'trunk' }] }), { env: { P: 'x' } })).toEqual([]);
  });

  it('does not report warnings when the config is invalid (problems come first)', () => {
    const seen: unknown[] = [];
    expect(() => parseConfig('accounts: []\nai: {provider: echo, transcription: off}\n', { env: {}, onWarning: (w) => seen.push(w) })).toThrow(ConfigError);
    expect(seen).toEqual([]);
  });
});

describe('file checks', () => {
  it('reports greeting and prompt files that do not exist, unless checkFiles is off', () => {
    const raw = withBase({ greeting: { file: 'nope.wav' }, prompts: { fallbackFile: '/nonexistent/fallback.wav' } });
    expect(problems(raw)).toEqual([
      `greeting.file: file not found: ${join(FIXTURES, 'nope.wav')}`,
      'prompts.fallbackFile: file not found: /nonexistent/fallback.wav',
    ]);
    expect(problems(raw, { checkFiles: false })).toEqual([]);
  });
});

describe('JSON errors', () => {
  it('never quote the file content (it may hold secrets)', () => {
    try {
      parseConfig('{"ai": {"apiKey": "sk-secret-123"}, }', { format: 'json' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/^not valid JSON/);
      expect((err as Error).message).not.toContain('sk-secret-123');
    }
  });
});
