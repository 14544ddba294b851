/** The local VADs of the process: the pipeline's turn-taking and the Realtime backend's input gate. */
import { createVad, type CallVad, type Vad } from '../audio/vad';
import type { ResamplerKernelFactory } from '../audio/Resampler';
import type { AgentConfig } from '../config';
import type { Logger } from '../logging/logger';

/**
 * The neural VADs of the process, one per setting: a reload that keeps the VAD settings keeps the
 * worker (calls in progress keep theirs either way); all are closed when the daemon stops.
 */
export class VadPool {
  readonly #vads = new Map<string, Vad>();

  constructor(
    readonly log: Logger,
    readonly resamplerKernel?: ResamplerKernelFactory,
  ) {}

  /** The pipeline's turn-taking VAD (vad.engine: silero), or undefined. */
  get(cfg: AgentConfig): Vad | undefined {
    const v = cfg.ai.pipeline.vad;
    if (cfg.ai.provider !== 'pipeline' || v.engine !== 'silero') return undefined;
    return this.#vad({ threshold: v.threshold, minSpeechMs: v.minSpeechMs, silenceMs: v.silenceMs, preRollMs: v.preRollMs });
  }

  /**
   * The uplink gate's detector factory (ai.inputGate: vad with the openai provider), or undefined.
   * It stays open a while past the server's own end of turn, so the server hears the silence that
   * ends it.
   */
  gate(cfg: AgentConfig): ((sampleRate: number) => CallVad) | undefined {
    if (cfg.ai.provider !== 'openai' || cfg.ai.inputGate !== 'vad') return undefined;
    const td = cfg.ai.turnDetection;
    const serverSilence = td.type === 'server_vad' ? td.silenceDurationMs : 2000;
    const vad = this.#vad({ threshold: 0.5, minSpeechMs: 150, silenceMs: serverSilence + 500, preRollMs: 300 });
    return (rate) => vad.forCall(rate);
  }

  #vad(opts: { threshold: number; minSpeechMs: number; silenceMs: number; preRollMs: number }): Vad {
    const key = JSON.stringify(opts);
    let vad = this.#vads.get(key);
    if (!vad) {
      vad = createVad({ ...opts, resamplerKernel: this.resamplerKernel, log: this.log });
      this.#vads.set(key, vad);
    }
    return vad;
  }

  /**
   * Wait, at most `timeoutMs`, until every VAD made so far has loaded its model or fallen back to
   * energy, so the first calls are judged by the model rather than by energy while it loads.
   */
  async settle(timeoutMs: number): Promise<void> {
    if (this.#vads.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    const backends = await Promise.race([Promise.all([...this.#vads.values()].map((v) => v.ready)), timedOut]);
    clearTimeout(timer);
    if (backends) this.log.info({ backends }, 'local VAD ready');
    else this.log.warn({ timeoutMs }, 'VAD model still loading; until it is, speech is detected by energy');
  }

  async close(): Promise<void> {
    await Promise.all([...this.#vads.values()].map((v) => v.close()));
    this.#vads.clear();
  }
}
