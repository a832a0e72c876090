// The root pino logger; modules take children (`log.child({ module })`) and log
// constant messages with the variables in the object, at state changes only.
import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'ampguard' }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
