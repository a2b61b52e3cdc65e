// How many operations were checked against the model, per operation name.
// Shared through a global symbol so that the reporter (a CommonJS file that
// must not import TypeScript) can print the share at the end of every run.

export interface OpStats {
  checked: number;
  unchecked: number;
}

export interface LockstepStats {
  mode: string;
  ops: Record<string, OpStats>;
  /** Time spent in kernel calls and in model calls of checked operations, in ns. */
  kernelNs: number;
  modelNs: number;
  /** The closing line for a run (null when no operation went through lockstep). */
  describe(): string | null;
}

const KEY = Symbol.for('iommufd-conformance.lockstep');

export function lockstepStats(): LockstepStats {
  const g = globalThis as unknown as Record<symbol, LockstepStats | undefined>;
  g[KEY] ??= { mode: 'unused', ops: {}, kernelNs: 0, modelNs: 0, describe: () => describeStats() };
  return g[KEY]!;
}

export function countOp(name: string, checked: boolean): void {
  const ops = lockstepStats().ops;
  const s = (ops[name] ??= { checked: 0, unchecked: 0 });
  if (checked) s.checked++;
  else s.unchecked++;
}

/** "checked against the model: 97.5% of 400 operations (unchecked: hwptInvalidate 10)". */
export function describeStats(stats: LockstepStats = lockstepStats()): string | null {
  const entries = Object.entries(stats.ops);
  if (entries.length === 0) return null;
  let checked = 0;
  let total = 0;
  const unchecked: string[] = [];
  for (const [name, s] of entries) {
    checked += s.checked;
    total += s.checked + s.unchecked;
    if (s.unchecked > 0) unchecked.push(`${name} ${s.unchecked}`);
  }
  const share = total === 0 ? 100 : (100 * checked) / total;
  const label = stats.mode === 'model' ? 'MODEL ONLY (no kernel: not a conformance result)' : stats.mode;
  const overhead = stats.kernelNs > 0 ? `; model time / kernel time ${((100 * stats.modelNs) / stats.kernelNs).toFixed(1)}%` : '';
  return `lockstep (${label}): ${share.toFixed(1)}% of ${total} operations checked against the model` +
    (unchecked.length > 0 ? ` (unchecked: ${unchecked.join(', ')})` : '') + overhead;
}
