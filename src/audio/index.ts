/** The pure audio module: format constants, resampling, G.711, playout queueing, PCM and WAV helpers. */
export * from './format';
export * from './Resampler';
export * from './g711';
export * from './PlayoutBuffer';
export * from './pcm';
export * from './wav';
