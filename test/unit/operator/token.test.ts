// Where the token file is: the shipped unit's runtime directory, or beside the config.
import { describe, expect, it } from 'vitest';
import { tokenPath, cliTokenPath } from '../../../src/operator/token.js';

describe('tokenPath', () => {
  it('under systemd, empty metrics.token_file is $RUNTIME_DIRECTORY/token (the first of several)', () => {
    expect(tokenPath('/etc/ampguard/ampguard.yaml', '', { RUNTIME_DIRECTORY: '/run/ampguard' })).toBe('/run/ampguard/token');
    expect(tokenPath('/etc/ampguard/ampguard.yaml', '', { RUNTIME_DIRECTORY: '/run/ampguard:/run/other' })).toBe('/run/ampguard/token');
  });
  it('elsewhere, beside the config file; an explicit path as configured, relative to the config directory', () => {
    expect(tokenPath('/srv/ag/ampguard.yaml', '', {})).toBe('/srv/ag/ampguard.token');
    expect(tokenPath('/srv/ag/ampguard.yaml', '', { RUNTIME_DIRECTORY: 'relative' })).toBe('/srv/ag/ampguard.token');
    expect(tokenPath('/srv/ag/ampguard.yaml', 'sub/t', { RUNTIME_DIRECTORY: '/run/ampguard' })).toBe('/srv/ag/sub/t');
    expect(tokenPath('/srv/ag/ampguard.yaml', '/var/lib/t', {})).toBe('/var/lib/t');
  });
  it('the CLI, outside the unit, finds the same file the service made', () => {
    expect(cliTokenPath('/srv/ag/ampguard.yaml', '/var/lib/t', {})).toBe('/var/lib/t');
    expect(cliTokenPath('/srv/ag/ampguard.yaml', '', { RUNTIME_DIRECTORY: '/run/x' })).toBe('/run/x/token');
  });
});
