/** Public face of the AI module: backends, sessions, the Realtime client and event types. */
export * from './AiBackend';
export * from './types';
export * from './audioFormat';
export * from './usage';
export * from './events';
export * from './RealtimeClient';
export * from './SessionLifecycle';
export * from './RealtimeSession';
export * from './EchoBackend';
