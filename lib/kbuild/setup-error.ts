/** Something the host lacks, with the command that fixes it. */
export class SetupError extends Error {
  constructor(message: string, readonly fix: string) {
    super(`${message}\n  fix: ${fix}`);
    this.name = 'SetupError';
  }
}
