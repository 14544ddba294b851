import { ConfigError } from '../../src/util/errors';
import {
  callTemplateAllowed,
  callTemplateValues,
  compileTemplate,
  didYouMean,
  MAX_RENDERED_VALUE_CHARS,
  parseNameAddr,
} from '../../src/util/template';

const allowed = callTemplateAllowed(['company'], ['digit']);

function problemsOf(text: string, path?: string): string[] {
  try {
    compileTemplate(text, { allowed, path });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
  }
  return [];
}

describe('compileTemplate', () => {
  it('renders plain names, with whitespace inside the braces', () => {
    const t = compileTemplate('Hello {{caller}}, this is {{ callee }}.', { allowed });
    expect(t.render({ caller: 'sip:a@b', callee: 'sip:100@pbx' })).toBe('Hello sip:a@b, this is sip:100@pbx.');
    expect(t.names).toEqual(['caller', 'callee']);
  });

  it('renders SIP headers case-insensitively and a missing header as empty', () => {
    const t = compileTemplate('id={{header.X-Customer-Id}} tag={{header.X-Missing}}.', { allowed });
    expect(t.render({ header: { 'x-customer-id': '42' } })).toBe('id=42 tag=.');
  });

  it('renders config variables through var.', () => {
    const t = compileTemplate('We are {{var.company}}.', { allowed });
    expect(t.render({ var: { company: 'Example Corp' } })).toBe('We are Example Corp.');
  });

  it('keeps text without placeholders and \\{{ as a literal {{', () => {
    const t = compileTemplate('a } b }} c \\{{caller}}', { allowed });
    expect(t.render({ caller: 'x' })).toBe('a } b }} c {{caller}}');
    expect(t.names).toEqual([]);
  });

  it('rejects an unknown name with its line and a suggestion', () => {
    expect(problemsOf('Hello\nthere\nGreet {{calller}}.', 'ai.instructions')).toEqual([
      'ai.instructions: unknown template variable {{calller}} (line 3; did you mean {{caller}}?)',
    ]);
  });

  it('rejects a var. name that is not a configured variable, naming the known ones', () => {
    const [p] = problemsOf('{{var.compnay}}');
    expect(p).toContain('unknown template variable {{var.compnay}} (line 1');
    expect(p).toContain('company');
  });

  it('reports every problem of a template at once', () => {
    const problems = problemsOf('{{nope}} {{}}\n{{ two words }} {{caller');
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/unknown template variable \{\{nope\}\} \(line 1/);
    expect(problems[1]).toBe('empty template variable {{}} (line 1)');
    expect(problems[2]).toBe('malformed template variable {{two words}} (line 2)');
    expect(problems[3]).toBe('unclosed {{ (line 2)');
  });

  it('treats a {{ that closes only on a later line as unclosed', () => {
    expect(problemsOf('{{caller\n}}')).toEqual(['unclosed {{ (line 1)']);
  });

  it('rejects header. with no header name and with characters a SIP header name cannot have', () => {
    expect(problemsOf('{{header.}}')[0]).toMatch(/malformed template variable \{\{header\.\}\}/);
    expect(problemsOf('{{header.X(Id)}}')[0]).toMatch(/malformed/);
  });

  it('only allows what it is given', () => {
    expect(() => compileTemplate('{{digit}}', { allowed: callTemplateAllowed([]) })).toThrow(ConfigError);
    expect(compileTemplate('{{digit}}', { allowed }).render({ digit: '5' })).toBe('5');
  });

  it('flattens control characters and caps each rendered value', () => {
    const t = compileTemplate('[{{header.X-Note}}]', { allowed });
    expect(t.render({ header: { 'X-Note': 'a\nb\r\n\tc' } })).toBe('[a b c]');
    const long = t.render({ header: { 'X-Note': 'x'.repeat(MAX_RENDERED_VALUE_CHARS + 50) } });
    expect(long.length).toBe(MAX_RENDERED_VALUE_CHARS + 2);
  });

  it('renders numbers and renders missing or null plain values as empty', () => {
    const t = compileTemplate('{{callId}}|{{caller}}|{{callee}}', { allowed });
    expect(t.render({ callId: 7, caller: null })).toBe('7||');
  });
});

describe('callTemplateValues', () => {
  it('fills caller parts, callee, call id, date, time and weekday in the given time zone', () => {
    const v = callTemplateValues({
      caller: '"Ann \\"A\\" Lee" <sip:+4930123@pbx.example.com;user=phone>;tag=abc',
      callee: 'sip:100@pbx.example.com',
      callId: 'c-1',
      headers: { 'X-Customer-Id': '42' },
      variables: { company: 'Example Corp' },
      now: new Date('2026-03-01T23:30:00Z'),
      timeZone: 'Europe/Berlin',
      extra: { digit: '7' },
    });
    expect(v).toMatchObject({
      caller: 'sip:+4930123@pbx.example.com;user=phone',
      callerName: 'Ann "A" Lee',
      callerNumber: '+4930123',
      callee: 'sip:100@pbx.example.com',
      callId: 'c-1',
      date: '2026-03-02',
      time: '00:30',
      weekday: 'Monday',
      digit: '7',
    });
    const t = compileTemplate('{{callerNumber}} {{header.x-customer-id}} {{var.company}} {{digit}}', { allowed });
    expect(t.render(v)).toBe('+4930123 42 Example Corp 7');
  });
});

describe('parseNameAddr', () => {
  it('splits bare URIs, dropping header parameters', () => {
    expect(parseNameAddr('sip:200@pbx;tag=1')).toEqual({ name: '', uri: 'sip:200@pbx', user: '200' });
  });

  it('has no user for a URI without one, and decodes escaped users', () => {
    expect(parseNameAddr('<sip:pbx.example.com>').user).toBe('');
    expect(parseNameAddr('sip:%2B49@pbx').user).toBe('+49');
  });
});

describe('didYouMean', () => {
  it('finds typos, transpositions and snake_case spellings', () => {
    expect(didYouMean('temprature', ['temperature', 'voice'])).toBe('temperature');
    expect(didYouMean('clcokRate', ['clockRate', 'codecs'])).toBe('clockRate');
    expect(didYouMean('turn_detection', ['turnDetection'])).toBe('turnDetection');
  });

  it('suggests nothing for unrelated words', () => {
    expect(didYouMean('banana', ['clockRate', 'codecs'])).toBeUndefined();
  });
});
