// `npm test`: the unit suites on this host, then the VM suites in every
// profile. Outside CI, a host that cannot run the VM (no QEMU, no kernel
// source and not root to install it, no build tools) skips the VM part with
// the reason, counted; with CI=true the VM part is mandatory. After the VM
// run, the audit (type1 against iommufd compat) is built from the raw files
// the audit suites wrote: each unexplained or stale difference is a failure.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_KERNEL_SERIES, type KernelSeries } from '../kbuild/series.ts';
import { SetupError } from '../kbuild/source.ts';
import { DEVICE_PROFILES, NPM_TEST_7_2_AUDIT_EXCLUSIONS, NPM_TEST_PLATFORM_AUDITS, PROFILES, profiles, type DeviceProfile, type ProfileName } from '../vm/profiles.ts';
import { platformKey, publishedParts } from '../audit/published-layout.ts';
import { EXIT_ENVIRONMENT, vmExitCode } from './exit-codes.ts';
import type { KernelChoice } from './options.ts';
import { PACKAGE_ROOT } from './paths.ts';
import { runSuites, testFilesIn } from './run.ts';
import { shardLabel, type Shard } from '../shard.ts';

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** A results folder's counts per test, from the KTAP "# Totals:" line (mocha's json counts a failed hook as a failure of its own). */
function countsOf(resultsJson: string): Counts | null {
  const ktap = join(resultsJson, '..', 'results.ktap');
  if (existsSync(ktap)) {
    const m = /^# Totals: pass:(\d+) fail:(\d+) xfail:\d+ xpass:\d+ skip:(\d+)/m.exec(readFileSync(ktap, 'utf8'));
    if (m) return { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3]) };
  }
  if (!existsSync(resultsJson)) return null;
  const s = JSON.parse(readFileSync(resultsJson, 'utf8')).stats;
  return { passed: s.passes, failed: s.failures, skipped: s.pending };
}

/**
 * The kernel selftest mirror, after the mock profile ran: its parity table
 * (every kernel case, our test, its status), written to OUT/parity.md and
 * printed, and its wall time in the guest.
 */
async function reportMirror(root: string, vmDir: string, series: KernelSeries): Promise<{ lines: string[]; failed: boolean }> {
  const ktap = join(root, vmDir, 'mock', 'results.ktap');
  if (!existsSync(ktap)) return { lines: [`parity (${series}): no mock-profile results to compare`], failed: false };
  const lines: string[] = [];
  let failed = false;
  try {
    const { parityTable } = await import('./parity.ts');
    const { parityHolds, parityLine, parityNote, renderParityMarkdown } = await import('../parity/table.ts');
    const table = await parityTable({ results: ktap, kernelVersion: series });
    const markdown = renderParityMarkdown(table);
    const file = join(root, vmDir === 'vm' ? 'parity.md' : `parity-${series}.md`);
    writeFileSync(file, markdown);
    process.stdout.write(`\n=== parity with ${table.kernel.name}'s tools/testing/selftests/iommu (also in ${file})\n${markdown}`);
    lines.push(parityLine(table));
    const note = parityNote(table);
    if (note) lines.push(`  ${note}`);
    failed = !parityHolds(table);
  } catch (err) {
    if (!(err instanceof SetupError)) throw err;
    lines.push(`parity: not computed: ${err.message.split('\n')[0]} (${err.fix})`);
  }
  const timing = join(root, vmDir, 'mock', 'timing.json');
  if (existsSync(timing) && vmDir === 'vm') {
    const { mirrorWallMs } = await import('../parity/table.ts');
    const mirrorMs = mirrorWallMs(timing);
    lines.push(`selftest mirror: ${(mirrorMs / 1000).toFixed(1)} s of guest wall time in the mock profile, set-up and lockstep included (goal: <= 1.5x the C selftest; npm run bench measures both in one VM)`);
  }
  return { lines, failed };
}

/**
 * npm test boots every profile on the main kernel (--kernel-version, default
 * 6.12) and, besides, 7.2's mock profile (the current kernel series).
 */
export const NPM_TEST_RUNS_7_2_MOCK = true;

