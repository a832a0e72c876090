#!/usr/bin/env node
// The `ampguard` binary. `run` takes its signals before the rest of the CLI is
// even loaded (see signals.ts), so nothing sent during start is lost or fatal.
import { installEarlySignals } from './signals.js';

if (process.argv.slice(2).includes('run')) installEarlySignals();
await import('./commands.js');
