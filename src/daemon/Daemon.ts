/**
 * The composition root: builds every part from the configuration, in order, and tears them down
 * in reverse. The only module that constructs concrete classes (UserAgent, backends, CallManager,
 * RecordStore, AdminServer).
 *
 * Start: prompts (a bad WAV is a config error) -> AI backend -> records (recovers what a crash
 * left) -> admission (registrars and proxies resolved) -> SIP user agent (a port in use fails
 * here; the admission policy holds from its first packet) -> accounts -> call manager, with the
 * call records (callRecords.ts) and metrics (callMetrics.ts) following it -> admin API.
 * Stop (SIGTERM): no new calls (503) -> active calls finish up to calls.drainTimeoutSec, then the
 * goodbye prompt and BYE -> admin closed -> every record written -> unregister -> libDestroy.
 */
import { loadNativeBinding } from '../native/binding';
import type { ResamplerKernelFactory } from '../audio/Resampler';
import type { NativeBinding } from '../native/NativeBinding';
import { UserAgent } from '../sip/UserAgent';
import type { SipAccount } from '../sip/SipAccount';
import { OpenAiBackend } from '../ai/AiBackend';
import { EchoBackend } from '../ai/EchoBackend';
import { PipelineBackend } from '../ai/pipeline/PipelineBackend';
import { pipelineOptions } from './pipelineOptions';
import { LiveBackend } from '../ai/live/LiveBackend';
import { liveOptions } from './liveOptions';
import { VadPool } from './vadPool';
import type { AiBackend } from '../ai/AiBackend';
import { CallManager } from '../calls/CallManager';
import type { CallAgent, CallInfo, CallRecorderSink } from '../calls/types';
import { RecordStore, type PostgresRecords } from '../records';
import { AdmissionRelay, SourceAdmission } from './admission';
import { CallRecords } from './callRecords';
import { trackCallMetrics } from './callMetrics';
import { writeLocalToken } from './adminToken';
import { AdminServer, Metrics } from '../admin';
import { diffReloadable, loadConfig, redactConfig, type AgentConfig } from '../config';
import type { Logger } from '../logging/logger';
import { AgentError } from '../util/errors';
import { accountOptions, userAgentOptions } from './sipOptions';
import { startRecordMirror, type RecordMirror } from './recordMirror';
import { adminCalls } from './adminCalls';
import { callManagerOptions } from './callOptions';
import { loadPrompts } from './prompts';
import { VERSION } from './version';

/** Options of {@link Daemon.start}. */
export interface DaemonOptions {
  configPath: string;
  logger: Logger;
  /** Injected in tests; default: the real addon. */
  binding?: NativeBinding;
}

/** Builds the backend `ai.*` asks for. */
/** How long start-up waits for the local VAD's model (a cold load on a busy machine takes seconds). */
const VAD_LOAD_WAIT_MS = 20_000;

function makeBackend(cfg: AgentConfig, vads: VadPool): AiBackend {
  if (cfg.ai.provider === 'pipeline') return new PipelineBackend(pipelineOptions(cfg, vads.get(cfg)));
  if (cfg.ai.provider === 'openai-live') return new LiveBackend(liveOptions(cfg));
  return cfg.ai.provider === 'echo'
    ? new EchoBackend()
    : new OpenAiBackend({ url: cfg.ai.url, model: cfg.ai.model, apiKey: cfg.ai.apiKey ?? '', auth: cfg.ai.auth, connectTimeoutMs: cfg.ai.connectTimeoutMs });
}

/**
 * The backend calls use, swappable on reload (a rotated API key, another endpoint or provider):
 * new calls get sessions from the current one, calls in progress keep theirs.
 */
class ReloadableBackend implements AiBackend {
  #inner: AiBackend;
  constructor(inner: AiBackend) {
    this.#inner = inner;
  }
  get name(): string {
    return this.#inner.name;
  }
  set(inner: AiBackend): void {
    this.#inner = inner;
  }
  createSession(...args: Parameters<AiBackend['createSession']>): ReturnType<AiBackend['createSession']> {
    return this.#inner.createSession(...args);
  }
  async probe(logger: Logger): Promise<void> {
    await this.#inner.probe?.(logger);
  }
}

