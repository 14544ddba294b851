/**
 * The VAD on a generated corpus (see `bench/vad/corpus.ts`): false triggers on noise alone, and
 * misses and onset delays on utterances, clean and over pink noise. The detectors: Silero with its
 * energy gate (the defaults: margin 3 dB), the same with the margin at 6 dB, Silero without the gate, the
 * energy fallback, and the echo backend's energy detector (-40 dBFS) as the baseline.
 *
 * False triggers: speechStart events per minute of noise-only audio. On speech, an utterance is
 * found when a speechStart has `atSample` from {@link EARLY_MS} before its true onset to its end;
 * a start earlier than that is counted apart (it fired on the noise before the speech). Delays
 * against the onset: `atSample - onset` (where the gate's pre-roll is counted from), and
 * `endSample - onset`, when the event fired: the uplink gate forwards nothing before then, so that
 * is the delay the model sees on top of the ungated path.
 *
 * Needs espeak-ng and sox (exit 2 without them). Writes the corpus to a temporary folder, removed
 * at the end unless `--keep`. Prints JSON on stdout, the same figures as Markdown tables on stderr.
 *
 * Run:   npx tsc -p tsconfig.json && node dist/bench/vad-corpus.js [--keep]
 * While some other module does not type-check, compile just this file and what it imports:
 *        npx tsc --outDir dist --rootDir . --target ES2022 --module commonjs --esModuleInterop \
 *          --skipLibCheck --types node bench/vad-corpus.ts && node dist/bench/vad-corpus.js
 */
import * as fs from 'node:fs';
import type { VadStats } from '../src/audio/vad';
import {
  buildCorpus,
  CORPUS_RATE,
  MissingToolError,
  NOISE_LEVELS_DBFS,
  NOISE_TYPES,
  type Clip,
  type Corpus,
  type NoiseClip,
  type SpeechClip,
} from './vad/corpus';
import { runEchoDetector, runVad, type ClipEvents, type DetectorRun } from './vad/detectors';

/** The gate's margin over the noise floor in the `silero+gate6` variant, dB (the default is 3). */
const GATE6_MARGIN_DB = 6;

/** A speechStart this long before the true onset still counts as finding the utterance, ms. */
const EARLY_MS = 250;

const DETECTORS = ['silero+gate', 'silero+gate6', 'silero', 'energy', 'echo-energy'] as const;
type DetectorName = (typeof DETECTORS)[number];

const r1 = (v: number): number => Math.round(v * 10) / 10;
const r2 = (v: number): number => Math.round(v * 100) / 100;
const ms = (samples: number): number => (samples * 1000) / CORPUS_RATE;

