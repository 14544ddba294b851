import { parseConfig } from '../../../src/config';
import { ConfigError } from '../../../src/util/errors';
import { base, problems, valid, withBase } from './helpers';

describe('every problem is reported at once, each with its path', () => {
  it('lists type, format, range, enum, unknown-key and conflict problems together', () => {
    const text = [
      'accounts:',
      '  - uri: pbx',
      '    registrar: pbx.example.com',
      '    registerExpiresSec: 10',
      'media:',
      '  clockRate: 44100',
      '  codecs: [pcmu, G729]',
      'ai:',
      '  temprature: 0.8',
      '  voice: marine',
      '  speed: fast',
      '  audioFormat: pcmu',
      '  instructions: "Hi {{calller}}"',
      'admin:',
      '  listen: 0.0.0.0',
      'tools:',
      '  transferCall:',
      '    enabled: true',
      'logging:',
      '  levle: debug',
    ].join('\n');
    let err: unknown;
    try {
      parseConfig(text, { env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.problems.map((p) => p.path)).toEqual([
      'accounts[0].uri',
      'accounts[0].registrar',
      'accounts[0].registerExpiresSec',
      'media.clockRate',
      'media.codecs[1]',
      'ai.temprature',
      'ai.voice',
      'ai.speed',
      'logging.levle',
      'ai.apiKey',
      'tools.transferCall.targets',
      'admin.token',
      'ai.instructions',
    ]);
    expect(e.message.split('\n')).toEqual([
      'accounts[0].uri: not a SIP URI (got "pbx"; expected e.g. sip:100@pbx.example.com)',
      'accounts[0].registrar: not a SIP URI (got "pbx.example.com"; expected e.g. sip:pbx.example.com)',
      'accounts[0].registerExpiresSec: must be between 60 and 86400 s (got 10)',
      'media.clockRate: must be one of 8000, 16000, 24000 (got 44100)',
      'media.codecs[1]: must be one of PCMU, PCMA, G722, opus (got "G729"; did you mean G722?)',
      'ai.temprature: unknown key (did you mean temperature? temperature is not supported by the GA Realtime API (sending it makes the whole session.update fail))',
      'ai.voice: must be one of alloy, ash, ballad, coral, echo, sage, shimmer, verse, marin, cedar (got "marine"; did you mean marin?)',
      'ai.speed: expected a number, got a string ("fast")',
      'logging.levle: unknown key (did you mean level?)',
      'ai.apiKey: required when ai.provider is openai (set apiKey or apiKeyFile)',
      'tools.transferCall.targets: required when transferCall is enabled (at least one name: sip:uri)',
      'admin.token: required when admin.listen is not loopback (0.0.0.0); set token or tokenFile',
      'ai.instructions: unknown template variable {{calller}} (line 1; did you mean {{caller}}?)',
    ]);
  });
});

describe('types and shapes', () => {
  it('rejects a scalar where a section belongs, and a section where a list belongs', () => {
    expect(problems({ ...base(), sip: 'udp' })).toEqual(['sip: expected a mapping, got a string ("udp")']);
    expect(problems({ ...base(), calls: { allow: '10.0.0.0/8' } })).toEqual([
      'calls.allow: expected a list, got a string ("10.0.0.0/8") (write each entry on its own "- " line)',
    ]);
    expect(problems({ ...base(), ai: { provider: 'echo', turnDetection: [1] } })).toEqual(['ai.turnDetection: expected a mapping, got a list']);
  });

  it('requires at least one account, and a uri in each', () => {
    expect(problems({ ai: { provider: 'echo' } })).toEqual(['accounts: required (at least one entry)']);
    expect(problems({ accounts: [], ai: { provider: 'echo' } })).toEqual(['accounts: needs at least 1 entry']);
    expect(problems({ accounts: [{ registrar: 'sip:pbx' }], ai: { provider: 'echo' } })).toEqual(['accounts[0].uri: required']);
  });

  it('rejects fractions where whole numbers are needed, and numbers out of range', () => {
    expect(problems(withBase({ sip: { transports: { udp: { port: 5060.5 } } }, calls: { maxConcurrent: 0 } }))).toEqual([
      'sip.transports.udp.port: must be a whole number (got 5060.5)',
      'calls.maxConcurrent: must be between 1 and 256 (got 0)',
    ]);
  });

  it('accepts YAML 1.1 booleans and numeric user names', () => {
    const cfg = parseConfig('accounts:\n  - uri: sip:100@pbx\n    username: 100\nai: {provider: echo}\nrecords: {recordAudio: yes}\n', { env: {} });
    expect(cfg.records.recordAudio).toBe(true);
    expect(cfg.accounts[0]!.username).toBe('100');
    expect(problems(withBase({ records: { recordAudio: 'maybe' } }))).toEqual(['records.recordAudio: expected true or false, got a string ("maybe")']);
  });

  it('normalizes codec and method spelling', () => {
    const cfg = valid(withBase({ media: { codecs: ['pcma', 'OPUS'] }, tools: { webhooks: [{ name: 'w', description: 'd', url: 'http://127.0.0.1:9/x', method: 'put' }] } }));
    expect(cfg.media.codecs).toEqual(['PCMA', 'opus']);
    expect(cfg.tools.webhooks[0]!.method).toBe('PUT');
  });

  it('rejects duplicates in lists that must be distinct', () => {
    expect(
      problems(
        withBase({
          accounts: [{ uri: 'sip:100@pbx' }, { uri: '"Agent" <sip:100@PBX>' }],
          media: { codecs: ['PCMU', 'pcmu'] },
          tools: {
            webhooks: [
              { name: 'a', description: 'd', url: 'https://x.example/' },
              { name: 'a', description: 'd', url: 'https://y.example/' },
            ],
          },
        }),
      ),
    ).toEqual([
      'accounts[1]: duplicate of accounts[0] (sip:100@pbx)',
      'media.codecs[1]: duplicate of media.codecs[0] (PCMU)',
      'tools.webhooks[1]: duplicate of tools.webhooks[0] (a)',
    ]);
  });

  it('checks map keys and bounds list and map sizes', () => {
    expect(problems(withBase({ variables: { 'bad name': 'x', ok: 'y' } }))).toEqual([
      'variables["bad name"]: not a valid name (a letter, then letters, digits, _ and -, at most 64)',
    ]);
    const many = Object.fromEntries(Array.from({ length: 129 }, (_v, i) => [`v${i}`, 'x']));
    expect(problems(withBase({ variables: many }))).toEqual(['variables: too many entries (129, at most 128)']);
    expect(problems(withBase({ calls: { allow: Array(257).fill('10.0.0.1') } }))).toEqual(['calls.allow: too many entries (257, at most 256)']);
  });

  it('bounds string length', () => {
    expect(problems(withBase({ variables: { x: 'y'.repeat(4097) } }))).toEqual(['variables.x: too long (4097 characters, at most 4096)']);
  });

  it('names a retired key instead of ignoring it', () => {
    expect(problems(withBase({ ai: { provider: 'echo', temperature: 0.8 } }))).toEqual([
      'ai.temperature: not supported by the GA Realtime API (sending it makes the whole session.update fail)',
    ]);
  });

  it('suggests the camelCase key for a snake_case one', () => {
    expect(problems(withBase({ ai: { provider: 'echo', turn_detection: {} } }))).toEqual(['ai.turn_detection: unknown key (did you mean turnDetection?)']);
  });
});

describe('formats', () => {
  it('accepts the usual SIP URI forms', () => {
    const cfg = valid(
      withBase({
        accounts: [
          {
            uri: '"Front desk" <sip:100@pbx.example.com>',
            registrar: 'sip:pbx.example.com:5070;transport=tcp',
            proxy: 'sip:[2001:db8::1]:5060;lr',
          },
          { uri: 'sip:+49301234@192.0.2.1' },
        ],
      }),
    );
    expect(cfg.accounts[0]!.username).toBe('100');
    expect(cfg.accounts[1]!.username).toBe('+49301234');
  });

  it('rejects malformed URIs and URLs', () => {
    expect(
      problems(
        withBase({
          accounts: [{ uri: 'sip:pbx.example.com', proxy: 'sip:proxy;;lr' }],
          ai: { provider: 'echo', url: 'https://api.openai.com/v1/realtime' },
          tools: { transferCall: { enabled: true, targets: { sales: '200' } }, webhooks: [{ name: 'bad name', description: 'd', url: 'ftp://x' }] },
        }),
      ),
    ).toEqual([
      'accounts[0].uri: needs a user part (got "sip:pbx.example.com"; expected e.g. sip:100@pbx.example.com)',
      'accounts[0].proxy: not a SIP URI (got "sip:proxy;;lr"; expected e.g. sip:pbx.example.com)',
      'ai.url: not a ws:// or wss:// URL (got "https://api.openai.com/v1/realtime")',
      'tools.transferCall.targets.sales: not a SIP URI (got "200"; expected e.g. sip:pbx.example.com)',
      'tools.webhooks[0].name: not a valid tool name (got "bad name"; letters, digits, _ and -, at most 64)',
      'tools.webhooks[0].url: not an http:// or https:// URL (got "ftp://x")',
    ]);
  });

  it('checks addresses, language codes, time zones and header values', () => {
    expect(
      problems(
        withBase({
          sip: { transports: { udp: { bindAddress: 'eth0', publicAddress: 'bad host!' } }, userAgent: 'a\r\nX-Evil: 1' },
          ai: { provider: 'echo', transcription: { language: 'english' } },
          calls: { timeZone: 'Mars/Olympus' },
          tools: { webhooks: [{ name: 'w', description: 'd', url: 'https://x.example/', headers: { 'X-A': 'a\nb' } }] },
        }),
      ),
    ).toEqual([
      'sip.transports.udp.bindAddress: not an IP address (got "eth0")',
      'sip.transports.udp.publicAddress: not a hostname or IP address (got "bad host!")',
      'sip.userAgent: must be a single line without control characters',
      'ai.transcription.language: not an ISO-639-1 language code (got "english"; expected e.g. en)',
      'tools.webhooks[0].headers.X-A: must be a single line without control characters',
      'calls.timeZone: not a known IANA time zone (got "Mars/Olympus"; expected e.g. Europe/Berlin)',
    ]);
  });

  it('refuses a price currency the costs would be mislabelled in', () => {
    expect(problems(withBase({ ai: { prices: { currency: 'EUR' } } }))).toEqual([
      'ai.prices.currency: only USD is supported: costs are recorded and exported as USD (got "EUR"; convert the prices to USD)',
    ]);
    expect(problems(withBase({ ai: { prices: { currency: 'usd' } } }))).toEqual(['ai.prices.currency: not an ISO-4217 currency code (got "usd")']);
    expect(problems(withBase({ ai: { prices: { currency: 'USD' } } }))).toEqual([]);
  });

  it('checks allow-list entries', () => {
    expect(problems(withBase({ calls: { allow: ['10.0.0.0/8', '2001:db8::/129', 'pbx.example.com', 'sip:*@pbx'] } }))).toEqual([
      'calls.allow[1]: not a SIP URI pattern, IP address or CIDR (got "2001:db8::/129"; expected e.g. sip:*@pbx.example.com, 192.0.2.0/24 or any)',
      'calls.allow[2]: not a SIP URI pattern, IP address or CIDR (got "pbx.example.com"; expected e.g. sip:*@pbx.example.com, 192.0.2.0/24 or any)',
    ]);
  });

  it('requires webhook parameters to be an object schema', () => {
    expect(
      problems(withBase({ tools: { webhooks: [{ name: 'w', description: 'd', url: 'https://x.example/', parameters: { type: 'string' } }] } })),
    ).toEqual(['tools.webhooks[0].parameters: must be an object schema (type: object)']);
  });
});

describe('transcription on/off', () => {
  it('accepts off, false and null as off, and a mapping as on', () => {
    for (const off of ['off', false, null]) expect(valid(withBase({ ai: { provider: 'echo', transcription: off } })).ai.transcription).toBeNull();
    expect(valid(withBase({ ai: { provider: 'echo', transcription: { language: 'de' } } })).ai.transcription).toEqual({
      model: 'gpt-4o-mini-transcribe',
      language: 'de',
    });
    expect(problems(withBase({ ai: { provider: 'echo', transcription: 3 } }))).toEqual(['ai.transcription: expected a mapping or off, got a number (3)']);
  });
});
