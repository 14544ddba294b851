/**
 * The call layer: admission and registry (CallManager), one state machine per call (CallSession),
 * the audio pump (AudioBridge) and the built-in and webhook tools. SIP and AI objects are injected.
 */
export { CallManager, type CallManagerEvents, type CallManagerInit, type CallMetrics, type PlaceCallOptions, type TimingStats } from './CallManager';
export { CallSession, type CallSessionEvents, type CallSessionInit, type CallTimingMetric } from './CallSession';
export { AudioBridge, type AudioBridgeEvents, type AudioBridgeOptions, type AudioBridgeStats, type BargeInReport, type BridgeCall } from './AudioBridge';
export { resolveCallOptions, type CallAiOptions, type CallManagerOptions, type CallerIdentity, type ResolvedCallOptions, type TemplateLike, type Renderable } from './options';
export { promptAt, promptMs } from './prompts';
export { END_REASONS, canTransition, isFinishing, type CallState, type CallStateName, type EndReason } from './state';
export * from './types';
export * from './tools';
