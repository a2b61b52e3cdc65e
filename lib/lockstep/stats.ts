// How many calls were checked against the model, per call name, and why the
// others were not (each reason is on lib/lockstep/unchecked.ts's list).
// Shared through a global symbol so that the reporter (a CommonJS file that
// must not import TypeScript) can print the share at the end of every run.

export interface OpStats {
  checked: number;
  unchecked: number;
}

export interface LockstepStats {
  mode: string;
  ops: Record<string, OpStats>;
  /** Unchecked calls per reason. */
  reasons: Record<string, number>;
  /** Checked calls with output bits the model cannot tell (compared without them), per reason. */
  partly?: Record<string, number>;
  /** Time spent in kernel calls and in model calls of checked operations, in ns. */
  kernelNs: number;
  modelNs: number;
  /** Reads of VmPin/VmLck after a call that can pin or unpin, and the time they took, in ns. */
  accountingReads?: number;
  accountingNs?: number;
  /** The closing line for a run (null when no operation went through lockstep). */
  describe(): string | null;
}

const KEY = Symbol.for('iommufd-conformance.lockstep');

export function lockstepStats(): LockstepStats {
  const g = globalThis as unknown as Record<symbol, LockstepStats | undefined>;
  g[KEY] ??= { mode: 'unused', ops: {}, reasons: {}, kernelNs: 0, modelNs: 0, describe: () => describeStats() };
  g[KEY]!.reasons ??= {};
  return g[KEY]!;
}

export function countOp(name: string, checked: boolean, reason?: string): void {
  const stats = lockstepStats();
  const s = (stats.ops[name] ??= { checked: 0, unchecked: 0 });
  if (checked) s.checked++;
  else {
    s.unchecked++;
    const r = reason ?? name;
    stats.reasons[r] = (stats.reasons[r] ?? 0) + 1;
  }
}

export function countPartly(reason: string): void {
  const stats = lockstepStats();
  stats.partly ??= {};
  stats.partly[reason] = (stats.partly[reason] ?? 0) + 1;
}

/** "lockstep (lockstep): 97.5% of 400 calls checked against the model (unchecked: failed by fault injection 10)". */
export function describeStats(stats: LockstepStats = lockstepStats()): string | null {
  const entries = Object.entries(stats.ops);
  if (entries.length === 0) return null;
  let checked = 0;
  let total = 0;
  for (const [, s] of entries) {
    checked += s.checked;
    total += s.checked + s.unchecked;
  }
  const unchecked = Object.entries(stats.reasons ?? {}).map(([reason, n]) => `${reason} ${n}`);
  const share = total === 0 ? 100 : (100 * checked) / total;
  const label = stats.mode === 'model' ? 'MODEL ONLY (no kernel: not a conformance result)' : stats.mode;
  const overhead = stats.kernelNs > 0 ? `; model time / kernel time ${((100 * stats.modelNs) / stats.kernelNs).toFixed(1)}%` : '';
  const accounting = stats.accountingReads ? `; VmPin/VmLck read ${stats.accountingReads} times (${((stats.accountingNs ?? 0) / 1e6).toFixed(0)} ms)` : '';
  const partly = Object.entries(stats.partly ?? {}).map(([reason, n]) => `${reason} ${n}`);
  return `lockstep (${label}): ${share.toFixed(1)}% of ${total} calls checked against the model` +
    (unchecked.length > 0 ? ` (unchecked: ${unchecked.join(', ')})` : '') +
    (partly.length > 0 ? `; checked but for bits the model cannot tell: ${partly.join(', ')}` : '') + overhead + accounting;
}
