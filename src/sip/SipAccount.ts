import { TypedEmitter } from '../util/TypedEmitter';
import { SipError } from '../util/errors';
import type { NativeUserAgent } from '../native/NativeBinding';
import type { AccountOptions, RegistrationState } from './types';

/** Events of a {@link SipAccount}. */
export type SipAccountEvents = {
  /** Registration state changed (after every REGISTER transaction). */
  registration: [RegistrationState];
  /** The registrar stopped answering OPTIONS keepalives (false) or answers again (true). */
  registrar: [boolean];
  close: [];
};

/** A SIP account of the user agent: an identity that may register and receives calls. */
export class SipAccount extends TypedEmitter<SipAccountEvents> {
  /** Native handle. */
  readonly handle: number;
  /** Options it was created with (password included: never log this object). */
  readonly options: Readonly<AccountOptions>;
  #native: NativeUserAgent;
  #state: RegistrationState = { registered: false, sipCode: 0, reason: '', expiresSec: 0, registrarReachable: true };
  #closed = false;

  /** @internal created by UserAgent.addAccount(). */
  constructor(native: NativeUserAgent, handle: number, options: AccountOptions) {
    super();
    this.#native = native;
    this.handle = handle;
    this.options = options;
  }

  /** Our URI. */
  get uri(): string {
    return this.options.uri;
  }

  /** True when this account registers with a registrar. */
  get registers(): boolean {
    return Boolean(this.options.registrar);
  }

  /** Current registration state. */
  get registration(): RegistrationState {
    return { ...this.#state };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** @internal */
  handleRegState(state: Omit<RegistrationState, 'registrarReachable'>): void {
    this.#state = { ...state, registrarReachable: this.#state.registrarReachable };
    this.emit('registration', this.registration);
  }

  /** @internal */
  handleRegistrar(reachable: boolean): void {
    this.#state = { ...this.#state, registrarReachable: reachable };
    this.emit('registrar', reachable);
  }

  /**
   * Resolve once registered; reject with SipError carrying the registrar's status (e.g. 401, 403)
   * on a final failure, or after timeoutMs.
   */
  waitForRegistration(timeoutMs = 10000): Promise<RegistrationState> {
    if (this.#state.registered) return Promise.resolve(this.registration);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('registration', onReg);
        reject(new SipError(`registration timed out [account:${this.uri}, timeoutMs:${timeoutMs}]`, 408));
      }, timeoutMs);
      const onReg = (s: RegistrationState): void => {
        if (s.registered) {
          clearTimeout(timer);
          this.off('registration', onReg);
          resolve(s);
        } else if (s.sipCode >= 300) {
          clearTimeout(timer);
          this.off('registration', onReg);
          reject(new SipError(`registration failed [account:${this.uri}, status:${s.sipCode}] ${s.reason}`, s.sipCode));
        }
      };
      this.on('registration', onReg);
    });
  }

  /** Send a REGISTER now. */
  async reregister(): Promise<void> {
    await this.#native.setRegistration(this.handle, true);
  }

  /** Unregister and delete the account (idempotent). Calls on it must have ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#native.running) await this.#native.removeAccount(this.handle);
    } finally {
      this.emit('close');
      this.removeAllListeners();
    }
  }

  /** @internal the user agent stopped. */
  markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.emit('close');
    this.removeAllListeners();
  }
}
