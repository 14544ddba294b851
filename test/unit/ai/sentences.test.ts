/** SentenceSplitter: sentences out as soon as they are complete, short pieces joined, run-ons cut. */
import { SentenceSplitter } from '../../../src/ai/pipeline/sentences';

test('a sentence is out as soon as its end and the space after it arrive', () => {
  const s = new SentenceSplitter();
  expect(s.push('Hello there, this is ')).toEqual([]);
  expect(s.push('the front desk.')).toEqual([]);
  expect(s.push(' How can I')).toEqual(['Hello there, this is the front desk.']);
  expect(s.push(' help you today? Bye')).toEqual(['How can I help you today?']);
  expect(s.flush()).toBe('Bye');
  expect(s.flush()).toBe('');
});

test('short pieces and abbreviations wait for the next sentence; line breaks end one', () => {
  const s = new SentenceSplitter();
  expect(s.push('Dr. Smith is in. ')).toEqual(['Dr. Smith is in.']);
  expect(s.push('Yes. ')).toEqual([]);
  expect(s.push('Room 3.5 is free!\nNext')).toEqual(['Yes. Room 3.5 is free!']);
  expect(s.push(' line\n')).toEqual([]);
  expect(s.flush()).toBe('Next line');
});

test('a run-on stretch is cut at a comma once it is long, and never grows without bound', () => {
  const s = new SentenceSplitter(12, 60);
  const out = s.push('one two three four five six seven, eight nine ten eleven twelve thirteen fourteen fifteen sixteen');
  expect(out[0]).toBe('one two three four five six seven,');
  const long = new SentenceSplitter(12, 60).push('x'.repeat(200));
  expect(long.every((p) => p.length <= 60)).toBe(true);
  expect(long.join('').length).toBeGreaterThanOrEqual(180);
});

test('full-width and closing punctuation end a sentence too', () => {
  const s = new SentenceSplitter(4);
  expect(s.push('「はい」と言いました。次に')).toEqual(['「はい」と言いました。']);
  expect(s.push(' He said "stop." Then left.')).toEqual(['次に He said "stop."']);
});
