/**
 * Rules that span keys: settings that are each valid but conflict (G.711 passthrough with a wideband
 * bridge, an exposed admin API without a token, a transfer tool with nowhere to transfer to...), plus
 * derived values and template checks. Each rule reports at the key a sysadmin has to change.
 */

import { ConfigError } from '../util/errors';
import { compileTemplate } from '../util/template';
import { isLoopback, parseSipUri, addrSpec } from './formats';
import { BUILTIN_TOOL_NAMES, type AgentConfig } from './schema';
import { templateSpecs } from './templates';
import { isMapping, type ProblemSink } from './validate';

/** Raw value at a dotted path of the parsed file (to tell "written" from "defaulted"). */
function rawAt(raw: unknown, path: string): unknown {
  let cur = raw;
  for (const k of path.split('.')) {
    if (!isMapping(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

function written(raw: unknown, path: string): boolean {
  const v = rawAt(raw, path);
  return v !== undefined && v !== null;
}

/** Apply every cross-key rule to a walked configuration; fills derived values (account user names). */
export function applyRules(cfg: AgentConfig, raw: unknown, sink: ProblemSink): void {
  transports(cfg, sink);
  accounts(cfg, sink);
  media(cfg, sink);
  ai(cfg, raw, sink);
  tools(cfg, sink);
  calls(cfg, sink);
  records(cfg, raw, sink);
  admin(cfg, sink);
  templates(cfg, raw, sink);
  if (cfg.records.transcripts && cfg.ai.transcription === null) {
    sink.warn('ai.transcription', 'off while records.transcripts is on: transcripts will hold only the agent side');
  }
}

function transports(cfg: AgentConfig, sink: ProblemSink): void {
  const t = cfg.sip.transports;
  if (!t.udp.enabled && !t.tcp.enabled && !t.tls.enabled) {
    sink.report('sip.transports', 'enable at least one of udp, tcp, tls');
  }
  if (t.tcp.enabled && t.tls.enabled && t.tcp.port === t.tls.port && sameBind(t.tcp.bindAddress, t.tls.bindAddress)) {
    sink.report('sip.transports.tls.port', `${t.tls.port} is already used by sip.transports.tcp (both are TCP listeners)`);
  }
  if (t.tls.certFile !== undefined && t.tls.privKeyFile === undefined) sink.report('sip.transports.tls.privKeyFile', 'required with certFile');
  if (t.tls.privKeyFile !== undefined && t.tls.certFile === undefined) sink.report('sip.transports.tls.certFile', 'required with privKeyFile');
  if (t.tls.enabled && t.tls.certFile === undefined) {
    sink.warn('sip.transports.tls.certFile', 'unset: outgoing TLS works, but incoming TLS connections will fail');
  }
}

function sameBind(a: string | undefined, b: string | undefined): boolean {
  return a === undefined || b === undefined || a === b;
}

function accounts(cfg: AgentConfig, sink: ProblemSink): void {
  const enabled = { udp: cfg.sip.transports.udp.enabled, tcp: cfg.sip.transports.tcp.enabled, tls: cfg.sip.transports.tls.enabled };
  cfg.accounts.forEach((a, i) => {
    const p = `accounts[${i}]`;
    if (a.uri === undefined) return;
    const uri = parseSipUri(addrSpec(a.uri));
    if (a.username === undefined && uri?.user !== undefined) a.username = decodeUser(uri.user);
    if (a.transport !== 'auto' && !enabled[a.transport]) {
      sink.report(`${p}.transport`, `${a.transport} is not enabled in sip.transports`);
    }
    for (const key of ['uri', 'registrar', 'proxy'] as const) {
      const v = a[key];
      const u = v === undefined ? undefined : parseSipUri(addrSpec(v));
      if (!u) continue;
      if (u.scheme === 'sips' && !enabled.tls) sink.report(`${p}.${key}`, 'a sips: URI needs sip.transports.tls.enabled');
      const tp = u.params.transport?.toLowerCase();
      if ((tp === 'udp' || tp === 'tcp' || tp === 'tls') && !enabled[tp]) {
        sink.report(`${p}.${key}`, `transport=${tp} is not enabled in sip.transports`);
      }
    }
    if (a.realm === '*') {
      sink.warn(
        `${p}.realm`,
        '* answers a digest challenge from anyone, callers included, who can then try to crack the password offline; leave it unset to answer only the registrar',
      );
    } else if (a.registrar === undefined && a.realm === undefined && a.password !== undefined) {
      sink.warn(`${p}.realm`, 'unset with no registrar: the credentials are never sent; set the realm your trunk or proxy challenges with');
    }
    if (a.registrar !== undefined && a.password === undefined && !sink.hasProblem(`${p}.passwordFile`)) {
      sink.warn(`${p}.password`, 'unset while registering: works only with a registrar that does not challenge');
    }
  });
}

function decodeUser(u: string): string {
  try {
    return decodeURIComponent(u.split(':')[0]!);
  } catch {
    return u;
  }
}

function media(cfg: AgentConfig, sink: ProblemSink): void {
  const m = cfg.media;
  const jb = m.jitterBuffer;
  if (jb.minPrefetchMs > jb.maxPrefetchMs) {
    sink.report('media.jitterBuffer.minPrefetchMs', `must not exceed maxPrefetchMs (${jb.minPrefetchMs} > ${jb.maxPrefetchMs})`);
  }
  if (jb.initMs > jb.maxPrefetchMs) sink.report('media.jitterBuffer.initMs', `must not exceed maxPrefetchMs (${jb.initMs} > ${jb.maxPrefetchMs})`);
  if (jb.maxPrefetchMs > jb.maxMs) sink.report('media.jitterBuffer.maxPrefetchMs', `must not exceed maxMs (${jb.maxPrefetchMs} > ${jb.maxMs})`);

  // RTP takes the even port and RTCP the next odd one (RFC 3550 §11).
  if (m.rtpPortStart % 2 !== 0) sink.report('media.rtpPortStart', `must be even (got ${m.rtpPortStart}; RTP uses even ports, RTCP the next)`);
  if (m.rtpPortStart + m.rtpPortRange > 65536) {
    sink.report('media.rtpPortRange', `rtpPortStart + rtpPortRange must not pass 65536 (got ${m.rtpPortStart + m.rtpPortRange})`);
  }
  const fits = Math.floor(m.rtpPortRange / 2);
  if (fits < cfg.calls.maxConcurrent) {
    sink.report('media.rtpPortRange', `${m.rtpPortRange} ports fit ${fits} calls but calls.maxConcurrent is ${cfg.calls.maxConcurrent} (2 ports per call)`);
  }

  if (m.srtp === 'mandatory' && !cfg.sip.transports.tls.enabled) {
    sink.report('media.srtp', 'mandatory needs sip.transports.tls.enabled: SDES keys must not travel over plain SIP');
  } else if (m.srtp === 'optional' && !cfg.sip.transports.tls.enabled) {
    sink.warn('media.srtp', 'optional without TLS: SRTP is only offered over TLS, so calls will use plain RTP');
  }
  if (m.clockRate === 8000 && m.codecs.some((c) => c === 'G722' || c === 'opus')) {
    sink.warn('media.codecs', 'G722/opus are narrowed to 8 kHz by the bridge; set media.clockRate 16000 to keep wideband');
  }
}

function ai(cfg: AgentConfig, raw: unknown, sink: ProblemSink): void {
  const a = cfg.ai;
  if (a.audioFormat !== 'pcm' && cfg.media.clockRate !== 8000) {
    sink.report('ai.audioFormat', `${a.audioFormat} (G.711 passthrough) needs media.clockRate 8000 (got ${cfg.media.clockRate}); use pcm`);
  }
  if (a.provider === 'openai') {
    if (a.apiKey === undefined) sink.reportOnce('ai.apiKey', 'required when ai.provider is openai (set apiKey or apiKeyFile)');
    const url = tryUrl(a.url);
    if (url?.protocol === 'ws:' && !isLoopback(url.hostname.replace(/^\[|\]$/g, ''))) {
      sink.warn('ai.url', 'ws:// sends the API key and all audio unencrypted; use wss://');
    }
  }
  if (a.inputGate === 'vad' && a.provider !== 'openai') {
    const why = a.provider === 'pipeline' ? 'takes its turns with ai.pipeline.vad' : a.provider === 'openai-live' ? 'hears the whole call, as a full-duplex model must' : 'has no server VAD';
    sink.warn('ai.inputGate', `applies to the openai provider only (${a.provider} ${why})`);
  }
  if (a.provider === 'openai-live') liveRules(cfg, raw, sink);
  if (a.provider === 'pipeline') {
    for (const svc of ['stt', 'chat', 'tts'] as const) {
      const s = a.pipeline[svc];
      const host = tryUrl(s.url)?.hostname ?? '';
      if (s.apiKey === undefined && a.apiKey === undefined && /(^|\.)openai\.com$|\.openai\.azure\.com$/.test(host)) {
        sink.report(`ai.pipeline.${svc}.apiKey`, `required for ${host} (set it, or ai.apiKey for every service)`);
      }
      const url = tryUrl(s.url);
      if (url?.protocol === 'http:' && !isLoopback(url.hostname.replace(/^\[|\]$/g, '')) && (s.apiKey ?? a.apiKey) !== undefined) {
        sink.warn(`ai.pipeline.${svc}.url`, 'http:// sends the API key and the conversation unencrypted; use https:// (or a server on this machine)');
      }
    }
  }
  const td = a.turnDetection;
  const onlyFor: Record<string, string> = {
    threshold: 'server_vad',
    prefixPaddingMs: 'server_vad',
    silenceDurationMs: 'server_vad',
    idleTimeoutMs: 'server_vad',
    eagerness: 'semantic_vad',
  };
  for (const [k, type] of Object.entries(onlyFor)) {
    if (td.type !== type && written(raw, `ai.turnDetection.${k}`)) {
      sink.report(`ai.turnDetection.${k}`, `only applies to type ${type} (type is ${td.type})`);
    }
  }
  if (td.type === 'none' && a.provider === 'openai') {
    // With turn detection off, the client must commit the input buffer and ask for each response;
    // on a phone line nothing here would, so the model would never hear the caller.
    sink.report(
      'ai.turnDetection.type',
      "none is not supported on a phone line: nothing would commit the caller's audio, so the model would never answer; use server_vad or semantic_vad",
    );
  }
  if (td.type === 'none') {
    for (const k of ['createResponse', 'interruptResponse']) {
      if (written(raw, `ai.turnDetection.${k}`)) sink.report(`ai.turnDetection.${k}`, 'does not apply to type none');
    }
  }
}

/** `ai.live`: a key for the endpoint, encrypted transport, and the client delegation's chat model. */
function liveRules(cfg: AgentConfig, raw: unknown, sink: ProblemSink): void {
  const a = cfg.ai;
  const l = a.live;
  if (a.apiKey === undefined) sink.reportOnce('ai.apiKey', 'required when ai.provider is openai-live (set apiKey or apiKeyFile)');
  const url = tryUrl(l.url);
  if (url?.protocol === 'ws:' && !isLoopback(url.hostname.replace(/^\[|\]$/g, ''))) {
    sink.warn('ai.live.url', 'ws:// sends the API key and all audio unencrypted; use wss://');
  }
  if (url && url.search !== '') sink.report('ai.live.url', 'takes no query parameters (the model goes in ai.live.model)');
  if (/\.openai\.azure\.com$/.test(url?.hostname ?? '') && !written(raw, 'ai.auth')) {
    sink.warn('ai.auth', 'an Azure endpoint with bearer auth needs an Entra token in ai.apiKey; for a resource key set api-key');
  }
  // The service takes at most 16,384 tokens of instructions (about 4 characters a token in English).
  if (a.instructions.length > 16_384 * 4) {
    sink.warn('ai.instructions', `${a.instructions.length} characters may be over GPT-Live's 16,384-token limit for instructions; move business rules to ai.live.delegation.responses.instructions`);
  }
  // Realtime keys a GPT-Live configuration may carry over by mistake: they are not used.
  const instead: Record<string, string> = { url: 'ai.live.url', model: 'ai.live.model', prices: 'ai.live.pricePerMinute', turnDetection: 'the model takes its own turns', noiseReduction: 'none', transcription: 'the caller is transcribed by the model', speed: 'none' };
  for (const [k, use] of Object.entries(instead)) {
    if (written(raw, `ai.${k}`)) sink.warn(`ai.${k}`, `not used by openai-live (${use.startsWith('ai.') ? `use ${use}` : use})`);
  }
  if (l.delegation.type === 'client') {
    const c = l.delegation.client;
    const host = tryUrl(c.url)?.hostname ?? '';
    if (c.apiKey === undefined && a.apiKey === undefined && /(^|\.)openai\.com$|\.openai\.azure\.com$/.test(host)) {
      sink.report('ai.live.delegation.client.apiKey', `required for ${host} (set it, or ai.apiKey)`);
    }
    const cu = tryUrl(c.url);
    if (cu?.protocol === 'http:' && !isLoopback(cu.hostname.replace(/^\[|\]$/g, '')) && (c.apiKey ?? a.apiKey) !== undefined) {
      sink.warn('ai.live.delegation.client.url', 'http:// sends the API key and the conversation unencrypted; use https:// (or a server on this machine)');
    }
  }
}

function tryUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

function tools(cfg: AgentConfig, sink: ProblemSink): void {
  const tc = cfg.tools.transferCall;
  const names = Object.keys(tc.targets);
  if (tc.enabled && names.length === 0 && !sink.hasProblem('tools.transferCall.targets')) {
    sink.report('tools.transferCall.targets', 'required when transferCall is enabled (at least one name: sip:uri)');
  }
  if (tc.defaultTarget !== undefined && !names.includes(tc.defaultTarget)) {
    sink.report('tools.transferCall.defaultTarget', `"${tc.defaultTarget}" is not in targets (known: ${names.join(', ') || 'none'})`);
  }
  cfg.tools.webhooks.forEach((w, i) => {
    if ((BUILTIN_TOOL_NAMES as readonly string[]).includes(w.name)) {
      sink.report(`tools.webhooks[${i}].name`, `${w.name} is the name of a built-in tool`);
    }
  });
}

function calls(cfg: AgentConfig, sink: ProblemSink): void {
  const c = cfg.calls;
  if (c.allow.includes('any')) {
    sink.warn('calls.allow', 'any: every address that reaches the SIP port talks to the model (scanners find a public one within hours); list your PBX or trunk addresses instead');
  } else if (c.allow.length === 0 && !cfg.accounts.some((a) => a.registrar !== undefined || a.proxy !== undefined)) {
    sink.warn('calls.allow', 'empty, and no account has a registrar or proxy: every incoming call gets 403; list the addresses of your PBX or trunk');
  }
  if (c.onAiFailure === 'transfer') {
    if (c.transferTarget === undefined) {
      sink.report('calls.transferTarget', 'required when calls.onAiFailure is transfer');
    }
  }
  if (c.transferTarget !== undefined && !(c.transferTarget in cfg.tools.transferCall.targets) && !parseSipUri(c.transferTarget)) {
    sink.report('calls.transferTarget', `"${c.transferTarget}" is neither a tools.transferCall.targets name nor a SIP URI`);
  }
}

function records(cfg: AgentConfig, raw: unknown, sink: ProblemSink): void {
  const given = written(raw, 'records.postgres.url') || written(raw, 'records.postgres.urlFile');
  if (cfg.records.store === 'postgres' && !cfg.records.postgres.url && !given) {
    sink.report('records.postgres.url', 'required when records.store is postgres (or records.postgres.urlFile)');
  }
}

function admin(cfg: AgentConfig, sink: ProblemSink): void {
  const a = cfg.admin;
  if (!a.enabled) return;
  if (!isLoopback(a.listen) && a.token === undefined) {
    sink.reportOnce('admin.token', `required when admin.listen is not loopback (${a.listen}); set token or tokenFile`);
  }
  const t = cfg.sip.transports;
  for (const [name, tr] of [['tcp', t.tcp], ['tls', t.tls]] as const) {
    if (tr.enabled && tr.port === a.port && sameBind(tr.bindAddress, a.listen === 'localhost' ? undefined : a.listen)) {
      sink.report('admin.port', `${a.port} is already used by sip.transports.${name}`);
    }
  }
}

function templates(cfg: AgentConfig, raw: unknown, sink: ProblemSink): void {
  for (const spec of templateSpecs(cfg, written(raw, 'ai.instructionsFile'))) {
    if (sink.hasProblem(spec.path)) continue;
    try {
      compileTemplate(spec.text, { allowed: spec.allowed, path: spec.path });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const p of err.problems) sink.report(p.path, p.message);
    }
  }
}
