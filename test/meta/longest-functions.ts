// The longest functions of src/, as the closing notes of a clean-up report
// them: every function, method, constructor, accessor, arrow and function
// expression of src/**/*.ts, measured in source lines from its first line to
// its last (blank lines and comments inside included; a nested function counts
// in its own right and inside its parent). `node dist/test/meta/longest-functions.js [N]`
// prints the N longest (5 by default) after `npm run build`.
import ts from 'typescript';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface FunctionLength {
  readonly file: string;
  readonly name: string;
  readonly line: number;
  readonly lines: number;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function nameOf(node: ts.FunctionLikeDeclaration, sf: ts.SourceFile): string {
  const own = node.name?.getText(sf);
  const parent = node.parent;
  const owner = ts.isClassLike(parent) ? `${parent.name?.getText(sf) ?? '(class)'}.` : '';
  if (ts.isConstructorDeclaration(node)) return `${owner}constructor`;
  if (own !== undefined) return `${owner}${own}`;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyDeclaration(parent) || ts.isPropertyAssignment(parent)) {
    const cls = ts.isPropertyDeclaration(parent) && ts.isClassLike(parent.parent) ? `${parent.parent.name?.getText(sf) ?? '(class)'}.` : '';
    return `${cls}${parent.name.getText(sf)}`;
  }
  return '(anonymous)';
}

/** Every function-like node of `root`'s .ts files with its length in lines, longest first. */
export function functionLengths(root = 'src'): FunctionLength[] {
  const out: FunctionLength[] = [];
  for (const file of sources(root)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
        const fn = node as ts.FunctionLikeDeclaration;
        const first = sf.getLineAndCharacterOfPosition(fn.getStart(sf)).line;
        const last = sf.getLineAndCharacterOfPosition(fn.getEnd()).line;
        out.push({ file: relative('.', file), name: nameOf(fn, sf), line: first + 1, lines: last - first + 1 });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.argv[2] ?? 5);
  for (const f of functionLengths().slice(0, n)) console.log(`${String(f.lines).padStart(4)}  ${f.file}:${f.line}  ${f.name}`);
}
