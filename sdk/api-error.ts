/**
 * An error answer of the berth API, or a failure to reach it. Match on `code`: the stable
 * codes of the error table in docs/api.md, plus `network_error` when no answer came.
 */
export class BerthApiError extends Error {
  readonly code: string;
  /** HTTP status, or 0 when no answer came. */
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BerthApiError';
    this.code = code;
    this.status = status;
  }
}
