/** Voice-activity detection: Silero v5 in a worker thread shared by all calls, energy as fallback. */
export * from './types';
export { createVad, VAD_DEFAULTS } from './createVad';
export { SpeechGate } from './SpeechGate';
export { SpeechSegmenter, VAD_HYSTERESIS, type SpeechSegmenterOptions, type SegmenterChange } from './SpeechSegmenter';
export { NoiseFloor, energyDbfs } from './NoiseFloor';
