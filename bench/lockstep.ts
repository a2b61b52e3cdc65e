// The lockstep overhead: time in the model against time in the kernel, over
// the mock profile's VM suites (as printed by the run's lockstep line), now
// and before lockstep moved to the system-call boundary (a recorded run of
// main: bench/lockstep-before.json says which). Also the cost of one read of
// VmPin/VmLck here, which lockstep now does after every call that can pin.
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../lib/package-root.ts';
import { vmPinAndLckKiB } from '../lib/sys/proc-status.ts';

interface Before {
  source: string;
  timed: string;
  checkedPercent: number;
  calls: number;
  modelOverKernelPercent: number;
}

/** "97.5% of 1234 calls ... model time / kernel time 40.1%; VmPin/VmLck read N times (M ms)" */
export function parseLockstepLine(line: string): { checked: number; calls: number; ratio: number; reads: number | null; readMs: number | null } | null {
  const m = /(\d+\.\d)% of (\d+) (?:operations|calls).*model time \/ kernel time ([\d.]+)%/.exec(line);
  if (!m) return null;
  const r = /VmPin\/VmLck read (\d+) times \((\d+) ms\)/.exec(line);
  return { checked: Number(m[1]), calls: Number(m[2]), ratio: Number(m[3]), reads: r ? Number(r[1]) : null, readMs: r ? Number(r[2]) : null };
}

export function benchLockstepOverhead(): void {
  const before = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'bench', 'lockstep-before.json'), 'utf8')) as Before;
  const n = 2000;
  vmPinAndLckKiB();
  const t = performance.now();
  for (let i = 0; i < n; i++) vmPinAndLckKiB();
  const perRead = ((performance.now() - t) * 1000) / n;

  const out = join(PACKAGE_ROOT, 'out', 'bench-lockstep');
  const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin/iommufd-conformance.js'), 'vm', '--profile', 'mock', '--out', out], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const consoleLog = join(out, 'mock', 'console.log');
  const text = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '';
  const line = /lockstep \(.*$/m.exec(text)?.[0];
  const now = line ? parseLockstepLine(line) : null;
  console.log('lockstep overhead (mock profile VM suites):');
  console.log(`  before: ${before.calls} calls, ${before.checkedPercent}% checked against the model; model time / kernel time ${before.modelOverKernelPercent}%`);
  console.log(`          (${before.source}; timed: ${before.timed})`);
  if (!now) {
    console.log(`  after:  not measured: the VM run did not report it (exit ${r.status}; ${r.stderr.trim().split('\n').pop() ?? ''})`);
  } else {
    console.log(`  after:  ${now.calls} calls, ${now.checked}% checked against the model; model time / kernel time ${now.ratio}%`);
    if (now.reads !== null) console.log(`          VmPin/VmLck read after ${now.reads} calls that can pin or unpin: ${now.readMs} ms in the guest`);
    console.log(`          (this run: ${out}; timed: kernel time around the ioctl system call alone, model time around the model's`);
    console.log('           ioctl: the ABI decode, the semantic rules and the copy-out; the two ratios weigh different work)');
    console.log(`  goal: lockstep overhead under 10%: ${now.ratio < 10 ? 'met' : 'NOT met'}`);
  }
  console.log(`  one read of VmPin/VmLck from /proc/self/status on this host: ${perRead.toFixed(1)} us`);
}
