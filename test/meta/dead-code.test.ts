// Dead code stays at zero: every export of src/ is reached by the program, and
// every public member of an exported class is used somewhere. Code only the
// tests call is dead too (a test of it proves nothing that runs): an export
// must be imported by another file of src/ or used in its own module. And an
// export no other file imports (src/ or test/) is an API nobody uses: it
// fails too, so `export` is only on what another file needs. Read with the
// TypeScript checker, so aliases, re-exports and `import type` all count; a
// class member that a declared interface or base class names is reached
// through that type.
import { describe, expect, it } from 'vitest';
import ts from 'typescript';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/** Reached from outside the program (entry points, test helpers), each with its reason. */
const ENTRY_POINTS: Record<string, string> = {
  'src/dns/codec.ts decodeMessage': "the tests' full decoder: only src/dns imports dns-packet",
  'src/cli/error-codes.ts generateErrorTable': 'a doc generator, run by test/meta/gen-docs.ts',
  'src/metrics/reference.ts generateMetricsMarkdown': 'a doc generator, run by test/meta/gen-docs.ts',
  'src/enforce/enforcer.ts BlockRefusedError.code': "an error's stable code: pino's error serializer logs it",
  'src/backend/upstream-udp-native.ts NativeUdpUpstream.stats': 'called through a structural type (dataplane.ts)',
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [resolve(p)] : [];
  });
}

interface Use {
  /** referenced from another file of src/ */
  src: boolean;
  /** referenced from test/ */
  test: boolean;
  /** referenced in its own file (besides its declaration) */
  local: boolean;
}

function audit(): string[] {
  const files = [...sources('src'), ...sources('test')];
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile('tsconfig.json', ts.sys.readFile).config, ts.sys, '.');
  const program = ts.createProgram(files, config.options);
  const checker = program.getTypeChecker();
  const uses = new Map<ts.Symbol, Use>();
  const root = (s: ts.Symbol): ts.Symbol => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);

  for (const file of files) {
    const sf = program.getSourceFile(file)!;
    const inTest = relative('.', file).startsWith('test');
    const visit = (node: ts.Node): void => {
      if (ts.isIdentifier(node) || ts.isPrivateIdentifier(node)) {
        const found = checker.getSymbolAtLocation(node);
        if (found !== undefined) {
          // the symbol itself, what it aliases (an import names both), and the declared
          // member behind a transient one (a member reached through an instantiated or mapped type)
          for (const s of new Set([found, root(found), ...checker.getRootSymbols(found)])) {
            const decl = s.declarations?.[0];
            if (decl === undefined || (ts.getNameOfDeclaration(decl) as ts.Node | undefined) === node) continue;
            const u = uses.get(s) ?? { src: false, test: false, local: false };
            if (decl.getSourceFile() === sf) u.local = true;
            else if (inTest) u.test = true;
            else u.src = true;
            uses.set(s, u);
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }

  const dead: string[] = [];
  const judge = (name: string, s: ts.Symbol | undefined, member: boolean): void => {
    if (s === undefined || name in ENTRY_POINTS) return;
    const u = uses.get(s) ?? { src: false, test: false, local: false };
    if (member ? !(u.src || u.local || u.test) : !(u.src || u.local)) {
      dead.push(`${name}: ${u.test ? 'only tests use it' : 'never used'}`);
    } else if (!member && !(u.src || u.test)) {
      dead.push(`${name}: exported, used only in its own file`);
    }
  };
  for (const file of files.filter((f) => relative('.', f).startsWith('src'))) {
    const sf = program.getSourceFile(file)!;
    const rel = relative('.', file);
    for (const st of sf.statements) {
      if (!(ts.getCombinedModifierFlags(st as unknown as ts.Declaration) & ts.ModifierFlags.Export)) continue;
      if (ts.isVariableStatement(st)) {
        for (const d of st.declarationList.declarations) judge(`${rel} ${d.name.getText(sf)}`, checker.getSymbolAtLocation(d.name), false);
        continue;
      }
      const name = (st as ts.DeclarationStatement).name;
      if (name === undefined || !ts.isIdentifier(name)) continue;
      if (!ts.isClassDeclaration(st)) {
        judge(`${rel} ${name.text}`, checker.getSymbolAtLocation(name), false);
        continue;
      }
      judge(`${rel} ${name.text}`, checker.getSymbolAtLocation(name), false);
      // a member a base class or an implemented interface declares is reached through that type
      const inherited = new Set<string>();
      for (const clause of st.heritageClauses ?? []) {
        for (const t of clause.types) for (const p of checker.getTypeAtLocation(t).getProperties()) inherited.add(p.name);
      }
      for (const m of st.members) {
        if (m.name === undefined || ts.isConstructorDeclaration(m) || ts.isPrivateIdentifier(m.name)) continue;
        if (ts.getCombinedModifierFlags(m) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        const text = m.name.getText(sf);
        if (inherited.has(text)) continue;
        judge(`${rel} ${name.text}.${text}`, checker.getSymbolAtLocation(m.name), true);
      }
    }
  }
  return dead;
}

describe('dead code', () => {
  const dead = audit();

  it('every export of src/ is reached by the program and imported by another file, every public class member used (allowlist: ENTRY_POINTS)', () => {
    expect(dead).toEqual([]);
  });
});
