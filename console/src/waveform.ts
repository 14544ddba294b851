/**
 * The recording's waveform: the stereo WAV (16-bit PCM, caller left, agent right) read in the
 * browser, reduced to min/max peaks per column, drawn on a canvas as two lanes.
 */

/** Peaks of one channel: `min[i]`, `max[i]` of column i, in -1..1. */
export interface Lane {
  min: Float32Array;
  max: Float32Array;
}

/** What a WAV file holds, as far as the waveform needs. */
export interface Peaks {
  sampleRate: number;
  durationSec: number;
  lanes: Lane[];
}

/** Most bytes fetched for a waveform (about 30 minutes of 8 kHz stereo); longer recordings play without one. */
export const MAX_WAVEFORM_BYTES = 64 * 1024 * 1024;

/** Peaks of a 16-bit PCM WAV in `columns` columns per channel; throws on another format. */
export function wavPeaks(buf: ArrayBuffer, columns: number): Peaks {
  const v = new DataView(buf);
  const tag = (o: number): string => String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
  if (buf.byteLength < 44 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a WAV file');
  let o = 12;
  let channels = 0;
  let rate = 0;
  let bits = 0;
  let dataAt = -1;
  let dataLen = 0;
  while (o + 8 <= buf.byteLength) {
    const id = tag(o);
    const len = v.getUint32(o + 4, true);
    if (id === 'fmt ') {
      channels = v.getUint16(o + 10, true);
      rate = v.getUint32(o + 12, true);
      bits = v.getUint16(o + 22, true);
    } else if (id === 'data') {
      dataAt = o + 8;
      dataLen = Math.min(len, buf.byteLength - dataAt);
      break;
    }
    o += 8 + len + (len & 1);
  }
  if (dataAt < 0 || bits !== 16 || channels < 1 || rate <= 0) throw new Error('unsupported WAV format (16-bit PCM expected)');
  const frames = Math.floor(dataLen / (2 * channels));
  const cols = Math.max(1, Math.floor(columns));
  const lanes: Lane[] = Array.from({ length: channels }, () => ({ min: new Float32Array(cols), max: new Float32Array(cols) }));
  const pcm = new Int16Array(buf, dataAt, frames * channels);
  const per = frames / cols;
  for (let c = 0; c < cols; c++) {
    const from = Math.floor(c * per);
    const to = Math.max(from + 1, Math.floor((c + 1) * per));
    for (let ch = 0; ch < channels; ch++) {
      let lo = 0;
      let hi = 0;
      for (let f = from; f < to && f < frames; f++) {
        const s = pcm[f * channels + ch];
        if (s < lo) lo = s;
        if (s > hi) hi = s;
      }
      lanes[ch].min[c] = lo / 32768;
      lanes[ch].max[c] = hi / 32768;
    }
  }
  return { sampleRate: rate, durationSec: frames / rate, lanes };
}

/** Lane colours: caller, agent. */
const COLOURS = ['#2a6f97', '#c05621'];

/** Draw the lanes and the playhead at `position` (0..1). */
export function drawWaveform(canvas: HTMLCanvasElement, peaks: Peaks, position: number): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const lanes = peaks.lanes.slice(0, 2);
  const laneH = h / lanes.length;
  const played = Math.round(position * w);
  lanes.forEach((lane, i) => {
    const mid = laneH * i + laneH / 2;
    const cols = lane.min.length;
    ctx.fillStyle = i % 2 ? '#fdf6f0' : '#f0f6fa';
    ctx.fillRect(0, laneH * i, w, laneH);
    for (let x = 0; x < w; x++) {
      const c = Math.min(cols - 1, Math.floor((x / w) * cols));
      const top = mid - lane.max[c] * (laneH / 2 - 2);
      const bottom = mid - lane.min[c] * (laneH / 2 - 2);
      ctx.fillStyle = x <= played ? COLOURS[i % 2] : `${COLOURS[i % 2]}88`;
      ctx.fillRect(x, top, 1, Math.max(1, bottom - top));
    }
    ctx.fillStyle = '#333';
    ctx.font = '12px system-ui, sans-serif';
    ctx.fillText(i === 0 ? 'Caller' : 'Agent', 6, laneH * i + 14);
  });
  ctx.fillStyle = '#d00';
  ctx.fillRect(Math.min(w - 2, played), 0, 2, h);
}
