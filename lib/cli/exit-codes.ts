// The exit codes of every command (README, "Exit codes"):
//   0 everything ran and passed;
//   1 a test failed, the model diverged, the kernel logged a WARN/BUG/...,
//     or the audit or parity table found a difference;
//   2 usage: an unknown command, option or argument, a bad value;
//   3 the environment or the infrastructure: a missing tool, a failed kernel
//     build, a guest that crashed, timed out or wrote no results. Results are
//     then incomplete, so 3 wins over 1 when both happen.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ProfileOutcome } from '../vm/run-vm.ts';

export const EXIT_PASS = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_ENVIRONMENT = 3;

/** Did the guest fail to deliver results (crash, panic, timeout, nothing written), rather than report failures? */
export function guestInfrastructureFailure(o: ProfileOutcome, resultsDir: string, exec: boolean): string | null {
  if (o.result.timedOut) return 'timed out';
  if (o.result.exitCode === null) return 'stopped without an exit code (crash or panic)';
  if (!exec && !existsSync(join(resultsDir, 'results.json'))) return 'wrote no results';
  return null;
}

/** The exit code of a VM run: 3 if any guest failed to deliver results, else 1 if any profile failed, else 0. */
export function vmExitCode(outcomes: { outcome: ProfileOutcome; resultsDir: string }[], exec = false): number {
  if (outcomes.some(({ outcome, resultsDir }) => guestInfrastructureFailure(outcome, resultsDir, exec) !== null)) return EXIT_ENVIRONMENT;
  return outcomes.every(({ outcome }) => outcome.ok) ? EXIT_PASS : EXIT_FAILED;
}
