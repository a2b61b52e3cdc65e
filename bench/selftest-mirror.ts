// The selftest mirror against the kernel's own C selftest, in one VM: the
// Debian tree's tools/testing/selftests/iommu/iommufd, compiled here, runs
// first, then our mirror of it (suites/vm/mock/selftest, in lockstep), and
// the two wall times are compared (goal: the mirror within 1.5x). The
// mirror runs from the guest bundle, as `iommufd-conformance vm` runs every
// suite (lib/vm/guest-bundle.ts): through tsx instead, every function the
// transform gives a name to costs a defineProperty each time it is made.
//
// The Debian 6.12 tree carries selftests backported from later kernels that
// name uAPI its own headers lack; they are compiled with the stand-ins of
// lib/kselftest/shims.ts (the same build as `iommufd-conformance kselftest`),
// and on this kernel those cases fail, as they do for the C binary anywhere
// on 6.12 - which is why the mirror probes features instead.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../lib/kselftest/build.ts';
import { bundleGuest } from '../lib/vm/guest-bundle.ts';
import { kselftestTree } from '../lib/kselftest/tree.ts';
import type { KernelSeries } from '../lib/kbuild/series.ts';
import { mirrorWallMs, readKtapStatuses, type CaseStatus } from '../lib/parity/table.ts';
import { PACKAGE_ROOT } from '../lib/package-root.ts';

async function buildCSelftest(series: KernelSeries): Promise<string> {
  const tree = await kselftestTree({ kernelVersion: series });
  // The tree's own Makefile, with the stand-ins its selftests need (lib/kselftest/shims.ts), cached.
  const built = buildSuite({ treeDir: tree.dir, treeKey: tree.key, includeDir: tree.includeDir, suite: 'iommu' });
  return join(built.dir, 'iommufd');
}

export async function benchSelftestMirror(series: KernelSeries): Promise<void> {
  console.log(`selftest mirror vs the C selftest (mock profile, one VM, linux-source-${series}):`);
  let binary: string;
  try {
    binary = await buildCSelftest(series);
  } catch (err) {
    console.log(`  not measured: cannot build the C selftest: ${(err as Error).message.split('\n')[0]}`);
    return;
  }
  const out = join(PACKAGE_ROOT, 'out', 'bench-selftest');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const guestOut = join(out, 'mock');
  const manifest = await bundleGuest(out, (line) => console.log(`  ${line}`));
  // Run in the guest; the results folder is the one path it can write.
  const script = [
    'set -u',
    `cd ${JSON.stringify(guestOut)}`,
    's=$(date +%s%N)',
    `${JSON.stringify(binary)} > c-selftest.ktap 2>&1`,
    'e=$(date +%s%N)',
    'echo $(( (e - s) / 1000000 )) > c-selftest.ms',
    `cd ${JSON.stringify(PACKAGE_ROOT)}`,
    `node ${JSON.stringify(manifest.main)} run --profile mock --manifest ${JSON.stringify(manifest.path)} --grep '^(iommufd|vfio_compat)' --out ${JSON.stringify(join(guestOut, 'mirror'))} > ${JSON.stringify(join(guestOut, 'mirror.log'))} 2>&1`,
  ].join('\n');
  writeFileSync(join(out, 'run.sh'), `${script}\n`);
  const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin/iommufd-conformance.js'), 'vm', '--kernel-version', series, '--profile', 'mock', '--out', out, '--exec', `sh ${join(out, 'run.sh')}`], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const cMsFile = join(guestOut, 'c-selftest.ms');
  const timing = join(guestOut, 'mirror', 'timing.json');
  if (!existsSync(cMsFile) || !existsSync(timing)) {
    console.log(`  not measured: the VM run did not leave both times (exit ${r.status}; see ${out})`);
    return;
  }
  const cMs = Number(readFileSync(cMsFile, 'utf8').trim());
  const totals = /# Totals: pass:(\d+) fail:(\d+) xfail:\d+ xpass:\d+ skip:(\d+)/.exec(readFileSync(join(guestOut, 'c-selftest.ktap'), 'utf8'));
  const mirrorMs = mirrorWallMs(timing);
  const summary = /summary: .*/.exec(readFileSync(join(guestOut, 'mirror.log'), 'utf8'))?.[0] ?? '';
  console.log(`  C selftest (Debian tree, 190 cases): ${(cMs / 1000).toFixed(2)} s${totals ? ` (pass ${totals[1]}, fail ${totals[2]}, skip ${totals[3]})` : ''}`);
  console.log(`  our mirror in lockstep:              ${(mirrorMs / 1000).toFixed(2)} s (${summary})`);
  const lockstep = /lockstep \(.*$/m.exec(readFileSync(join(guestOut, 'mirror.log'), 'utf8'))?.[0];
  if (lockstep) console.log(`  ${lockstep}`);
  // Where the C binary fails for a feature this kernel lacks, the mirror must skip naming it.
  const named = (file: string, kind: CaseStatus['kind']) => new Set([...readKtapStatuses(file)].filter(([, s]) => s.kind === kind).map(([n]) => n));
  const cFailed = named(join(guestOut, 'c-selftest.ktap'), 'fail');
  const skipped = named(join(guestOut, 'mirror', 'results.ktap'), 'skip');
  const same = cFailed.size === skipped.size && [...cFailed].every((n) => skipped.has(n));
  console.log(`  the C binary's ${cFailed.size} failures ${same ? 'are exactly' : 'are NOT'} the mirror's ${skipped.size} named skips`);
  const ratio = mirrorMs / cMs;
  console.log(`  ratio ${ratio.toFixed(1)}x; goal <= 1.5x: ${ratio <= 1.5 ? 'met' : 'NOT met'}`);
}