export function extraVmRuns(main: KernelSeries): { series: KernelSeries; profiles: ProfileName[] }[] {
  return NPM_TEST_RUNS_7_2_MOCK && main !== '7.2' ? [{ series: '7.2', profiles: ['mock'] }] : [];
}


/** One platform audit npm test runs: `audit --platform PROFILE` on a kernel, into OUT/DIR. */
export interface PlatformAuditRun {
  kernel: KernelChoice;
  profile: DeviceProfile;
  dir: string;
}

/**
 * The platform audits npm test runs, and the published parts it leaves uncompared with the reason:
 * - on the main kernel, NPM_TEST_PLATFORM_AUDITS (the main audit, `viommu`'s, comes from the VM run);
 * - when the main kernel is a Debian series other than 7.2, on Debian's 7.2 the audit of every device
 *   profile whose 7.2 part is published (`parts`: docs/audit/KERNEL/KEY, lib/audit/published-layout.ts
 *   publishedParts), `viommu` included, so that every published 7.2 part is proven current, except those
 *   NPM_TEST_7_2_AUDIT_EXCLUSIONS names (the part is then listed as not compared, with its reason). A 7.2 part
 *   whose platform no device profile records (Profile.auditPlatform) can be compared by no run: a problem.
 */
export function platformAuditRuns(
  main: KernelChoice,
  parts: readonly { kernel: string; key: string; path: string }[],
  exclusions: Partial<Record<DeviceProfile, string>> = NPM_TEST_7_2_AUDIT_EXCLUSIONS,
): { runs: PlatformAuditRun[]; notCompared: string[]; problems: string[] } {
  const runs: PlatformAuditRun[] = NPM_TEST_PLATFORM_AUDITS.map((p) => ({ kernel: main, profile: p as DeviceProfile, dir: `audit-${p}` }));
  const notCompared: string[] = [];
  const problems: string[] = [];
  if (main.kernel !== undefined || main.kernelSrc !== undefined || main.kernelVersion === '7.2') return { runs, notCompared, problems };
  const sevenTwo: KernelChoice = { kernelVersion: '7.2', flavour: 'base' };
  for (const part of parts.filter((p) => p.kernel.startsWith('7.2.'))) {
    const profile = DEVICE_PROFILES.find((d) => profiles[d].auditPlatform !== undefined && platformKey(profiles[d].auditPlatform!) === part.key);
    if (profile === undefined) {
      problems.push(`docs/audit/${part.path}/: no device profile records this platform (lib/vm/profiles.ts auditPlatform), so no run can prove it current`);
      continue;
    }
    const excluded = exclusions[profile];
    if (excluded !== undefined) notCompared.push(`docs/audit/${part.path}/ (audit --platform ${profile} --kernel-version 7.2): not compared: ${excluded}`);
    else runs.push({ kernel: sevenTwo, profile, dir: `audit-7.2-${profile}` });
  }
  return { runs, notCompared, problems };
}
// ---- 6.1's type1 half of the audit (issue 14), compared with docs/audit/6.1.192/.
/**
 * The platforms whose 6.1 audit npm test runs beside the main kernel's. 6.1 has no iommufd, so only type1
 * runs there (compat and native are blocked by what the kernel lacks, probed in the guest); each run is
 * compared with its published part, as the main kernel's platforms are. viommu-noir-unsafe is left out:
 * without iommufd there is no iommufd.allow_unsafe_interrupts, so on 6.1 it is the platform of
 * viommu-noir-unsafe-type1 (one part, the same results); virtio-iommu's two settings are each their own part.
 * On amd, 6.1's AMD_IOMMU_PGSIZES (~0xFFF & ~512G, amd/amd_iommu_types.h:280) claims the page sizes of 2^52 and
 * above that 6.12's does not, and only GET_INFO shows which: the model leaves those bits unknown and the part
 * says which cells it checked without them (type1-platform.ts AMD_IO_PGTABLE_PGSIZES_UNKNOWN).
 */
export const NPM_TEST_6_1_AUDIT_PLATFORMS: readonly DeviceProfile[] = ['viommu', 'viommu-noir', 'viommu-noir-unsafe-type1', 'amd', 'virtio', 'virtio-unsafe'];