/** A running sip-ai-agent. */
export class Daemon {
  readonly #log: Logger;
  readonly #configPath: string;
  #cfg: AgentConfig;
  readonly #ua: UserAgent;
  readonly #accounts: SipAccount[];
  readonly #calls: CallManager;
  readonly #records: RecordStore;
  readonly #mirror: RecordMirror | undefined;
  readonly #metrics: Metrics;
  readonly #resamplerKernel: ResamplerKernelFactory;
  readonly #admin: AdminServer | undefined;
  readonly #sink: (info: CallInfo) => CallRecorderSink | undefined;
  /** Settings the recording hook reads per call (live-reloadable). */
  readonly #live: { recordAudio: boolean };
  /** The configuration in force (shared with the admin API's status and health). */
  readonly #current: { cfg: AgentConfig };
  readonly #backend: ReloadableBackend;
  readonly #vads: VadPool;
  readonly #admission: SourceAdmission;
  /** What the process started with: keys that need a restart are compared against it. */
  readonly #startCfg: AgentConfig;
  #stopping: Promise<void> | undefined;

  private constructor(p: {
    resamplerKernel: ResamplerKernelFactory;
    log: Logger;
    configPath: string;
    cfg: AgentConfig;
    ua: UserAgent;
    accounts: SipAccount[];
    calls: CallManager;
    records: RecordStore;
    mirror: RecordMirror | undefined;
    metrics: Metrics;
    admin: AdminServer | undefined;
    sink: (info: CallInfo) => CallRecorderSink | undefined;
    live: { recordAudio: boolean };
    current: { cfg: AgentConfig };
    backend: ReloadableBackend;
    vads: VadPool;
    admission: SourceAdmission;
  }) {
    this.#admission = p.admission;
    this.#current = p.current;
    this.#backend = p.backend;
    this.#vads = p.vads;
    this.#startCfg = p.cfg;
    this.#sink = p.sink;
    this.#live = p.live;
    this.#log = p.log;
    this.#configPath = p.configPath;
    this.#cfg = p.cfg;
    this.#ua = p.ua;
    this.#accounts = p.accounts;
    this.#calls = p.calls;
    this.#records = p.records;
    this.#mirror = p.mirror;
    this.#metrics = p.metrics;
    this.#resamplerKernel = p.resamplerKernel;
    this.#admin = p.admin;
  }

