/** The HTTP admin API: server, metrics, and the client the CLI uses. */
export * from './types';
export * from './AdminServer';
export * from './Metrics';
export * from './client';
export { SseStream, type SseStreamOptions } from './SseStream';
export { SseParser, type SseMessage } from './sseParser';
export { HttpError, evaluateHealth, validatePlaceCall } from './validate';
export { isLoopback, tokenMatches } from './auth';
