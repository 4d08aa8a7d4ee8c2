/**
 * Thrown by a command whose exit code is not berth's but a program's (berth run exits with the
 * command's code): the entry point prints `message` (when there is one) and exits with `exitCode`.
 */
export class CommandExit extends Error {
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
    this.name = 'CommandExit';
  }
}