  /** Build and start everything. Throws ConfigError (exit 78) or a runtime error (exit 1). */
  static async start(cfg: AgentConfig, o: DaemonOptions): Promise<Daemon> {
    const log = o.logger;
    const clockRate = Number(cfg.media.clockRate);
    const prompts = loadPrompts(cfg, clockRate);
    const binding = o.binding ?? loadNativeBinding();
    // The live path resamples with the addon's vectorised kernel (same samples as the JS reference).
    const resamplerKernel: ResamplerKernelFactory = (spec) => binding.createResampler(spec);
    const vads = new VadPool(log.child({ mod: 'vad' }), resamplerKernel);
    const backend = new ReloadableBackend(makeBackend(cfg, vads));
    const inputGate = vads.gate(cfg);
    // What the admin API reports and the record hooks read: the configuration in force.
    const current = { cfg };
    const metrics = new Metrics({ instanceId: cfg.instance.id });
    const records = new RecordStore({
      dir: cfg.records.dir,
      retentionDays: cfg.records.retentionDays,
      recordAudio: cfg.records.recordAudio,
      transcripts: cfg.records.transcripts,
      sampleRate: clockRate,
      logger: log.child({ mod: 'records' }),
    });
    await records.start();
    const mirror = await startRecordMirror(cfg, records, log.child({ mod: 'records-db' }));

    // Who may call: resolved before the transports open, so the policy holds from the first packet.
    const relay = new AdmissionRelay();
    const admission = new SourceAdmission({ target: relay, log: log.child({ mod: 'admission' }) });
    await admission.configure(cfg);
    // The local VAD's model loads before the first call can arrive (bounded: energy until it has).
    await vads.settle(VAD_LOAD_WAIT_MS);
    let ua: UserAgent;
    try {
      ua = await UserAgent.start(binding, { ...userAgentOptions(cfg), admission: relay.policy }, log.child({ mod: 'sip' }));
      relay.attach(ua);
    } catch (err) {
      admission.close();
      await vads.close().catch(() => undefined);
      await mirror?.close();
      await records.close();
      throw new AgentError('ERR_SIP_START', `cannot start SIP: ${(err as Error).message}`, { cause: err });
    }
    const accounts: SipAccount[] = [];
    let sinkRef: (info: CallInfo) => CallRecorderSink | undefined = () => undefined;
    const live = { recordAudio: cfg.records.recordAudio };
    let calls: CallManager | undefined;
    let admin: AdminServer | undefined;
    try {
      for (const a of accountOptions(cfg)) {
        const acc = await ua.addAccount(a);
        accounts.push(acc);
        if (acc.registers) {
          metrics.setRegistration(acc.uri, false);
          acc.on('registration', (s) => metrics.setRegistration(acc.uri, s.registered));
          acc.on('registrar', (up) => metrics.setRegistrarReachable(acc.uri, up));
        }
      }
      // Records and metrics follow the calls from before the first one can arrive.
      const callRecords = new CallRecords({ records, current, backendName: () => backend.name, live, changed: mirror ? (id) => mirror.sync.notify(id) : undefined });
      sinkRef = callRecords.sink;
      calls = new CallManager({
        agent: ua as unknown as CallAgent,
        backend,
        options: callManagerOptions(cfg, {
          prompts,
          outboundAccount: accounts[0],
          recorder: callRecords.sink,
          resamplerKernel,
          trustedSource: (a) => admission.trusts(a),
          inputGate,
        }),
        logger: log.child({ mod: 'calls' }),
      });
      callRecords.attach(calls);
      trackCallMetrics({ metrics, calls, ua, clockRate, log });

      if (cfg.admin.enabled) admin = await startAdmin({ cfg, current, calls, metrics, ua, accounts, binding, log, store: mirror?.db, files: records });
    } catch (err) {
      admission.close();
      await admin?.close().catch(() => undefined);
      metrics.close();
      await calls?.close().catch(() => undefined);
      await ua.close().catch(() => undefined);
      await vads.close().catch(() => undefined);
      await mirror?.close().catch(() => undefined);
      await records.close().catch(() => undefined);
      throw err;
    }
    const d = new Daemon({ resamplerKernel, log, configPath: o.configPath, cfg, ua, accounts, calls, records, mirror, metrics, admin, sink: sinkRef, live, current, backend, vads, admission });
    log.info({ version: VERSION, transports: ua.transports, accounts: accounts.map((a) => a.uri), ai: cfg.ai.provider }, 'sip-ai-agent ready');
    return d;
  }

  /** The user agent's transports (ip:port per protocol). */
  get transports(): Readonly<Record<string, string>> {
    return this.#ua.transports;
  }

  /** The admin API's URL, when enabled. */
  get adminUrl(): string | undefined {
    return this.#admin?.address?.url;
  }

