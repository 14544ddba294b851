import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileConfigTemplates, redactConfig } from '../../../src/config';
import { callTemplateValues } from '../../../src/util/template';
import { problems, valid, warnings, withBase } from './helpers';

const openai = (ai: Record<string, unknown> = {}) => ({ provider: 'openai', apiKey: '${K}', ...ai });
const env = { env: { K: 'sk-test' } };

describe('ai.reasoning and ai.parallelToolCalls', () => {
  it('accepts the reference efforts and names a bad one', () => {
    for (const effort of ['minimal', 'low', 'medium', 'high', 'xhigh']) {
      expect(valid(withBase({ ai: openai({ model: 'gpt-realtime-2', reasoning: { effort } }) }), env).ai.reasoning.effort).toBe(effort);
    }
    expect(problems(withBase({ ai: openai({ reasoning: { effort: 'max' } }) }), env)).toEqual([
      expect.stringMatching(/^ai\.reasoning\.effort: .*minimal, low, medium, high, xhigh/),
    ]);
    expect(problems(withBase({ ai: openai({ parallelToolCalls: 'sometimes' }) }), env)).toEqual([expect.stringMatching(/^ai\.parallelToolCalls: /)]);
  });

  it('warns when the model is not a reasoning model', () => {
    expect(warnings(withBase({ ai: openai({ model: 'gpt-realtime', reasoning: { effort: 'high' }, parallelToolCalls: true }) }), env)).toEqual([
      expect.stringMatching(/^ai\.reasoning\.effort: only reasoning-capable models .*gpt-realtime,/),
      expect.stringMatching(/^ai\.parallelToolCalls: only reasoning-capable models/),
    ]);
    expect(warnings(withBase({ ai: openai({ model: 'gpt-realtime-2.1-mini', reasoning: { effort: 'high' }, parallelToolCalls: true }) }), env)).toEqual([]);
    expect(valid(withBase({ ai: openai() }), env).ai.parallelToolCalls).toBeUndefined();
  });
});

describe('ai.prompt', () => {
  it('takes id, version and variables rendered like the instructions', () => {
    const cfg = valid(
      withBase({
        ai: openai({ prompt: { id: 'pmpt_abc123', version: '4', variables: { caller_number: '{{callerNumber}}', company: '{{var.company}}' } } }),
        variables: { company: 'Acme' },
      }),
      env,
    );
    expect(cfg.ai.prompt).toEqual({ id: 'pmpt_abc123', version: '4', variables: { caller_number: '{{callerNumber}}', company: '{{var.company}}' } });
    const t = compileConfigTemplates(cfg).promptVariables;
    const values = callTemplateValues({ caller: 'sip:+4930123@pbx', callee: 'sip:100@pbx', callId: '1', variables: cfg.variables, now: new Date(), timeZone: 'UTC' });
    expect(t.caller_number.render(values)).toBe('+4930123');
    expect(t.company.render(values)).toBe('Acme');
  });

  it('names a variable whose template is bad, and version or variables without an id', () => {
    expect(problems(withBase({ ai: openai({ prompt: { id: 'pmpt_1', variables: { who: '{{var.nope}}' } } }) }), env)).toEqual([
      expect.stringMatching(/^ai\.prompt\.variables\.who: /),
    ]);
    expect(problems(withBase({ ai: openai({ prompt: { version: '2', variables: { a: 'x' } } }) }), env)).toEqual([
      'ai.prompt.version: needs ai.prompt.id',
      'ai.prompt.variables: needs ai.prompt.id',
    ]);
    expect(problems(withBase({ ai: openai({ prompt: { id: 'has space' } }) }), env)).toEqual([expect.stringMatching(/^ai\.prompt\.id: not a valid prompt id/)]);
    expect(problems(withBase({ ai: openai({ prompt: { id: 'p', variables: { '1bad': 'x' } } }) }), env)).toEqual([
      expect.stringMatching(/^ai\.prompt\.variables(\.1bad|\["1bad"\]): /),
    ]);
  });
});

