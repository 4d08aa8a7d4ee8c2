import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** @default 'info' */
  level?: string;
  /** The daemon's name, on every line. */
  name: string;
  /** Where lines go. @default standard output */
  destination?: NodeJS.WritableStream;
}

/** A daemon's JSON logger. Libraries take a logger from their caller and never make one. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      base: { pid: process.pid },
      serializers: { err: pino.stdSerializers.err },
      redact: { paths: ['token', 'password', '*.token', '*.password', 'req.headers.authorization'], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

/** A logger that drops every line, for libraries used without one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
