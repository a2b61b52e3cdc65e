// Which models the lockstep layer runs beside the kernel.
import type { ModelFactories } from './session.ts';

export function modelFactories(): ModelFactories | null {
  return null;
}
