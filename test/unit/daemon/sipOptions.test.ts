import { accountOptions, userAgentOptions } from '../../../src/daemon/sipOptions';
import { validateConfig } from '../../../src/config';
import { withBase } from '../config/helpers';

describe('userAgentOptions / accountOptions: what the SIP layer is given', () => {
  test('sip.transports.tls.method reaches the TLS transport as the lowest version accepted', () => {
    const tls = (method?: string): unknown =>
      userAgentOptions(validateConfig(withBase({ sip: { transports: { tls: { enabled: true, ...(method ? { method } : {}) } } } }))).tls;
    expect(tls()).toMatchObject({ method: 'tlsv1.2' });
    expect(tls('tlsv1.3')).toMatchObject({ method: 'tlsv1.3' });
  });

  test("an account's realm is passed only when written: unset means the registrar's, learned", () => {
    const [unset] = accountOptions(validateConfig(withBase({ accounts: [{ uri: 'sip:100@pbx', registrar: 'sip:pbx' }] })));
    expect(unset!.realm).toBeUndefined();
    const [star] = accountOptions(validateConfig(withBase({ accounts: [{ uri: 'sip:100@pbx', registrar: 'sip:pbx', realm: '*' }] })));
    expect(star!.realm).toBe('*');
  });
});
