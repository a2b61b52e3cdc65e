// The merged xunit file: one <testsuite> per run and suite (the test name up
// to its first dot), named "RUN-LABEL/SUITE", so CI dashboards that list
// suites keep the run; each <testcase> has the run label in its classname. A
// run that failed outside its tests gets a <testcase name="(run)"> with the
// reasons, so a crashed guest fails the file too.
import { suiteOf, type MergedRun, type MergedTest } from './types.ts';

function xml(s: string): string {
  // Control characters other than tab and newline are not allowed in XML 1.0.
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function testcase(run: MergedRun, suite: string, t: MergedTest): string {
  const open = `    <testcase classname="${xml(`${run.label}.${suite}`)}" name="${xml(t.name)}"`;
  const s = t.status;
  if (s.kind === 'pass') return `${open}/>`;
  if (s.kind === 'skip') return `${open}>\n      <skipped message="${xml(s.reason)}"/>\n    </testcase>`;
  return `${open}>\n      <failure message="${xml(s.message)}">${xml(`${s.message}\n(reported in ${t.from})`)}</failure>\n    </testcase>`;
}

export function renderXunit(runs: MergedRun[]): string {
  const suites: string[] = [];
  let tests = 0;
  let failures = 0;
  let skipped = 0;
  for (const run of runs) {
    const bySuite = new Map<string, MergedTest[]>();
    for (const t of run.tests) bySuite.set(suiteOf(t.name), [...(bySuite.get(suiteOf(t.name)) ?? []), t]);
    for (const [suite, ts] of bySuite) {
      const f = ts.filter((t) => t.status.kind === 'fail').length;
      const s = ts.filter((t) => t.status.kind === 'skip').length;
      tests += ts.length;
      failures += f;
      skipped += s;
      suites.push(
        `  <testsuite name="${xml(`${run.label}/${suite}`)}" tests="${ts.length}" failures="${f}" errors="0" skipped="${s}">\n${ts.map((t) => testcase(run, suite, t)).join('\n')}\n  </testsuite>`,
      );
    }
    if (run.problems.length > 0) {
      tests += 1;
      failures += 1;
      suites.push(
        `  <testsuite name="${xml(`${run.label}/(run)`)}" tests="1" failures="1" errors="0" skipped="0">\n    <testcase classname="${xml(run.label)}" name="(run)">\n      <failure message="${xml(run.problems[0]!)}">${xml(run.problems.join('\n'))}</failure>\n    </testcase>\n  </testsuite>`,
      );
    }
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="iommufd-conformance merge" tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}">\n${suites.join('\n')}\n</testsuites>\n`;
}