/** The 6.1 audits npm test runs: none when the main kernel is 6.1 itself (its own audits are those) or not Debian's. */
export function type1HalfAudits(main: KernelChoice): { series: KernelSeries; platform: DeviceProfile }[] {
  if (main.kernel !== undefined || main.kernelSrc !== undefined || main.kernelVersion === '6.1') return [];
  return NPM_TEST_6_1_AUDIT_PLATFORMS.map((platform) => ({ series: '6.1', platform }));
}
// ---- end of 6.1's type1 half

/**
 * The kernels whose own selftests (tools/testing/selftests/iommu and vfio)
 * npm test runs beside ours, with `iommufd-conformance kselftest`: the main
 * kernel (6.12 by default: iommu only, it has no VFIO selftests) and, when
 * the main kernel is a Debian series other than 7.2, Debian's 7.2 (iommu and
 * VFIO selftests).
 */
export function kselftestKernels(main: KernelChoice): { label: string; kernel: KernelChoice }[] {
  const kernels = [{ label: 'main kernel', kernel: main }];
  if (main.kernel === undefined && main.kernelSrc === undefined && main.kernelVersion !== '7.2') {
    kernels.push({ label: 'Debian 7.2', kernel: { ...main, kernelVersion: '7.2' } });
  }
  return kernels;
}

