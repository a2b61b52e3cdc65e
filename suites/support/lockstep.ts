// The one LockstepProcess of a test run: the real process has one set of
// credentials, one RLIMIT_MEMLOCK and one VmPin, so the model has one too.
import { LockstepProcess, lockstepModeFromEnv } from '../../lib/lockstep/index.ts';
import { modelFactories } from '../../lib/lockstep/models.ts';

let processSingleton: LockstepProcess | undefined;

export function lockstep(): LockstepProcess {
  processSingleton ??= new LockstepProcess(lockstepModeFromEnv(), modelFactories());
  return processSingleton;
}
