import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { compileConfigTemplates, describeSchema, loadConfig, redactConfig } from '../../../src/config';
import { callTemplateValues } from '../../../src/util/template';

const EXAMPLE = join(__dirname, '..', '..', '..', 'examples', 'config.yaml');
const env = { SIP_PASSWORD: 'example-sip-password', OPENAI_API_KEY: 'sk-example' };

describe('examples/config.yaml', () => {
  // greeting.wav ships next to the example, so the files it names are checked too.
  const load = () => {
    const warnings: string[] = [];
    const cfg = loadConfig(EXAMPLE, { env, onWarning: (w) => warnings.push(`${w.path}: ${w.message}`) });
    return { cfg, warnings };
  };

  it('validates with SIP_PASSWORD and OPENAI_API_KEY set, without warnings', () => {
    const { cfg, warnings } = load();
    expect(warnings).toEqual([]);
    expect(cfg.accounts).toHaveLength(1);
    expect(cfg.accounts[0]).toMatchObject({ uri: 'sip:100@pbx.example.com', registrar: 'sip:pbx.example.com', password: 'example-sip-password', username: '100' });
    expect(cfg.ai.apiKey).toBe('sk-example');
    expect(cfg.greeting.file).toBe(join(EXAMPLE, '..', 'greeting.wav'));
    expect(cfg.tools.transferCall.targets).toEqual({ reception: 'sip:200@pbx.example.com' });
    expect(cfg.admin.listen).toBe('127.0.0.1');
  });

  it('fails without the environment variables, naming them', () => {
    expect(() => loadConfig(EXAMPLE, { env: {}, checkFiles: false })).toThrow(
      /accounts\[0\]\.password: environment variable SIP_PASSWORD is not set\nai\.apiKey: environment variable OPENAI_API_KEY is not set/,
    );
  });

  it('has instructions that render for a call', () => {
    const { cfg } = load();
    const t = compileConfigTemplates(cfg);
    const text = t.instructions.render(
      callTemplateValues({
        caller: 'sip:+4930123@pbx.example.com',
        callee: 'sip:100@pbx.example.com',
        callId: '1',
        variables: cfg.variables,
        now: new Date('2026-01-05T10:00:00Z'),
        timeZone: 'UTC',
      }),
    );
    expect(text).toContain('You are the phone assistant of Example Corp. Today is Monday, 2026-01-05, and it is\n10:00.');
    expect(text).toContain("The caller's number is +4930123.");
    expect(text).not.toMatch(/\{\{|\}\}/);
  });

  it('mentions every key of the schema, commented out or set', () => {
    // "#key: value" (no space) marks an optional setting; "#  key" continues a commented block.
    const lines = readFileSync(EXAMPLE, 'utf8').split('\n');
    let inSetting = false;
    const uncommented = lines.map((line) => {
      const m = /^(\s*)#(.*)$/.exec(line);
      if (!m) {
        inSetting = false;
        return line;
      }
      const rest = m[2]!;
      if (/^\S/.test(rest) || (inSetting && /^ {2,}\S/.test(rest))) {
        inSetting = true;
        return m[1] + rest;
      }
      inSetting = false;
      return line;
    });
    const doc = parseDocument(uncommented.join('\n'), { uniqueKeys: true });
    expect(doc.errors.map((e) => e.message)).toEqual([]);
    const present = new Set<string>();
    const collect = (v: unknown, p: string): void => {
      if (p) present.add(p);
      if (Array.isArray(v)) v.forEach((x) => collect(x, `${p}[]`));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) collect(x, p ? `${p}.${k}` : k);
    };
    collect(doc.toJS(), '');
    const missing = describeSchema()
      .map((e) => e.path)
      .filter((p) => !p.includes('<'))
      .filter((p) => !present.has(p));
    expect(missing).toEqual([]);
  });

  it('shows no secret once redacted', () => {
    const text = JSON.stringify(redactConfig(load().cfg));
    expect(text).not.toContain('example-sip-password');
    expect(text).not.toContain('sk-example');
  });
});
