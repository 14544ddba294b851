import { MAX_HISTORY_LIMIT, parseHistoryQuery } from '../../../src/admin/history';
import { HttpError } from '../../../src/admin/validate';

const parse = (qs: string) => parseHistoryQuery(new URLSearchParams(qs));

function failure(qs: string): { status: number; field: string | undefined; message: string } {
  try {
    parse(qs);
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    const e = err as HttpError;
    return { status: e.status, field: e.field, message: e.message };
  }
  throw new Error(`no error for ${qs}`);
}

describe('parseHistoryQuery', () => {
  it('is undefined without parameters (the plain list)', () => {
    expect(parse('')).toBeUndefined();
  });

  it('reads every filter; a bare until date includes that whole day', () => {
    expect(parse('since=2026-12-01&until=2026-12-05&caller=1000&outcome=caller_hangup,admin_hangup&minDuration=1.5&maxDuration=60&q=refund&limit=10&offset=20')).toEqual({
      since: new Date('2026-12-01T00:00:00Z'),
      until: new Date('2026-12-06T00:00:00Z'),
      caller: '1000',
      outcomes: ['caller_hangup', 'admin_hangup'],
      minDurationMs: 1500,
      maxDurationMs: 60_000,
      text: 'refund',
      limit: 10,
      offset: 20,
    });
  });

  it('takes date-times with a zone', () => {
    expect(parse('since=2026-12-05T10:30:00%2B02:00')?.since).toEqual(new Date('2026-12-05T08:30:00Z'));
  });

  it('has a bounded default page', () => {
    expect(parse('caller=x')).toMatchObject({ limit: 50, offset: 0 });
  });

  it.each([
    ['foo=1', 'foo', /not a known parameter/],
    ['caller=a&caller=b', 'caller', /more than once/],
    ['since=yesterday', 'since', /ISO date/],
    ['since=2026-02-30', 'since', /not a real date/],
    ['until=2026-13-01T00:00:00Z', 'until', /not a real time|ISO date/],
    ['since=2026-12-05&until=2026-12-01', 'until', /after since/],
    ['since=2026-12-05T10:00:00', 'since', /ISO date/],
    ['caller=', 'caller', /empty/],
    [`caller=${'x'.repeat(201)}`, 'caller', /at most 200/],
    ['q=a%00b', 'q', /control characters/],
    ['outcome=', 'outcome', /at least one/],
    ['outcome=Caller-Hangup', 'outcome', /invalid end reason/],
    [`outcome=${Array.from({ length: 17 }, (_, i) => `r${'a'.repeat(i + 1)}`).join(',')}`, 'outcome', /at most 16/],
    ['minDuration=-1', 'minDuration', /number from 0/],
    ['minDuration=abc', 'minDuration', /number/],
    ['maxDuration=1e3', 'maxDuration', /number/],
    ['minDuration=10&maxDuration=5', 'maxDuration', /less than minDuration/],
    ['limit=0', 'limit', /1 to 200/],
    [`limit=${MAX_HISTORY_LIMIT + 1}`, 'limit', /1 to 200/],
    ['limit=2.5', 'limit', /whole number/],
    ['offset=-1', 'offset', /0 to 10000/],
    ['offset=10001', 'offset', /0 to 10000/],
  ])('refuses %s with a 400 naming %s', (qs, field, msg) => {
    const f = failure(qs);
    expect(f.status).toBe(400);
    expect(f.field).toBe(field);
    expect(f.message).toMatch(new RegExp(`invalid query: ${field} `));
    expect(f.message).toMatch(msg);
  });
});
