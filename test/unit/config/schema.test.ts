import { describeSchema } from '../../../src/config';
import { valid, base } from './helpers';

const entries = describeSchema();
const byPath = new Map(entries.map((e) => [e.path, e]));

function at(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), obj);
}

describe('describeSchema', () => {
  it('lists each key once with a doc line', () => {
    expect(new Set(entries.map((e) => e.path)).size).toBe(entries.length);
    for (const e of entries) expect(e.doc.length).toBeGreaterThan(3);
    expect(byPath.get('accounts[].registrar')).toBeDefined();
    expect(byPath.get('tools.webhooks[].headers')).toBeDefined();
  });

  it('puts unit, range and default in the line', () => {
    expect(byPath.get('ai.turnDetection.silenceDurationMs')!.line).toBe('server_vad: silence that ends a turn (ms, 0–10000, default 500)');
    expect(byPath.get('media.clockRate')!).toMatchObject({ type: 'one of: 8000, 16000, 24000', default: '8000' });
    expect(byPath.get('accounts[].uri')!.line).toMatch(/\(required\)$/);
    expect(byPath.get('ai.transcription')!.default).toBe('on');
  });

  it('documents the defaults the loader actually fills', () => {
    const cfg = valid({ accounts: base().accounts, ai: { apiKey: '${K}' } }, { env: { K: 'k' } });
    const leaves = entries.filter((e) => !e.section && e.default !== undefined && !e.path.includes('[') && !e.path.includes('<'));
    expect(leaves.length).toBeGreaterThan(60);
    for (const e of leaves) {
      const v = at(cfg, e.path);
      const shown = Array.isArray(v) ? `[${v.join(', ')}]` : typeof v === 'object' ? JSON.stringify(v) : String(v);
      if (e.default!.endsWith('..."')) expect(String(v).startsWith(e.default!.slice(1, -4))).toBe(true);
      else expect([e.path, shown]).toEqual([e.path, e.default]);
    }
  });

  it('marks secrets and reload classes', () => {
    const secrets = entries.filter((e) => e.secret).map((e) => e.path);
    expect(secrets).toEqual(['accounts[].password', 'ai.pipeline.stt.apiKey', 'ai.pipeline.chat.apiKey', 'ai.pipeline.tts.apiKey', 'ai.live.delegation.client.apiKey', 'ai.apiKey', 'tools.webhooks[].headers', 'tools.mcp[].headers', 'tools.mcp[].authorization', 'records.postgres.url', 'admin.token']);
    expect(byPath.get('ai.instructions')!.reload).toBe('live');
    expect(byPath.get('variables')!.reload).toBe('live');
    expect(byPath.get('calls.maxConcurrent')!.reload).toBe('live');
    expect(byPath.get('logging.level')!.reload).toBe('live');
    expect(byPath.get('logging.pjsipLevel')!.reload).toBe('restart');
    expect(byPath.get('records.dir')!.reload).toBe('restart');
    expect(byPath.get('records.retentionDays')!.reload).toBe('live');
    expect(byPath.get('accounts[].uri')!.reload).toBe('restart');
    expect(byPath.get('media.codecs')!.reload).toBe('restart');
    expect(byPath.get('admin.port')!.reload).toBe('restart');
  });
});
