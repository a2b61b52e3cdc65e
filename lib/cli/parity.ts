// `iommufd-conformance parity`: the kernel's iommu selftest cases (read from
// the C source), our mirroring test for each (read from the suites as mocha
// loads them), and its status in the last run (read from results.ktap).
import { existsSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import Mocha from 'mocha';
import ConformanceReporter from '../report/reporter.cjs';
import type { KernelSeries } from '../kbuild/series.ts';
import { describeOrigin, ensureKernelSource } from '../kbuild/source.ts';
import { kernelSelftestCases } from '../parity/kernel-cases.ts';
import { buildParity, LATER_SERIES_SERVED, parityKernel, readKtapStatuses, type ParityTable } from '../parity/table.ts';
import { parseKernelSeries } from '../kbuild/series.ts';
import { PACKAGE_ROOT } from './paths.ts';
import { testFilesIn } from './run.ts';

/** Where the kernel selftest mirror lives (the `mock` profile's suites). */
export const MIRROR_FOLDER = 'suites/vm/mock/selftest';

/**
 * Our mirror's tests by kselftest name, with the file that defines each.
 * Loaded once per process: the suites are ES modules, which run their
 * describe() calls on the first import only, so a second mocha loading the
 * same files would find no test at all.
 */
let mirrored: Promise<Map<string, string>> | null = null;
export function mirroredTests(): Promise<Map<string, string>> {
  mirrored ??= loadMirroredTests();
  return mirrored;
}

async function loadMirroredTests(): Promise<Map<string, string>> {
  const mocha = new Mocha();
  for (const f of testFilesIn(MIRROR_FOLDER)) mocha.addFile(f);
  await mocha.loadFilesAsync();
  const out = new Map<string, string>();
  const walk = (suite: Mocha.Suite) => {
    for (const t of suite.tests) {
      const name = ConformanceReporter.ktapName(t);
      if (out.has(name)) throw new Error(`two tests are named ${name} (${out.get(name)} and ${t.file})`);
      out.set(name, relative(PACKAGE_ROOT, t.file ?? ''));
    }
    suite.suites.forEach(walk);
  };
  walk(mocha.suite);
  mocha.dispose();
  return out;
}

/** The newest results.ktap of a mock-profile run under `out` (npm test's out/vm/mock, or vm's out/mock). */
export function lastMockResults(out: string): string | null {
  const candidates = [join(out, 'vm', 'mock', 'results.ktap'), join(out, 'mock', 'results.ktap')].filter((p) => existsSync(p));
  candidates.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return candidates[0] ?? null;
}

export async function parityTable(opts: { results?: string | null; kernelSrc?: string; kernelVersion?: KernelSeries }): Promise<ParityTable> {
  const src = await ensureKernelSource({ tree: opts.kernelSrc, series: opts.kernelVersion });
  const kernel = kernelSelftestCases(src.dir);
  const ours = await mirroredTests();
  const results = opts.results ? resolve(opts.results) : null;
  const which = parityKernel(`${describeOrigin(src.origin)}, Linux ${src.version}`, src.version);
  return buildParity(kernel, ours, results ? readKtapStatuses(results) : new Map(), results, which, which.mirrored ? await laterServedCases() : new Set());
}

/** The case names of the later kernels the mirror also serves (LATER_SERIES_SERVED), from their sources. */
export async function laterServedCases(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const series of LATER_SERIES_SERVED) {
    const src = await ensureKernelSource({ series: parseKernelSeries(series) });
    for (const c of kernelSelftestCases(src.dir)) names.add(c.name);
  }
  return names;
}
