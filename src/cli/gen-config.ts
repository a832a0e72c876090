// `ampguard gen-config --out DIR`: writes ampguard.yaml and reference.md from the schema.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateDefaultYaml, generateReferenceMarkdown } from '../config/reference.js';

export function genConfigCommand(outDir: string): number {
  writeFileSync(join(outDir, 'ampguard.yaml'), generateDefaultYaml());
  writeFileSync(join(outDir, 'reference.md'), generateReferenceMarkdown());
  process.stdout.write(`wrote ${join(outDir, 'ampguard.yaml')} and ${join(outDir, 'reference.md')}\n`);
  return 0;
}
