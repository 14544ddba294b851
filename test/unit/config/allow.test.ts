import { compileAllowList } from '../../../src/config';

describe('compileAllowList', () => {
  it('admits no one when empty (the trusted registrar and proxy addresses are checked elsewhere)', () => {
    const l = compileAllowList([]);
    expect(l.allowAll).toBe(false);
    expect(l.allows({ uri: 'sip:anyone@anywhere', address: '203.0.113.9' })).toBe(false);
  });

  it('admits everyone only with the explicit entry any', () => {
    const l = compileAllowList(['any']);
    expect(l.allowAll).toBe(true);
    expect(l.addresses).toEqual([]);
    expect(l.allows({ uri: 'sip:anyone@anywhere', address: '203.0.113.9' })).toBe(true);
    expect(l.allows({ uri: 'sip:anyone@anywhere' })).toBe(true);
  });

  it('reports its address entries and whether it has From patterns (for the native admission policy)', () => {
    const l = compileAllowList(['192.0.2.0/24', 'sip:*@pbx.example.com', '2001:db8::1']);
    expect(l.addresses).toEqual(['192.0.2.0/24', '2001:db8::1']);
    expect(l.hasUriPatterns).toBe(true);
    expect(compileAllowList(['192.0.2.1']).hasUriPatterns).toBe(false);
  });

  it('matches source addresses by IPv4/IPv6 CIDR, IPv4-mapped addresses included', () => {
    const l = compileAllowList(['192.0.2.0/24', '2001:db8::/32', '198.51.100.7']);
    expect(l.allowAll).toBe(false);
    expect(l.allows({ uri: 'sip:x@y', address: '192.0.2.200' })).toBe(true);
    expect(l.allows({ uri: 'sip:x@y', address: '::ffff:192.0.2.1' })).toBe(true);
    expect(l.allows({ uri: 'sip:x@y', address: '2001:db8:1::5' })).toBe(true);
    expect(l.allows({ uri: 'sip:x@y', address: '198.51.100.7' })).toBe(true);
    expect(l.allows({ uri: 'sip:x@y', address: '198.51.100.8' })).toBe(false);
    expect(l.allows({ uri: 'sip:x@y', address: '192.0.3.1' })).toBe(false);
    expect(l.allows({ uri: 'sip:x@y' })).toBe(false);
  });

  it('matches From URI patterns with * and ?, ignoring display name and parameters', () => {
    const l = compileAllowList(['sip:*@pbx.example.com', 'sip:+4930???@*']);
    expect(l.allows({ uri: '"Ann" <sip:200@PBX.example.com;transport=udp>;tag=1' })).toBe(true);
    expect(l.allows({ uri: 'sip:+4930123@trunk.example.net' })).toBe(true);
    expect(l.allows({ uri: 'sip:+49301234@trunk.example.net' })).toBe(false);
    expect(l.allows({ uri: 'sip:200@evil.example.com' })).toBe(false);
    expect(l.allows({ uri: 'sip:200@pbx.example.com.evil.net' })).toBe(false);
  });

  it('admits when either an address or a URI entry matches', () => {
    const l = compileAllowList(['10.0.0.0/8', 'sip:100@pbx']);
    expect(l.allows({ uri: 'sip:999@other', address: '10.1.2.3' })).toBe(true);
    expect(l.allows({ uri: 'sip:100@pbx', address: '203.0.113.1' })).toBe(true);
    expect(l.allows({ uri: 'sip:999@other', address: '203.0.113.1' })).toBe(false);
  });

  it('throws TypeError on an entry the loader would have rejected', () => {
    expect(() => compileAllowList(['pbx.example.com'])).toThrow(TypeError);
  });
});
