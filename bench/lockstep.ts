// The lockstep overhead: time in the model against time in the kernel, over
// the mock profile's VM suites (as printed by the run's lockstep line).
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../lib/package-root.ts';

export function benchLockstepOverhead(): void {
  const out = join(PACKAGE_ROOT, 'out', 'bench-lockstep');
  const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin/iommufd-conformance.js'), 'vm', '--profile', 'mock', '--out', out], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const consoleLog = join(out, 'mock', 'console.log');
  const text = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '';
  const line = /lockstep \(.*$/m.exec(text)?.[0];
  const m = line ? /(\d+\.\d)% of (\d+) operations.*model time \/ kernel time ([\d.]+)%/.exec(line) : null;
  console.log('lockstep overhead (mock profile VM suites):');
  if (!m) {
    console.log(`  not measured: the VM run did not report it (exit ${r.status}; ${r.stderr.trim().split('\n').pop() ?? ''})`);
    return;
  }
  console.log(`  ${m[2]} operations, ${m[1]}% checked against the model; model time / kernel time ${m[3]}%`);
  console.log(`  goal: lockstep overhead under 10%: ${Number(m[3]) < 10 ? 'met' : 'NOT met'}`);
}