/** Nearest-rank quantile of `values` (null when empty). */
function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** Time between each start and the end that follows it (or the clip's end), samples. */
function speakingSamples(e: ClipEvents, length: number): number {
  return e.starts.reduce((sum, s, i) => sum + ((e.ends[i] ?? length) - s.atSample), 0);
}

interface NoiseRow {
  starts: number;
  minutes: number;
  perMinute: number;
  /** Share of the time the detector was in speech (what an uplink gate would send). */
  speakingShare: number;
}

function noiseRow(items: { clip: NoiseClip; events: ClipEvents }[]): NoiseRow {
  const samples = items.reduce((s, x) => s + x.clip.pcm.length, 0);
  const starts = items.reduce((s, x) => s + x.events.starts.length, 0);
  const speaking = items.reduce((s, x) => s + speakingSamples(x.events, x.clip.pcm.length), 0);
  const minutes = samples / CORPUS_RATE / 60;
  return { starts, minutes: r2(minutes), perMinute: r1(starts / minutes), speakingShare: r2(speaking / samples) };
}

/** What one detector made of one utterance. */
interface UtteranceResult {
  clip: string;
  condition: string;
  found: boolean;
  /** No start of its own, but the detector was already in speech at the onset (from an early start). */
  covered: boolean;
  /** Starts more than {@link EARLY_MS} before the onset. */
  early: number;
  atDelayMs: number | null;
  firedDelayMs: number | null;
}

function utteranceResult(clip: SpeechClip, e: ClipEvents): UtteranceResult {
  const early = (CORPUS_RATE * EARLY_MS) / 1000;
  const hit = e.starts.find((s) => s.atSample >= clip.onsetSample - early && s.atSample < clip.endSample);
  const covered = !hit && e.starts.some((s, i) => s.atSample < clip.onsetSample - early && (e.ends[i] ?? Infinity) > clip.onsetSample);
  return {
    clip: clip.name,
    condition: clip.condition,
    found: hit !== undefined,
    covered,
    early: e.starts.filter((s) => s.atSample < clip.onsetSample - early).length,
    atDelayMs: hit ? r1(ms(hit.atSample - clip.onsetSample)) : null,
    firedDelayMs: hit ? r1(ms(hit.endSample - clip.onsetSample)) : null,
  };
}

interface SpeechRow {
  utterances: number;
  found: number;
  missed: string[];
  covered: number;
  earlyStarts: number;
  atDelayP50Ms: number | null;
  atDelayP90Ms: number | null;
  firedDelayP50Ms: number | null;
  firedDelayP90Ms: number | null;
}

function speechRow(results: UtteranceResult[]): SpeechRow {
  const at = results.flatMap((r) => (r.atDelayMs === null ? [] : [r.atDelayMs]));
  const fired = results.flatMap((r) => (r.firedDelayMs === null ? [] : [r.firedDelayMs]));
  return {
    utterances: results.length,
    found: results.filter((r) => r.found).length,
    missed: results.filter((r) => !r.found && !r.covered).map((r) => r.clip),
    covered: results.filter((r) => r.covered).length,
    earlyStarts: results.reduce((s, r) => s + r.early, 0),
    atDelayP50Ms: quantile(at, 0.5),
    atDelayP90Ms: quantile(at, 0.9),
    firedDelayP50Ms: quantile(fired, 0.5),
    firedDelayP90Ms: quantile(fired, 0.9),
  };
}

interface DetectorReport {
  wallMs: number;
  stats?: VadStats;
  falseTriggers: {
    total: NoiseRow;
    /** Babble is speech, heard as background: the total of every other noise. */
    totalWithoutBabble: NoiseRow;
    byType: Record<string, NoiseRow>;
    byLevel: Record<string, NoiseRow>;
    /** Starts per minute by type, then level. */
    perMinute: Record<string, Record<string, number>>;
  };
  speech: { all: SpeechRow; byCondition: Record<string, SpeechRow>; utterances: UtteranceResult[] };
}

function report(corpus: Corpus, run: DetectorRun): DetectorReport {
  const noise = corpus.clips.flatMap((clip, i) => (clip.kind === 'noise' ? [{ clip, events: run.events[i] }] : []));
  const speech = corpus.clips.flatMap((clip, i) => (clip.kind === 'speech' ? [utteranceResult(clip, run.events[i])] : []));
  const byType: Record<string, NoiseRow> = {};
  const perMinute: Record<string, Record<string, number>> = {};
  for (const t of NOISE_TYPES) {
    byType[t] = noiseRow(noise.filter((x) => x.clip.type === t));
    perMinute[t] = Object.fromEntries(NOISE_LEVELS_DBFS.map((db) => [db, noiseRow(noise.filter((x) => x.clip.type === t && x.clip.levelDbfs === db)).perMinute]));
  }
  const byLevel = Object.fromEntries(NOISE_LEVELS_DBFS.map((db) => [db, noiseRow(noise.filter((x) => x.clip.levelDbfs === db))]));
  const conditions = [...new Set(speech.map((r) => r.condition))];
  return {
    wallMs: Math.round(run.wallMs),
    stats: run.stats,
    falseTriggers: { total: noiseRow(noise), totalWithoutBabble: noiseRow(noise.filter((x) => x.clip.type !== 'babble')), byType, byLevel, perMinute },
    speech: {
      all: speechRow(speech),
      byCondition: Object.fromEntries(conditions.map((c) => [c, speechRow(speech.filter((r) => r.condition === c))])),
      utterances: speech,
    },
  };
}

/** `a / b`, or null when `b` is 0. */
function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : r2(a / b);
}

