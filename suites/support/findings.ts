// The known kernel findings as the suites meet them (fixtures/findings.json,
// docs/findings/): looked up by id, and reported under the id where a case
// runs into a wrong result that is one of them. A WARN or BUG is reported from
// the kernel log (lib/vm/kernel-log.ts); a wrong result leaves nothing there,
// so the case that works around it says so here, on the run's output and in
// the results folder (findings-reported.jsonl), where lib/vm/run-vm.ts
// counts each id per profile.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadFindings, REPORTED_FINDINGS_FILE, type KernelFinding } from '../../lib/vm/findings.ts';

export function finding(id: string): KernelFinding {
  const f = loadFindings().find((x) => x.id === id);
  if (!f) throw new Error(`fixtures/findings.json has no ${id}`);
  return f;
}

/** Says that the running case met known finding `id`, and what it saw. */
export function reportFinding(id: string, what: string): void {
  const f = finding(id);
  process.stdout.write(`known finding ${f.id} (${f.doc}): ${what}\n`);
  const out = process.env.IOMMUFD_CONFORMANCE_OUT;
  if (out) appendFileSync(join(out, REPORTED_FINDINGS_FILE), `${JSON.stringify({ id: f.id, what })}\n`);
}