describe('ai.truncation', () => {
  it('defaults to auto and takes a retention ratio with a token limit', () => {
    expect(valid(withBase({ ai: openai() }), env).ai.truncation).toEqual({ type: 'auto' });
    expect(valid(withBase({ ai: openai({ truncation: { type: 'retention_ratio', retentionRatio: 0.8, postInstructionsTokens: 5000 } }) }), env).ai.truncation).toEqual({
      type: 'retention_ratio',
      retentionRatio: 0.8,
      postInstructionsTokens: 5000,
    });
  });

  it('names what is missing, out of range or does not apply', () => {
    expect(problems(withBase({ ai: openai({ truncation: { type: 'retention_ratio' } }) }), env)).toEqual([
      'ai.truncation.retentionRatio: required when ai.truncation.type is retention_ratio (e.g. 0.8)',
    ]);
    expect(problems(withBase({ ai: openai({ truncation: { type: 'retention_ratio', retentionRatio: 1.5 } }) }), env)).toEqual([
      'ai.truncation.retentionRatio: must be between 0 and 1 (got 1.5)',
    ]);
    expect(problems(withBase({ ai: openai({ truncation: { type: 'disabled', retentionRatio: 0.5 } }) }), env)).toEqual([
      'ai.truncation.retentionRatio: only applies to type retention_ratio (type is disabled)',
    ]);
    expect(problems(withBase({ ai: openai({ truncation: { type: 'half' } }) }), env)).toEqual([expect.stringMatching(/^ai\.truncation\.type: /)]);
  });
});

describe('ai.transcription.model', () => {
  it('takes the models a Realtime session accepts and names any other', () => {
    for (const model of ['gpt-4o-mini-transcribe', 'gpt-4o-mini-transcribe-2025-12-15', 'gpt-4o-transcribe', 'gpt-4o-transcribe-diarize', 'gpt-realtime-whisper', 'whisper-1']) {
      expect(valid(withBase({ ai: openai({ transcription: { model } }) }), env).ai.transcription?.model).toBe(model);
    }
    expect(problems(withBase({ ai: openai({ transcription: { model: 'whisper-2' } }) }), env)).toEqual([expect.stringMatching(/^ai\.transcription\.model: .*gpt-realtime-whisper/)]);
  });

  it('refuses a prompt for the models that take none', () => {
    expect(problems(withBase({ ai: openai({ transcription: { model: 'gpt-realtime-whisper', prompt: 'Acme' } }) }), env)).toEqual([
      'ai.transcription.prompt: not supported with ai.transcription.model gpt-realtime-whisper',
    ]);
    expect(problems(withBase({ ai: openai({ transcription: { model: 'gpt-4o-transcribe', prompt: 'Acme' } }) }), env)).toEqual([]);
    expect(valid(withBase({ ai: openai({ transcription: { model: 'gpt-realtime-whisper', delay: 'high' } }) }), env).ai.transcription?.delay).toBe('high');
    expect(problems(withBase({ ai: openai({ transcription: { model: 'gpt-4o-transcribe', delay: 'high' } }) }), env)).toEqual([
      'ai.transcription.delay: only applies to ai.transcription.model gpt-realtime-whisper (model is gpt-4o-transcribe)',
    ]);
    expect(problems(withBase({ ai: openai({ transcription: { model: 'gpt-realtime-whisper', delay: 'slow' } }) }), env)).toEqual([expect.stringMatching(/^ai\.transcription\.delay: /)]);
  });
});

