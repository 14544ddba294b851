/** The SIP layer: a typed, promise-returning face over the native addon. */
export { UserAgent, toNativeConfig } from './UserAgent';
export type { UserAgentEvents } from './UserAgent';
export { SipAccount } from './SipAccount';
export type { SipAccountEvents } from './SipAccount';
export { SipCall } from './SipCall';
export type { SipCallEvents } from './SipCall';
export * from './types';
export type { NativeAdmissionPolicy as AdmissionPolicy, NativeAdmissionStats as AdmissionStats } from '../native/NativeBinding';