function markdown(reports: Record<DetectorName, DetectorReport>): string {
  const cell = (v: number | null): string => (v === null ? '-' : String(v));
  const lines: string[] = [];
  for (const d of DETECTORS) {
    const r = reports[d];
    const st = r.stats;
    const scored = st ? ` Windows scored by the model: ${st.inferred} of ${st.windows} (${Math.round((100 * st.inferred) / st.windows)} %), dropped: ${st.dropped}.` : '';
    lines.push(`### ${d}`, '', `Ran in ${r.wallMs} ms.${scored}`, '', `| noise | ${NOISE_LEVELS_DBFS.map((db) => `${db} dBFS`).join(' | ')} | starts/min | in speech |`);
    lines.push(`|---|${NOISE_LEVELS_DBFS.map(() => '---').join('|')}|---|---|`);
    for (const t of NOISE_TYPES) {
      const row = r.falseTriggers.byType[t];
      lines.push(`| ${t} | ${NOISE_LEVELS_DBFS.map((db) => r.falseTriggers.perMinute[t][db]).join(' | ')} | ${row.perMinute} | ${Math.round(row.speakingShare * 100)} % |`);
    }
    const tot = r.falseTriggers.total;
    const lv = NOISE_LEVELS_DBFS.map((db) => r.falseTriggers.byLevel[db].perMinute).join(' | ');
    const nb = r.falseTriggers.totalWithoutBabble;
    lines.push(`| **all** | ${lv} | **${tot.perMinute}** (${tot.starts} in ${tot.minutes} min) | ${Math.round(tot.speakingShare * 100)} % |`);
    lines.push(`| all but babble | | | | | ${nb.perMinute} (${nb.starts} in ${nb.minutes} min) | ${Math.round(nb.speakingShare * 100)} % |`, '');
    lines.push('| speech | found | missed | early starts | atSample - onset p50 / p90, ms | fired - onset p50 / p90, ms |', '|---|---|---|---|---|---|');
    for (const [c, s] of [...Object.entries(r.speech.byCondition), ['all', r.speech.all] as const]) {
      // Utterance ids alone in a condition's row, with the condition in the row of all.
      const missed = s.missed.map((m) => (c === 'all' ? m : m.replace(/-[a-z0-9]+$/, ''))).join(', ');
      const covered = s.covered > 0 ? ` (${s.covered} covered by an early start)` : '';
      lines.push(
        `| ${c} | ${s.found}/${s.utterances}${covered} | ${missed} | ${s.earlyStarts} | ${cell(s.atDelayP50Ms)} / ${cell(s.atDelayP90Ms)} | ${cell(s.firedDelayP50Ms)} / ${cell(s.firedDelayP90Ms)} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const t0 = performance.now();
  let corpus: Corpus;
  try {
    corpus = buildCorpus();
  } catch (err) {
    if (err instanceof MissingToolError) {
      process.stderr.write(`vad-corpus: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const builtMs = performance.now() - t0;
  const clips: readonly Clip[] = corpus.clips;
  try {
    const runs: Record<DetectorName, DetectorRun> = {
      'silero+gate': await runVad({}, 'silero', clips),
      'silero+gate6': await runVad({ gate: { marginDb: GATE6_MARGIN_DB } }, 'silero', clips),
      silero: await runVad({ gate: false }, 'silero', clips),
      energy: await runVad({ backend: 'energy' }, 'energy', clips),
      'echo-energy': runEchoDetector(clips),
    };
    const reports = Object.fromEntries(DETECTORS.map((d) => [d, report(corpus, runs[d])])) as Record<DetectorName, DetectorReport>;
    const fpm = (d: DetectorName): number => reports[d].falseTriggers.total.perMinute;
    const fired = (d: DetectorName): number | null => reports[d].speech.all.firedDelayP50Ms;
    const ours = DETECTORS.filter((d) => d !== 'echo-energy');
    const ratios = {
      /** False triggers per minute against the echo detector's. */
      falseTriggersVsEchoEnergy: Object.fromEntries(ours.map((d) => [d, ratio(fpm(d), fpm('echo-energy'))])),
      falseTriggersSileroGateVsEnergyFallback: ratio(fpm('silero+gate'), fpm('energy')),
      falseTriggersGateVsNoGate: ratio(fpm('silero+gate'), fpm('silero')),
      /** Windows the model scored with the gate against without it (all clips). */
      modelWindowsGateVsNoGate: ratio(reports['silero+gate'].stats?.inferred ?? null, reports.silero.stats?.inferred ?? null),
      modelWindowsGate6VsNoGate: ratio(reports['silero+gate6'].stats?.inferred ?? null, reports.silero.stats?.inferred ?? null),
      /** p50 of (fired - onset) against the echo detector's. */
      firedDelayP50VsEchoEnergy: Object.fromEntries(ours.map((d) => [d, ratio(fired(d), fired('echo-energy'))])),
      /** p90 of (fired - onset) with the gate against without it. */
      firedDelayP90GateVsNoGate: ratio(reports['silero+gate'].speech.all.firedDelayP90Ms, reports.silero.speech.all.firedDelayP90Ms),
      firedDelayP90Gate6VsNoGate: ratio(reports['silero+gate6'].speech.all.firedDelayP90Ms, reports.silero.speech.all.firedDelayP90Ms),
    };
    const noiseClips = clips.filter((c) => c.kind === 'noise').length;
    console.log(
      JSON.stringify(
        {
          corpus: {
            dir: keep ? corpus.dir : null,
            noiseClips,
            speechClips: clips.length - noiseClips,
            noiseSeconds: corpus.noiseSeconds,
            speechSeconds: corpus.speechSeconds,
            builtMs: Math.round(builtMs),
          },
          ratios,
          detectors: reports,
        },
        null,
        2,
      ),
    );
    process.stderr.write(`${markdown(reports)}\n`);
  } finally {
    if (!keep) fs.rmSync(corpus.dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`vad-corpus: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