  /** SIGHUP: re-read the config; apply what can change live, say what needs a restart. */
  async reload(): Promise<void> {
    let next: AgentConfig;
    try {
      next = loadConfig(this.#configPath);
    } catch (err) {
      this.#log.error({ err: (err as Error).message }, 'reload refused: the configuration is invalid; keeping the running one');
      return;
    }
    const live = diffReloadable(this.#cfg, next).live;
    // Restart-only keys are compared with what the process started with, so a pending restart
    // is reported on every reload until it happens.
    const restart = diffReloadable(this.#startCfg, next).restart;
    if (live.length === 0 && restart.length === 0) {
      this.#log.info('reload: configuration unchanged');
      return;
    }
    try {
      const prompts = loadPrompts(next, Number(this.#startCfg.media.clockRate));
      const options = callManagerOptions(next, {
        prompts,
        outboundAccount: this.#accounts[0],
        recorder: this.#sink,
        resamplerKernel: this.#resamplerKernel,
        trustedSource: (a) => this.#admission.trusts(a),
        inputGate: this.#vads.gate(next),
      });
      await this.#admission.configure(next);
      const aiChanged = live.some((k) => /^ai\.(provider|url|model|apiKey|apiKeyFile|auth|connectTimeoutMs|voice|speed|pipeline\..+|live\..+)$/.test(k));
      const backend = aiChanged ? makeBackend(next, this.#vads) : undefined;
      this.#calls.reload(options);
      if (backend) this.#backend.set(backend);
      this.#records.configure({ retentionDays: next.records.retentionDays, recordAudio: next.records.recordAudio, transcripts: next.records.transcripts });
      this.#live.recordAudio = next.records.recordAudio;
      this.#log.level = next.logging.level;
    } catch (err) {
      this.#log.error({ err: (err as Error).message }, 'reload refused; keeping the running configuration');
      return;
    }
    if (restart.length) this.#log.warn({ keys: restart }, 'reload: these changes need a restart to take effect');
    if (live.length) this.#log.info({ keys: live }, 'reload: applied to new calls (calls in progress keep their settings)');
    this.#cfg = next;
    this.#current.cfg = next;
  }

  /** SIGTERM: drain, write every record, unregister, destroy (idempotent). */
  stop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = (async () => {
        const drainMs = this.#cfg.calls.drainTimeoutSec * 1000;
        this.#log.info({ activeCalls: this.#calls.active, drainTimeoutMs: drainMs }, 'stopping: no new calls, draining');
        try {
          await this.#calls.drain(drainMs);
        } catch (err) {
          this.#log.error({ err: (err as Error).message }, 'drain failed');
        }
        await this.#calls.close().catch((err: Error) => this.#log.error({ err: err.message }, 'closing calls failed'));
        await this.#vads.close().catch(() => undefined);
        this.#admission.close();
        await this.#admin?.close().catch(() => undefined);
        this.#metrics.close();
        await this.#records.flushAll().catch(() => undefined);
        await this.#mirror?.close().catch(() => undefined);
        await this.#records.close().catch(() => undefined);
        await this.#ua.close();
        this.#log.info('stopped');
      })();
    }
    return this.#stopping;
  }
}

/** The admin API of a started daemon (listening when this resolves). */
async function startAdmin(o: {
  cfg: AgentConfig;
  current: { cfg: AgentConfig };
  calls: CallManager;
  metrics: Metrics;
  ua: UserAgent;
  accounts: SipAccount[];
  binding: NativeBinding;
  log: Logger;
  store: PostgresRecords | undefined;
  files: RecordStore;
}): Promise<AdminServer> {
  const { cfg, current, calls, metrics, ua, accounts, binding, log } = o;
  // Transcripts and call control always need a token: without a configured one, a token is
  // generated for the local CLI, readable only by users who may read the records.
  const token = cfg.admin.token ?? (await writeLocalToken(cfg.records.dir));
  const admin = new AdminServer({
    host: cfg.admin.listen,
    port: cfg.admin.port,
    token,
    openPaths: cfg.admin.token ? [] : ['/metrics'],
    calls: adminCalls(calls, o.store, o.files),
    metrics,
    logger: log.child({ mod: 'admin' }),
    health: () => ({
      accounts: accounts.map((a) => ({
        name: a.uri,
        registers: a.registers,
        registered: a.registration.registered,
        status: a.registration.sipCode || undefined,
        reason: a.registration.reason || undefined,
        registrarReachable: a.registration.registrarReachable,
      })),
      aiConfigured: (current.cfg.ai.provider !== 'openai' && current.cfg.ai.provider !== 'openai-live') || Boolean(current.cfg.ai.url && current.cfg.ai.model && current.cfg.ai.apiKey),
      problems: calls.backendDown ? [calls.backendDown] : undefined,
    }),
    status: () => ({
      version: VERSION,
      pjsip: binding.pjVersion,
      node: process.version,
      uptimeSec: Math.round(process.uptime()),
      transports: ua.transports,
      accounts: accounts.map((a) => ({ uri: a.uri, registers: a.registers, ...a.registration })),
      calls: { active: calls.active, draining: calls.draining },
      ai: {
        ...(current.cfg.ai.provider === 'openai-live'
          ? { provider: 'openai-live', model: current.cfg.ai.live.model, url: current.cfg.ai.live.url }
          : { provider: current.cfg.ai.provider, model: current.cfg.ai.model, url: current.cfg.ai.url }),
        down: calls.backendDown ?? null,
      },
      config: redactConfig(current.cfg),
    }),
  });
  await admin.listen();
  return admin;
}
