/** Lines of the app's (or its build's) output quoted with a failure. */
export const DETAIL_LINES = 20;
/** A longer line is cut to this many characters. */
const LINE_CHARS = 500;

/** The last lines an instance's app (or build) printed, quoted when it fails: the cause in its own words. */
export class OutputTail {
  private readonly kept: string[] = [];

  constructor(private readonly size = DETAIL_LINES) {}

  remember(line: string): void {
    this.kept.push(line.length > LINE_CHARS ? `${line.slice(0, LINE_CHARS)}…` : line);
    if (this.kept.length > this.size) this.kept.shift();
  }

  get lines(): readonly string[] {
    return this.kept;
  }

  /** A failure's detail: its summary, then `lines` (by default the last lines kept). */
  detail(summary: string, lines: readonly string[] = this.kept): string {
    return lines.length === 0 ? summary : `${summary}\n${lines.join('\n')}`;
  }
}