/** The kernel's selftests beside ours on each kernel of kselftestKernels: each unexplained disagreement, stale explanation or incomplete program fails. */
async function reportKselftests(root: string, main: KernelChoice): Promise<{ lines: string[]; failures: number; infrastructure: boolean }> {
  const lines: string[] = [];
  let failures = 0;
  let infrastructure = false;
  const { kselftestTree } = await import('../kselftest/tree.ts');
  const { runKselftests } = await import('../kselftest/run.ts');
  for (const [i, { label, kernel }] of kselftestKernels(main).entries()) {
    const out = join(root, i === 0 ? 'kselftest' : `kselftest-${i}`);
    process.stdout.write(`\n=== the kernel's own selftests beside ours (${label})\n`);
    try {
      const tree = await kselftestTree(kernel);
      const outcome = await runKselftests({
        out,
        tree,
        profiles: [...PROFILES],
        boot: { ...kernel, accel: 'auto', timeoutSeconds: 1800 },
        packageRoot: PACKAGE_ROOT,
      });
      lines.push(`kselftest (Linux ${tree.version}): ${outcome.summary} (${join(out, 'kselftest.md')})`);
      lines.push(...outcome.table.notInTree.map((n) => `  ${n}`));
      for (const p of [...outcome.infrastructure, ...outcome.problems]) lines.push(`  FAILED: ${p}`);
      failures += outcome.problems.length + outcome.infrastructure.length;
      infrastructure ||= outcome.infrastructure.length > 0;
    } catch (err) {
      failures += 1;
      infrastructure = true;
      lines.push(`kselftest (${label}): FAILED: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return { lines, failures, infrastructure };
}

export async function testAll(out: string, kernel: KernelChoice = { kernelVersion: DEFAULT_KERNEL_SERIES, flavour: 'base' }, shard: Shard | null = null): Promise<number> {
  const { kernelVersion } = kernel;
  const root = resolve(out);
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  const add = (c: Counts | null) => {
    if (!c) return;
    total.passed += c.passed;
    total.failed += c.failed;
    total.skipped += c.skipped;
  };
  const lines: string[] = [];

  process.stdout.write('=== unit suites (this host)\n');
  const unitFailures = await runSuites({ files: testFilesIn('suites/unit'), out: join(root, 'unit'), shard, profile: 'unit' });
  add(countsOf(join(root, 'unit', 'results.json')));
  lines.push(`unit: ${unitFailures === 0 ? 'passed' : `${unitFailures} failed`}`);

  process.stdout.write('\n=== VM suites (QEMU guests)\n');
  const ci = process.env.CI === 'true';
  let vmOk = true;
  // A VM part that could not run or deliver results makes the exit code 3 (lib/cli/exit-codes.ts).
  let infrastructure = false;
  // The audit is built from the raw files the VM suites write; none is built when the VM part is skipped.
  let auditSkipped: string | undefined;
  const { auditAfterVmRun, removeStaleAuditRaw, runAudit } = await import('./audit.ts');
  try {
    removeStaleAuditRaw(join(root, 'vm'));
    const { runInVm } = await import('../vm/run-vm.ts');
    const { ok, outcomes } = await runInVm({
      profiles: [...PROFILES],
      out: join(root, 'vm'),
      ...kernel,
      accel: 'auto',
      timeoutSeconds: 1800,
      shard,
    });
    vmOk = ok;
    if (vmExitCode(outcomes.map((outcome) => ({ outcome, resultsDir: join(root, 'vm', outcome.profile) }))) === EXIT_ENVIRONMENT) infrastructure = true;
    for (const o of outcomes) {
      const c = countsOf(join(root, 'vm', o.profile, 'results.json'));
      add(c);
      if (!o.ok) {
        // A guest that failed outside mocha (crash, kernel WARN) is a failure of its own.
        total.failed += 1;
      }
      lines.push(`vm ${o.profile}: ${o.ok ? 'passed' : `FAILED (${o.reasons.join('; ')})`}`);
    }
  } catch (err) {
    if (err instanceof SetupError && !ci) {
      const reason = err.message.split('\n')[0];
      lines.push(`vm: skipped: ${reason} (${err.fix})`);
      total.skipped += PROFILES.length;
      auditSkipped = `the VM part was skipped (${reason})`;
    } else {
      vmOk = false;
      infrastructure = true;
      total.failed += 1;
      lines.push(`vm: FAILED: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  // Each unexplained, changed or stale difference, model mismatch or missing backend counts as a failure.
  let auditFailures = 0;
  // One shard's raw files hold only its scenarios; `merge` of every shard's folder builds the audit.
  if (shard && auditSkipped === undefined) auditSkipped = `shard ${shardLabel(shard)} of a sharded run: \`iommufd-conformance merge\` of every shard's folder builds the audit`;
  if (auditSkipped !== undefined) {
    lines.push(`audit: skipped: ${auditSkipped}`);
    total.skipped += 1;
  } else {
    const audit = auditAfterVmRun(root);
    auditFailures = audit.failures;
    total.failed += audit.failures;
    lines.push(...audit.lines);
  }
  // The parity table of one shard would list the other shards' cases as not run; merge prints it per kernel.
  const mirror = shard ? { lines: [`parity: shard ${shardLabel(shard)}: printed by \`iommufd-conformance merge\` over every shard`], failed: false } : await reportMirror(root, 'vm', kernelVersion);
  if (mirror.failed) total.failed += 1;
  lines.push(...mirror.lines);
  let kselftestFailures = 0;
  if (shard) {
    lines.push(`kselftest: skipped: shard ${shardLabel(shard)}: the kernel's own selftests run once, in an unsharded run (iommufd-conformance kselftest)`);
    total.skipped += 1;
  } else if (auditSkipped !== undefined) {
    lines.push(`kselftest: skipped: ${auditSkipped}`);
    total.skipped += 1;
  } else {
    const k = await reportKselftests(root, kernel);
    kselftestFailures = k.failures;
    total.failed += k.failures;
    infrastructure ||= k.infrastructure;
    lines.push(...k.lines);
  }
  // The audit on the other IOMMU platforms (issue 14): each platform's guest beside mock, judged as the
  // main audit is (an unexplained difference or a model mismatch fails) and compared with the published part
  // of its kernel and platform (docs/audit/KERNEL/PLATFORM/): a drift, or a part never published, fails.
  // On 7.2 as well (platformAuditRuns): every device profile whose 7.2 part is published, so no part goes stale.
  let platformsOk = true;
  let platformAudits: ReturnType<typeof platformAuditRuns> = { runs: [], notCompared: [], problems: [] };
  if (auditSkipped === undefined && !shard) {
    try {
      platformAudits = platformAuditRuns(kernel, publishedParts());
    } catch (err) {
      platformAudits.problems.push(`docs/audit/: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  /** One platform audit, compared with its published part: counted, and its line added; false when it failed. */
  const runPlatformAudit = async (run: PlatformAuditRun, heading: string, label: string): Promise<boolean> => {
    const dir = join(root, run.dir);
    process.stdout.write(`\n=== ${heading}: ${profiles[run.profile].description}\n`);
    const started = Date.now();
    try {
      const { rc, published } = await runAudit({ out: dir, rawDirs: [], ...run.kernel, accel: 'auto', timeoutSeconds: 1800, deviceProfile: run.profile, publishedMustMatch: true });
      if (rc === EXIT_ENVIRONMENT) infrastructure = true;
      for (const p of [run.profile, 'mock']) add(countsOf(join(dir, p, 'results.json')));
      if (rc !== 0) total.failed += 1;
      lines.push(`audit ${label}: ${rc === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s (${join(dir, 'audit', 'audit.md')})`);
      if (published) lines.push(`  ${published.lines.at(-1)}`);
      return rc === 0;
    } catch (err) {
      total.failed += 1;
      lines.push(`audit ${label}: FAILED: ${(err as Error).message.split('\n')[0]}`);
      return false;
    }
  };
  for (const run of platformAudits.runs) {
    // A run on another kernel than the main one (7.2's parts) names that kernel.
    const other = run.kernel === kernel ? null : run.kernel.kernelVersion;
    const heading = `audit on platform ${run.profile}${other ? ` on ${other}` : ''}`;
    if (!(await runPlatformAudit(run, heading, other ? `${other} ${run.profile}` : run.profile))) platformsOk = false;
  }
  lines.push(...platformAudits.notCompared.map((n) => `published audit: ${n}`));
  for (const p of platformAudits.problems) {
    platformsOk = false;
    total.failed += 1;
    lines.push(`published audit: FAILED: ${p}`);
  }
  // ---- 6.1's type1 half (issue 14): each platform's audit on 6.1, compared with docs/audit/6.1.192/.
  let type1HalfOk = true;
  for (const { series, platform } of auditSkipped === undefined && !shard ? type1HalfAudits(kernel) : []) {
    const run: PlatformAuditRun = { kernel: { kernelVersion: series, flavour: 'base' }, profile: platform, dir: `audit-${series}-${platform}` };
    if (!(await runPlatformAudit(run, `audit on ${series} (type1 only: no iommufd), platform ${platform}`, `${series} ${platform}`))) type1HalfOk = false;
  }
  // ---- end of 6.1's type1 half
  let extraOk = true;
  for (const run of auditSkipped === undefined ? extraVmRuns(kernelVersion) : []) {
    const vmDir = `vm-${run.series}`;
    process.stdout.write(`\n=== VM suites on ${run.series} (${run.profiles.join(', ')})\n`);
    try {
      const { runInVm } = await import('../vm/run-vm.ts');
      const { ok, outcomes } = await runInVm({ profiles: run.profiles, out: join(root, vmDir), kernelVersion: run.series, flavour: 'base', accel: 'auto', timeoutSeconds: 1800 });
      extraOk &&= ok;
      if (vmExitCode(outcomes.map((outcome) => ({ outcome, resultsDir: join(root, vmDir, outcome.profile) }))) === EXIT_ENVIRONMENT) infrastructure = true;
      for (const o of outcomes) {
        add(countsOf(join(root, vmDir, o.profile, 'results.json')));
        if (!o.ok) total.failed += 1;
        lines.push(`vm ${run.series} ${o.profile}: ${o.ok ? 'passed' : `FAILED (${o.reasons.join('; ')})`}`);
      }
    } catch (err) {
      extraOk = false;
      total.failed += 1;
      lines.push(`vm ${run.series}: FAILED: ${(err as Error).message.split('\n')[0]}`);
    }
    const m = await reportMirror(root, vmDir, run.series);
    if (m.failed) total.failed += 1;
    extraOk &&= !m.failed;
    lines.push(...m.lines);
  }
  process.stdout.write(`\n=== npm test\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
  process.stdout.write(`summary: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
  if (infrastructure) return EXIT_ENVIRONMENT;
  return unitFailures === 0 && vmOk && extraOk && platformsOk && type1HalfOk && !mirror.failed && auditFailures === 0 && kselftestFailures === 0 ? 0 : 1;
}
