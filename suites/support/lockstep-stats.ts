// For suites that drive LockstepProcess on stand-ins: their operations must
// not count toward the run's "checked against the model" figure, so the
// run-wide stats are saved before the suite and put back after it.
import { lockstepStats } from '../../lib/lockstep/index.ts';

/** Registers before/after hooks in the calling describe() that leave the run's lockstep stats as they were. */
export function preserveLockstepStats(): void {
  let saved: { mode: string; ops: string; reasons: string };
  before(() => {
    saved = { mode: lockstepStats().mode, ops: JSON.stringify(lockstepStats().ops), reasons: JSON.stringify(lockstepStats().reasons) };
  });
  after(() => {
    lockstepStats().mode = saved.mode;
    lockstepStats().ops = JSON.parse(saved.ops);
    lockstepStats().reasons = JSON.parse(saved.reasons);
    lockstepStats().kernelNs = 0;
    lockstepStats().modelNs = 0;
  });
}
