// For suites that drive their own LockstepProcess (on stand-ins, or with a
// deliberately wrong model): their calls must not count toward the run's
// "checked against the model" figure, so the run-wide stats are saved before
// the suite and put back after it.
import { lockstepStats } from '../../lib/lockstep/index.ts';

/** Registers before/after hooks in the calling describe() that leave the run's lockstep stats as they were. */
export function preserveLockstepStats(): void {
  let saved: string;
  before(() => {
    const { describe: _describe, ...figures } = lockstepStats();
    saved = JSON.stringify(figures);
  });
  after(() => {
    Object.assign(lockstepStats(), JSON.parse(saved));
  });
}
