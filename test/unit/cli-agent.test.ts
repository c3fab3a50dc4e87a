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
  ])('rejects %j with a usage error', (argv, message) => {
    expect(() => parseAgentArgs(argv)).toThrow(UsageError);
    expect(() => parseAgentArgs(argv)).toThrow(message);
  });
});
