import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';

/** A stream that may be a terminal (process.stdout is; a pipe or a test's buffer is not). */
export type OutputStream = Writable & { isTTY?: boolean; columns?: number };

export interface OutputOptions {
  stdout: OutputStream;
  stderr: OutputStream;
  env: NodeJS.ProcessEnv;
}

type Style = (text: string) => string;

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * What the commands print. Results go to stdout (JSON with --json, tables and lines
 * otherwise); notes and progress go to stderr, so that stdout stays parseable. Colour only
 * when stdout is a terminal and NO_COLOR is unset (https://no-color.org); the progress line
 * only when stderr is a terminal.
 */
export class Output {
  readonly colour: boolean;
  readonly paint: { bold: Style; dim: Style; red: Style; green: Style; yellow: Style; cyan: Style };
  private readonly stdout: OutputStream;
  private readonly stderr: OutputStream;
  private readonly liveProgress: boolean;
  private progressShown = false;
  private lastStatus: string | undefined;
  private frame = 0;

  constructor(options: OutputOptions) {
    this.stdout = options.stdout;
    this.stderr = options.stderr;
    const noColor = options.env.NO_COLOR !== undefined && options.env.NO_COLOR !== '';
    this.colour = options.stdout.isTTY === true && !noColor;
    this.liveProgress = options.stderr.isTTY === true;
    const sgr = (open: number, close: number): Style => (this.colour ? (t) => `\x1b[${open}m${t}\x1b[${close}m` : (t) => t);
    this.paint = { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) };
  }

  /** The whole result of a --json command: one JSON document, nothing else on stdout. */
  json(value: unknown): void {
    this.write(this.stdout, `${JSON.stringify(value, null, 2)}\n`);
  }

  /** One JSON document per line, for streams (logs -f --json). */
  jsonLine(value: unknown): void {
    this.write(this.stdout, `${JSON.stringify(value)}\n`);
  }

  line(text = ''): void {
    this.write(this.stdout, `${text}\n`);
  }

  /** A remark about what is happening, on stderr (kept out of stdout and --json). */
  note(text: string): void {
    this.write(this.stderr, `${text}\n`);
  }

  /** Asks on stderr and reads one line of `input` (a terminal: callers check). */
  async ask(input: Readable, question: string): Promise<string> {
    this.endProgress();
    const prompt = createInterface({ input, output: this.stderr });
    try {
      return await prompt.question(question);
    } finally {
      prompt.close();
    }
  }

  /** Columns padded to the widest cell; the header in bold. Cells may carry colour. */
  table(headers: string[], rows: string[][]): void {
    const widths = headers.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
    const render = (cells: string[]) =>
      cells
        .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell))))
        .join('  ')
        .trimEnd();
    this.line(this.paint.bold(render(headers)));
    for (const row of rows) this.line(render(row));
  }

  /**
   * Rewrites one status line on stderr while waiting, with the seconds waited. When stderr is
   * no terminal (CI, a log file), each new status is printed once, on a line of its own.
   */
  progress(text: string, seconds?: number): void {
    if (!this.liveProgress) {
      if (text !== this.lastStatus) this.stderr.write(`${text}${seconds === undefined ? '' : `  ${seconds}s`}\n`);
      this.lastStatus = text;
      return;
    }
    if (seconds !== undefined) text = `${text}  ${seconds}s`;
    const spinner = SPINNER[this.frame++ % SPINNER.length]!;
    const width = this.stderr.columns || 80;
    this.stderr.write(`\r\x1b[2K${spinner} ${text.slice(0, Math.max(10, width - 3))}`);
    this.progressShown = true;
  }

  /** Removes the status line, so that what comes next starts on a clean line. */
  endProgress(): void {
    if (!this.progressShown) return;
    this.stderr.write('\r\x1b[2K');
    this.progressShown = false;
  }

  /** Colours a status word by what it means: green is good, red is broken, yellow is moving. */
  status(status: string): string {
    if (status === 'running' || status === 'active') return this.paint.green(status);
    if (status === 'failed' || status === 'crashed' || status === 'unavailable') return this.paint.red(status);
    if (status === 'deploying' || status === 'starting' || status === 'claimed' || status === 'unclaimed') return this.paint.yellow(status);
    if (status === 'superseded' || status === 'stopped' || status === 'deleting' || status === 'draining' || status === 'stopping') return this.paint.dim(status);
    return status;
  }

  private write(stream: OutputStream, text: string): void {
    this.endProgress();
    stream.write(text);
  }
}

function visibleLength(text: string): number {
  return text.replace(ANSI, '').length;
}

/** "12s ago", "3m ago", "2h ago", "5d ago": how long before `now` a time in ms was. */
export function ago(time: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - time) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** "512 B", "1.5 kB", "12.0 MB". */
export function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)} kB`;
  return `${(n / 1_000_000).toFixed(1)} MB`;
}

/** A failure reason's first line, for a table cell (the lines after it are the app's output). */
export function firstLine(text: string): string {
  const end = text.indexOf('\n');
  return end === -1 ? text : `${text.slice(0, end)} …`;
}
