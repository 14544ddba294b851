/**
 * What a built-in tool may do to its call: the narrow surface {@link CallSession} hands to the
 * end_call and transfer_call handlers (and that unit tests fake).
 */
import type { Logger } from '../../logging/logger';
import type { TransferResult } from '../../sip/types';
import type { EndReason } from '../state';

/** The call, as seen by a tool handler. */
export interface ToolHost {
  /** Our call id. */
  readonly callId: string;
  readonly log: Logger;
  /** True once the call is ending, or a tool has claimed its end (hang up or transfer pending). */
  readonly endClaimed: boolean;
  /** Claim the end of the call for a pending hang-up or transfer; false when already claimed or ending. */
  claimEnd(reason: EndReason): boolean;
  /** Give the claim back (a transfer failed): the conversation goes on. */
  releaseEnd(): void;
  /** Resolves when the agent audio queued so far has played (bounded; also when the call ends). */
  whenPlayoutDrained(): Promise<void>;
  /** Hang up now with `reason` (idempotent). */
  end(reason: EndReason, details?: { transferredTo?: string }): Promise<void>;
  /** Blind transfer (REFER) after the hang-up tail (the far end plays out what it buffered); never rejects. */
  transfer(uri: string): Promise<TransferResult>;
  /** Add a system note to the conversation and ask the model to respond to it. */
  tellModel(text: string): void;
}

/** Resolve with `promise`, or with undefined after `ms` (the timer does not keep the process alive). */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref?.();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}