describe('tools.mcp', () => {
  const server = (m: Record<string, unknown> = {}) => ({ label: 'orders', url: 'https://mcp.example.com/mcp', ...m });

  it('loads a server with secret headers from the environment and a token from a file, redacted', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-cfg-'));
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'oauth-token-xyz\n');
    const cfg = valid(
      withBase({
        ai: openai(),
        tools: { mcp: [server({ headers: { 'X-Api-Key': '${MCP_KEY}' }, authorizationFile: tokenFile, allowedTools: ['lookup_order'], approvedTools: ['lookup_order'] })] },
      }),
      { env: { K: 'sk', MCP_KEY: 'header-secret-123' } },
    );
    expect(cfg.tools.mcp[0]).toMatchObject({
      label: 'orders',
      headers: { 'X-Api-Key': 'header-secret-123' },
      authorization: 'oauth-token-xyz',
      requireApproval: 'always',
      approvedTools: ['lookup_order'],
    });
    const shown = JSON.stringify(redactConfig(cfg));
    expect(shown).not.toContain('header-secret-123');
    expect(shown).not.toContain('oauth-token-xyz');
  });

  it('names bad labels, URLs, duplicates and lists that do not apply', () => {
    expect(problems(withBase({ ai: openai(), tools: { mcp: [server({ label: 'my server' })] } }), env)).toEqual([
      expect.stringMatching(/^tools\.mcp\[0\]\.label: not a valid server label/),
    ]);
    expect(problems(withBase({ ai: openai(), tools: { mcp: [server({ url: 'ftp://x' })] } }), env)).toEqual([expect.stringMatching(/^tools\.mcp\[0\]\.url: not an http/)]);
    expect(problems(withBase({ ai: openai(), tools: { mcp: [server(), server()] } }), env)).toEqual([expect.stringMatching(/^tools\.mcp\[1\]: .*orders/)]);
    expect(problems(withBase({ ai: openai(), tools: { mcp: [server({ requireApproval: 'sometimes' })] } }), env)).toEqual([
      expect.stringMatching(/^tools\.mcp\[0\]\.requireApproval: /),
    ]);
    expect(problems(withBase({ ai: openai(), tools: { mcp: [server({ requireApproval: 'always', neverAsk: ['a'] })] } }), env)).toEqual([
      'tools.mcp[0].neverAsk: only applies to requireApproval listed (requireApproval is always)',
    ]);
    expect(problems(withBase({ ai: openai(), tools: { mcp: [server({ requireApproval: 'listed', alwaysAsk: ['a'], neverAsk: ['a'] })] } }), env)).toEqual([
      'tools.mcp[0].neverAsk: a also in alwaysAsk',
    ]);
    expect(problems(withBase({ ai: openai(), tools: { mcp: [server({ headers: { 'X-Key': 'x', 'Bad Header': 'y' } })] } }), env)).toHaveLength(1);
    expect(problems(withBase({ ai: openai(), tools: { mcp: [server({ authorization: 'a', authorizationFile: '/etc/hostname' })] } }), env)).toEqual([
      'tools.mcp[0].authorizationFile: set either authorization or authorizationFile, not both',
    ]);
  });

  it('warns about settings that cannot take effect', () => {
    expect(warnings(withBase({ ai: openai(), tools: { mcp: [server({ requireApproval: 'never', approvedTools: ['a'] })] } }), env)).toEqual([
      'tools.mcp[0].approvedTools: requireApproval is never: no call is asked about, so this list is never used',
    ]);
    expect(warnings(withBase({ ai: openai(), tools: { mcp: [server({ allowedTools: ['a'], approvedTools: ['b'] })] } }), env)).toEqual([
      'tools.mcp[0].approvedTools: not in allowedTools, so never called: b',
    ]);
    expect(warnings(withBase({ tools: { mcp: [server()] } }))).toEqual([expect.stringMatching(/^tools\.mcp\[0\]: MCP servers are called by the Realtime API: ignored with provider echo/)]);
    expect(warnings(withBase({ ai: openai(), tools: { mcp: [server({ url: 'http://mcp.example.com/mcp' })] } }), env)).toEqual([
      expect.stringMatching(/^tools\.mcp\[0\]\.url: http:\/\/ sends/),
    ]);
  });
});
