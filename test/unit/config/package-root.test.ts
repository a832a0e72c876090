// The package's own files are found from the package root, the same folder
// whether the code runs compiled (dist/src/) or as sources (src/).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../../../src/config/package-root.js';

describe('packageRoot', () => {
  it('is the folder of ampguard\'s package.json, from the sources', () => {
    expect(packageRoot()).toBe(resolve('.'));
    expect(JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).name).toBe('ampguard');
  });

  it('is the same folder from the compiled code', async () => {
    const compiled = (await import(join(resolve('.'), 'dist/src/config/package-root.js'))) as { packageRoot: () => string };
    expect(compiled.packageRoot()).toBe(packageRoot());
  });
});
