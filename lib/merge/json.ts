// The merged JSON: every run with its identity, parts (the folders, with
// their shard), problems, counts and tests (name, status, and the folder that
// reported it), and the per-kernel parity tables when the mock profile ran.
import type { ParityTable } from '../parity/table.ts';
import { parityCounts } from '../parity/table.ts';
import type { MergedRun } from './types.ts';

export interface KernelParity {
  /** uname -r of the kernel whose mock-profile runs the table reads. */
  kernel: string;
  /** The runs it read (labels). */
  runs: string[];
  table: ParityTable;
}

export function mergedJson(runs: MergedRun[], parity: KernelParity[]): object {
  return {
    format: 1,
    ok: runs.every((r) => r.ok),
    totals: {
      runs: runs.length,
      failedRuns: runs.filter((r) => !r.ok).length,
      pass: runs.reduce((a, r) => a + r.counts.pass, 0),
      fail: runs.reduce((a, r) => a + r.counts.fail, 0),
      skip: runs.reduce((a, r) => a + r.counts.skip, 0),
    },
    runs: runs.map((r) => ({
      label: r.label,
      ok: r.ok,
      identity: r.identity,
      parts: r.parts.map((p) => ({ dir: p.dir, shard: p.identity.shard, finished: p.identity.finished, selection: p.identity.selection })),
      problems: r.problems,
      counts: r.counts,
      tests: r.tests.map((t) => ({ name: t.name, status: t.status, from: t.from })),
    })),
    parity: parity.map((p) => ({ kernel: p.kernel, runs: p.runs, counts: parityCounts(p.table), rows: p.table.rows, extra: p.table.extra })),
  };
}
