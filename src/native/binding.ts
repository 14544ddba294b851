/**
 * The one door to native code: the only module that loads the `.node` addon. Everything else
 * takes a {@link NativeBinding} so tests can inject a fake.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { InvalidStateError, SipError } from '../util/errors';
import type { NativeBinding, NativeEvent, NativeResampler, NativeResamplerSpec, NativeUserAgent } from './NativeBinding';

interface AddonModule {
  pjVersion: string;
  UserAgent: new (onEvent: (ev: NativeEvent) => void) => NativeUserAgent;
  Resampler: new (spec: NativeResamplerSpec) => NativeResampler;
  setErrorClasses(sipError: unknown, invalidStateError: unknown): void;
  stopAll(): void;
}

let cached: NativeBinding | undefined;

/** Where the addon is looked for: $SIP_AI_AGENT_ADDON, then build/Release, then build/Debug. */
export function addonCandidates(): string[] {
  const root = path.resolve(__dirname, '..', '..');
  // Compiled output lives in dist/src/native; the repo root is one level further up there.
  const roots = fs.existsSync(path.join(root, 'package.json')) ? [root] : [path.resolve(root, '..')];
  const out: string[] = [];
  if (process.env.SIP_AI_AGENT_ADDON) out.push(path.resolve(process.env.SIP_AI_AGENT_ADDON));
  for (const r of roots) {
    out.push(path.join(r, 'build', 'Release', 'sip_ai_agent.node'));
    out.push(path.join(r, 'build', 'Debug', 'sip_ai_agent.node'));
  }
  return out;
}

/** Load the addon once and return it as a {@link NativeBinding}. Throws a clear error if it is not built. */
export function loadNativeBinding(): NativeBinding {
  if (cached) return cached;
  const candidates = addonCandidates();
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(`the native addon is not built (looked in ${candidates.join(', ')}): run 'npm run build'`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const addon = require(found) as AddonModule;
  addon.setErrorClasses(SipError, InvalidStateError);
  // process.exit() skips Node's environment cleanup hooks: hang up, unregister and destroy the
  // library synchronously on 'exit' so calls get their BYE and the process exits cleanly.
  process.once('exit', () => addon.stopAll());
  cached = {
    pjVersion: addon.pjVersion,
    createUserAgent: (onEvent) => new addon.UserAgent(onEvent),
    createResampler: (spec) => new addon.Resampler(spec),
  };
  return cached;
}

/**
 * Resampler kernel factory backed by the addon (a `ResamplerKernelFactory` of src/audio/Resampler.ts,
 * typed structurally): pass it as `Resampler.create(from, to, { kernel: nativeResamplerKernel })`.
 * Loads the addon on first use; throws like {@link loadNativeBinding} when it is not built.
 */
export function nativeResamplerKernel(spec: NativeResamplerSpec): NativeResampler {
  return loadNativeBinding().createResampler(spec);
}
