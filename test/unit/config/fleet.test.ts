// fleet.* in the schema: standalone by default; NATS without a site key is a
// config error that names the key; names that go into subjects are checked.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';

const paths = (text: string): string[] => {
  const r = loadConfig(text);
  return r.ok ? [] : r.issues.map((i) => i.path);
};

describe('fleet config', () => {
  it('stands alone by default', () => {
    const r = loadConfig('backends: [{address: "127.0.0.1:53"}]\n');
    expect(r.ok && r.config.fleet).toEqual({ nats: [], site: 'default', node: '', key_file: '' });
  });

  it('names fleet.key_file when NATS is set without it', () => {
    expect(paths('backends: [{address: "127.0.0.1:53"}]\nfleet: {nats: ["nats://127.0.0.1:4222"]}\n')).toEqual(['fleet.key_file']);
    expect(paths('backends: [{address: "127.0.0.1:53"}]\nfleet: {nats: ["nats://127.0.0.1:4222"], key_file: "site.key"}\n')).toEqual([]);
  });

  it('refuses what would break a subject or a URL', () => {
    expect(paths('backends: [{address: "127.0.0.1:53"}]\nfleet: {site: "a.b"}\n')).toEqual(['fleet.site']);
    expect(paths('backends: [{address: "127.0.0.1:53"}]\nfleet: {node: "a b"}\n')).toEqual(['fleet.node']);
    expect(paths('backends: [{address: "127.0.0.1:53"}]\nfleet: {nats: ["127.0.0.1:4222"], key_file: "k"}\n')).toEqual(['fleet.nats.0']);
  });
});
