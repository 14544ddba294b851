import { parseRange } from '../../../src/admin/range';

describe('parseRange', () => {
  it.each([
    ['bytes=0-99', { kind: 'range', start: 0, end: 99 }],
    ['bytes=100-', { kind: 'range', start: 100, end: 999 }],
    ['bytes=-100', { kind: 'range', start: 900, end: 999 }],
    ['bytes=-5000', { kind: 'range', start: 0, end: 999 }],
    ['bytes=900-5000', { kind: 'range', start: 900, end: 999 }],
    ['BYTES = 1 - 2', { kind: 'range', start: 1, end: 2 }],
  ])('reads %s of a 1000-byte file', (h, want) => {
    expect(parseRange(h, 1000)).toEqual(want);
  });

  it.each([
    ['bytes=1000-', 1000],
    ['bytes=5000-6000', 1000],
    ['bytes=-0', 1000],
    ['bytes=0-', 0],
  ])('says %s of a %d-byte file is unsatisfiable', (h, size) => {
    expect(parseRange(h, size)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each([
    undefined,
    '',
    'bytes=',
    'bytes=-',
    'bytes=5-1',
    'bytes=0-1,5-6',
    'items=0-1',
    'bytes=a-b',
    'bytes=0x10-20',
    'bytes=-1-2',
    'bytes=1234567890123456-',
    `bytes=0-1${' '.repeat(300)}`,
  ])('ignores %p and sends the whole file', (h) => {
    expect(parseRange(h, 1000)).toEqual({ kind: 'whole' });
  });
});
