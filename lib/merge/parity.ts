// The parity table per kernel: for every merged run that ran the selftest
// mirror (the mock profile), each kernel selftest case, our test of that name
// and its status in that run (lib/parity/table.ts builds the table; the CLI
// gives the kernel's case list and our mirrored tests).
import type { KernelCase } from '../parity/kernel-cases.ts';
import { buildParity, type CaseStatus, type ParityKernel } from '../parity/table.ts';
import type { KernelParity } from './json.ts';
import type { MergedRun } from './types.ts';

/** A kernel's selftest cases and what the table calls that kernel; null where no source is known for the run. */
export type CasesOfRun = (run: MergedRun) => { cases: KernelCase[]; kernel: ParityKernel; laterCases?: ReadonlySet<string> } | null;

/** One parity table per run that ran the mirror, each against the selftests of the kernel it ran on. */
export function kernelParities(runs: MergedRun[], casesOf: CasesOfRun, ours: Map<string, string>): KernelParity[] {
  const mirror = new Set(ours.keys());
  const out: KernelParity[] = [];
  for (const run of runs) {
    if (!run.tests.some((t) => mirror.has(t.name))) continue;
    const source = casesOf(run);
    if (!source) continue;
    const statuses = new Map<string, CaseStatus>(run.tests.map((t) => [t.name, t.status]));
    const k = run.identity.kernel;
    out.push({
      kernel: `${k.release}${k.flavour && k.flavour !== 'base' ? ` (${k.flavour})` : ''}`,
      runs: [run.label],
      table: buildParity(source.cases, ours, statuses, run.parts.map((p) => p.dir).join(', '), source.kernel, source.laterCases),
    });
  }
  return out;
}
