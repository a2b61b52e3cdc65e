// The parity table per kernel: for every merged run that ran the selftest
// mirror (the mock profile), each kernel selftest case, our test of that name
// and its status in that run (lib/parity/table.ts builds the table; the CLI
// gives the kernel's case list and our mirrored tests).
import type { KernelCase } from '../parity/kernel-cases.ts';
import { buildParity, type CaseStatus } from '../parity/table.ts';
import type { KernelParity } from './json.ts';
import type { MergedRun } from './types.ts';

export function kernelParities(runs: MergedRun[], kernelCases: KernelCase[], ours: Map<string, string>): KernelParity[] {
  const names = new Set(kernelCases.map((c) => c.name));
  const out: KernelParity[] = [];
  for (const run of runs) {
    if (!run.tests.some((t) => names.has(t.name))) continue;
    const statuses = new Map<string, CaseStatus>(run.tests.map((t) => [t.name, t.status]));
    const k = run.identity.kernel;
    out.push({
      kernel: `${k.release}${k.flavour && k.flavour !== 'base' ? ` (${k.flavour})` : ''}`,
      runs: [run.label],
      table: buildParity(kernelCases, ours, statuses, run.parts.map((p) => p.dir).join(', ')),
    });
  }
  return out;
}
