// The control plane's stable error codes (CONTRIBUTING.md rule 6): the one
// list. `ampguard: CODE: message` goes to stderr; docs/operations.md's table
// is generated from this list (`npm run gen:docs`) and test/meta/drift.test.ts
// checks every code the docs name against it.
export const ERROR_CODES = {
  E_USAGE: { exit: 2, meaning: 'a command, option or argument the CLI does not take (the usage is printed)' },
  E_CONFIG: { exit: 1, meaning: 'the config is invalid: every problem is named by its key path (YAML errors with line and column), or a forward loop' },
  E_CONFIG_READ: { exit: 1, meaning: 'the config file cannot be read' },
  E_START: { exit: 1, meaning: '`run` cannot start: a listen address is served by another process, the native addon or the kernel set of the block.mode cannot be had' },
  E_KERNEL: { exit: 1, meaning: '`blocks` without a running ampguard: the kernel set cannot be read or changed' },
  E_UNREACHABLE: { exit: 1, meaning: '`blocks`, `top`: nothing answers at metrics.listen (or it answered an error), where the command needs the running process' },
  E_AUTH: { exit: 1, meaning: '`blocks add|del`: the token cannot be read, the server did not prove it holds it, or it refused the proof' },
  E_REFUSED: { exit: 1, meaning: '`blocks add`: the block cannot be made (block.allowlist, block.max_elements, a network not at the aggregate length); `POST /api/blocks` answers 400 with this code' },
  E_WORKERS: { exit: 1, meaning: '`run` with workers > 1: 5 workers died within 60 s; the service ends so its supervisor can act' },
  E_CAPTURE: { exit: 1, meaning: '`replay`: a capture cannot be read or is damaged (file name and byte offset named)' },
} as const satisfies Record<string, { exit: 1 | 2; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function generateErrorTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, e]) => `| \`${code}\` | ${e.exit} | ${e.meaning.replace(/\|/g, '\\|')} |`);
  return ['| code | exit status | when |', '| --- | --- | --- |', ...rows].join('\n');
}
