// Boot to first test under the accelerator `vm` picks (TCG here): a few
// short mock-profile boots, each selecting one quick test, so the figure is
// QEMU start to the reporter's first-test marker (lib/vm/qemu.ts) and not the
// suites' run time. Prints each boot and the median (goal: at most 3 s), with
// QEMU start to the init's ready marker (its mounts done, lib/vm/guest-init.sh)
// beside it to show where the time goes (Node starts before it, before the first
// mount, and waits there for the init's go); load on a shared host
// moves both.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../lib/package-root.ts';

/** One quick test of the mock profile: its suite's set-up is the only work before it. */
export const BOOT_BENCH_GREP = '^smoke\\.mock ';

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Boot {
  bootMs: number;
  firstTestMs: number;
  accel: string;
}

function oneBoot(series: string, out: string): Boot | string {
  rmSync(out, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin/iommufd-conformance.js'), 'vm', '--kernel-version', series, '--profile', 'mock', '--grep', BOOT_BENCH_GREP, '--out', out], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const summary = join(out, 'vm-run.json');
  if (!existsSync(summary)) return `no vm-run.json (exit ${r.status}: ${r.stderr.trim().split('\n').pop() ?? ''})`;
  const run = JSON.parse(readFileSync(summary, 'utf8')) as { accel: string; profiles: { ok: boolean; reasons: string[]; bootMs: number | null; firstTestMs: number | null }[] };
  const p = run.profiles[0];
  if (!p || !p.ok || p.bootMs === null || p.firstTestMs === null) return `the boot failed: ${p?.reasons.join('; ') ?? 'no profile ran'} (see ${out})`;
  return { bootMs: p.bootMs, firstTestMs: p.firstTestMs, accel: run.accel };
}

export function benchBoot(series: string, boots = 3): void {
  console.log(`boot to first test (mock profile, linux-source-${series}, ${boots} boots of --grep '${BOOT_BENCH_GREP}'):`);
  const out = join(PACKAGE_ROOT, 'out', 'bench-boot');
  const done: Boot[] = [];
  for (let i = 0; i < boots; i++) {
    const b = oneBoot(series, out);
    if (typeof b === 'string') {
      console.log(`  boot ${i + 1}: not measured: ${b}`);
      continue;
    }
    done.push(b);
    console.log(`  boot ${i + 1}: QEMU start to the init's mounts done ${(b.bootMs / 1000).toFixed(2)} s, to the first test ${(b.firstTestMs / 1000).toFixed(2)} s`);
  }
  if (done.length === 0) {
    console.log('  not measured: no boot reached its first test');
    return;
  }
  const first = median(done.map((b) => b.firstTestMs)) / 1000;
  const init = median(done.map((b) => b.bootMs)) / 1000;
  console.log(`  median (${done.length} boots, ${done[0]!.accel}): to the mounts done ${init.toFixed(2)} s, from there to the first test ${(first - init).toFixed(2)} s, boot to first test ${first.toFixed(2)} s`);
  console.log(`  goal <= 3 s: ${first <= 3 ? 'met' : 'NOT met'}`);
}
