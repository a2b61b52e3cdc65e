// The fuzzer's power: every deliberate model mutation of
// suites/fuzz-mutations fuzzed in one mock-profile VM from the same seed, for
// at most 60 s of guest time each; prints the share found and the median
// time to find (goal: at least 90% found, each within 60 s).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../lib/package-root.ts';

interface Row {
  name: string;
  found: boolean;
  seconds: number | null;
}

export function benchFuzzMutations(series: string, seed = 1, seconds = 60): void {
  console.log(`fuzzer vs deliberate model mutations (mock profile, kernel ${series}, one VM, seed ${seed}, <= ${seconds} s each):`);
  const out = join(PACKAGE_ROOT, 'out', 'bench-fuzz');
  rmSync(out, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin/iommufd-conformance.js'), 'fuzz', '--profile', 'mock', '--mutation', 'all', '--seed', String(seed), '--time', `${seconds}s`, '--out', out, '--timeout', '3600', '--kernel-version', series], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const report = join(out, 'mock', 'fuzz.json');
  if (!existsSync(report)) {
    console.log(`  not measured: the VM run left no ${report} (exit ${r.status}; see ${out})`);
    return;
  }
  const j = JSON.parse(readFileSync(report, 'utf8')) as { found: number; total: number; medianSeconds: number | null; mutations: Row[] };
  for (const m of j.mutations) console.log(`  ${m.found ? 'found    ' : 'NOT found'} ${m.name}${m.found ? ` after ${m.seconds?.toFixed(1)} s` : ''}`);
  const share = j.total ? (100 * j.found) / j.total : 0;
  console.log(`  found ${j.found}/${j.total} (${share.toFixed(0)}%); median time to find ${j.medianSeconds === null ? 'n/a' : `${j.medianSeconds.toFixed(1)} s`}; goal >= 90% within ${seconds} s each: ${share >= 90 ? 'met' : 'NOT met'}`);
}
