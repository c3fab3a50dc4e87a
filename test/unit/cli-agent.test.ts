import { describe, expect, it } from 'vitest';
import { parseAgentArgs, UsageError } from '../../src/cli/agent.js';

describe('ipsec-mesh agent flags', () => {
  it('parses standalone and Kubernetes modes', () => {
    expect(parseAgentArgs(['--config-dir', '/etc/x', '--dataplane=none'])).toMatchObject({
      configDir: '/etc/x',
      dataplane: 'none',
      kubernetes: false,
    });
    expect(
      parseAgentArgs([
        '--kubernetes',
        '--node-name=gw-1',
        '--address',
        '192.0.2.1',
        '--address=2001:db8::1',
        '--metrics-port',
        '9464',
      ]),
    ).toMatchObject({ kubernetes: true, nodeName: 'gw-1', addresses: ['192.0.2.1', '2001:db8::1'], metricsPort: 9464 });
  });

  it('takes the IKE and NAT-T ports in Kubernetes mode', () => {
    const k = ['--kubernetes', '--node-name', 'gw-1', '--address', '192.0.2.1'];
    expect(parseAgentArgs([...k, '--ike-port', '2500', '--natt-port=4501'])).toMatchObject({
      ikePort: 2500,
      nattPort: 4501,
    });
    const d = parseAgentArgs(k);
    expect(d.ikePort).toBeUndefined();
    expect(d.nattPort).toBeUndefined();
  });

  it.each([
    [[], /exactly one of --config-dir/],
    [['--config-dir', 'a', '--kubernetes', '--node-name', 'n', '--address', '192.0.2.1'], /exactly one of/],
    [['--kubernetes', '--address', '192.0.2.1'], /needs --node-name/],
    [['--kubernetes', '--node-name', 'n'], /at least one --address/],
    [['--config-dir'], /--config-dir needs a value/],
    [['--config-dir', 'a', '--dataplane', 'dpdk'], /netlink or none/],
    [['--config-dir', 'a', '--metrics-port', '70000'], /port number/],
    [['--config-dir', 'a', '--log-level', 'loud'], /unknown level/],
    [['--config-dir', 'a', '--frobnicate'], /unknown flag '--frobnicate'/],
    [['--kubernetes', '--node-name', 'n', '--address', '192.0.2.1', '--ike-port', '0'], /UDP port number/],
    [['--kubernetes', '--node-name', 'n', '--address', '192.0.2.1', '--ike-port', '65536'], /UDP port number/],
    [['--kubernetes', '--node-name', 'n', '--address', '192.0.2.1', '--natt-port', '45x'], /UDP port number/],
    [['--kubernetes', '--node-name', 'n', '--address', '192.0.2.1', '--ike-port', '4500'], /must differ/],
    [['--kubernetes', '--node-name', 'n', '--address', '192.0.2.1', '--natt-port', '500'], /must differ/],
    [['--config-dir', 'a', '--ike-port', '2500'], /ikePort\/nattPort in AgentSettings/],
  ])('rejects %j with a usage error', (argv, message) => {
    expect(() => parseAgentArgs(argv)).toThrow(UsageError);
    expect(() => parseAgentArgs(argv)).toThrow(message);
  });
});
