// `iommufd-conformance kselftest`: the kernel tree's own selftests, built from
// the tree in use (lib/kselftest/build.ts), run in the guest that suits each
// (iommu in `mock`, vfio in `viommu`), each followed by our suites of that
// profile in the same boot; their KTAP lands beside ours (OUT/<profile>/
// kselftest/<program>.ktap next to OUT/<profile>/results.ktap), and the
// side-by-side table (OUT/kselftest.md, .json) compares them case by case.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AUDIT_RAW_FILE } from '../audit/types.ts';
import { readKtapStatuses } from '../parity/table.ts';
import { classifyProblems, loadFindings } from '../vm/findings.ts';
import type { KernelFlavour } from '../vm/kernel.ts';
import type { ProfileName } from '../vm/profiles.ts';
import { checkWitness, type WitnessRow } from './audit-witness.ts';
import { buildSuite, treeHasSuite, type KselftestSuite } from './build.ts';
import { guestScript } from './guest-script.ts';
import type { KselftestTree } from './tree.ts';
import { parseKselftestOutput, type KselftestCase } from './ktap.ts';
import {
  EXPLAINED_FILE, loadExplanations, renderSideBySide, sideBySideProblems, sideBySideRows, staleExplanations, type SideBySide, type SideRow,
} from './side-by-side.ts';

/** Which suite runs in which profile. */
export const SUITE_OF_PROFILE: Record<ProfileName, KselftestSuite> = { mock: 'iommu', viommu: 'vfio', 'viommu-noir': 'vfio', 'viommu-noir-unsafe-type1': 'vfio', 'viommu-noir-unsafe': 'vfio', amd: 'vfio', virtio: 'vfio', 'virtio-unsafe': 'vfio' };

export interface KselftestOptions {
  out: string;
  tree: KselftestTree;
  profiles: ProfileName[];
  /** How to get the guest kernel (runInVm's options). */
  boot: { kernel?: string; kernelSrc?: string; flavour: KernelFlavour; accel: 'auto' | 'kvm' | 'tcg'; timeoutSeconds: number } & Record<string, unknown>;
  packageRoot: string;
  log?: (line: string) => void;
}

export interface KselftestOutcome {
  table: SideBySide;
  /** Problems that make the run fail (exit 1). */
  problems: string[];
  /** The run could not deliver results (exit 3). */
  infrastructure: string[];
  summary: string;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function runKselftests(o: KselftestOptions): Promise<KselftestOutcome> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const out = resolve(o.out);
  const explanations = loadExplanations(join(o.packageRoot, EXPLAINED_FILE));
  const { mirroredTests } = await import('../cli/parity.ts');
  const ours = await mirroredTests();
  const { runInVm } = await import('../vm/run-vm.ts');
  const { bundleGuest } = await import('../vm/guest-bundle.ts');
  const rows: SideRow[] = [];
  const incomplete: string[] = [];
  const notInTree: string[] = [];
  const infrastructure: string[] = [];
  let witness: WitnessRow[] = [];
  let manifest: Awaited<ReturnType<typeof bundleGuest>> | null = null;
  const findings = loadFindings();
  for (const profile of o.profiles) {
    const suite = SUITE_OF_PROFILE[profile];
    if (!treeHasSuite(o.tree.dir, suite)) {
      notInTree.push(`Linux ${o.tree.version} has no tools/testing/selftests/${suite}: the kernel's ${suite} selftests are not run (profile ${profile} not booted)`);
      continue;
    }
    const built = buildSuite({ treeDir: o.tree.dir, treeKey: o.tree.key, includeDir: o.tree.includeDir, suite, log });
    log(`kselftest ${suite}: ${built.programs.join(', ')} (${built.cached ? 'cached' : 'built'} in ${built.dir})`);
    manifest ??= await bundleGuest(out, log);
    const resultsDir = join(out, profile);
    const ktapDir = join(resultsDir, 'kselftest');
    const oursCmd = `${shellQuote(process.execPath)} ${shellQuote(manifest.main)} run --profile ${profile} --out ${shellQuote(resultsDir)} --manifest ${shellQuote(manifest.path)}`;
    const script = guestScript({ built, treeDir: o.tree.dir, ktapDir, ours: oursCmd });
    const { outcomes } = await runInVm({ ...o.boot, profiles: [profile], out, exec: script, log });
    const result = outcomes[0]!.result;
    if (result.timedOut) infrastructure.push(`profile ${profile}: the guest was killed after ${o.boot.timeoutSeconds} s (see ${join(resultsDir, 'console.log')})`);
    else if (result.exitCode === null) infrastructure.push(`profile ${profile}: the guest stopped without an exit code (see ${join(resultsDir, 'console.log')})`);
    // One line a report: its WARNING/BUG line names the site and the task (Comm) that provoked it.
    const headline = (p: string) => p.split('\n').map((l) => l.trim()).find((l) => /^(WARNING|BUG|kernel BUG|Oops|Kernel panic|UBSAN|KASAN|=+ *WARNING)/.test(l) || /^(WARNING|BUG):/.test(l)) ?? p.split('\n')[0]!;
    // A report that is a known kernel finding (fixtures/findings.json) is that finding, named by runInVm; any other fails.
    const { unknown } = classifyProblems(result.problems, findings);
    if (unknown.length) incomplete.push(`profile ${profile}: the guest kernel reported ${unknown.length} problem(s) (${join(resultsDir, 'dmesg.txt')}): ${unknown.map(headline).join(' | ')}`);
    if (!existsSync(join(resultsDir, 'results.ktap'))) infrastructure.push(`profile ${profile}: our suites wrote no results.ktap`);
    if (existsSync(join(ktapDir, 'setup.failed'))) infrastructure.push(`profile ${profile}: ${readFileSync(join(ktapDir, 'setup.failed'), 'utf8').trim()}`);
    const oursStatuses = readKtapStatuses(join(resultsDir, 'results.ktap'));
    const vfioCases = new Map<string, KselftestCase>();
    for (const program of built.programs) {
      const file = join(ktapDir, `${program}.ktap`);
      if (!existsSync(file)) {
        incomplete.push(`${program}: no output (the guest did not run it: see ${join(resultsDir, 'console.log')})`);
        continue;
      }
      const run = parseKselftestOutput(readFileSync(file, 'utf8'));
      const rc = existsSync(join(ktapDir, `${program}.rc`)) ? readFileSync(join(ktapDir, `${program}.rc`), 'utf8').trim() : '?';
      // 4 is kselftest's KSFT_SKIP: the whole program skipped (its reason is in its output).
      if (run.incomplete && rc !== '4') incomplete.push(`${program}: ${run.incomplete} (exit ${rc}; ${file})`);
      rows.push(...sideBySideRows(program, run.cases, ours, oursStatuses, explanations, o.tree.version));
      for (const c of run.cases) vfioCases.set(c.name, c);
    }
    if (suite === 'vfio') witness = checkWitness(vfioCases, join(resultsDir, AUDIT_RAW_FILE));
  }
  const table: SideBySide = { kernelVersion: o.tree.version, rows, incomplete, notInTree, stale: staleExplanations(rows, explanations, o.tree.version), witness };
  const markdown = renderSideBySide(table);
  writeFileSync(join(out, 'kselftest.md'), markdown);
  writeFileSync(join(out, 'kselftest.json'), `${JSON.stringify(table, null, 2)}\n`);
  const summary = markdown.trimEnd().split('\n').at(-1)!;
  return { table, problems: sideBySideProblems(table), infrastructure, summary };
}
