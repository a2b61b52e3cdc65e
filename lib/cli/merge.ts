// `iommufd-conformance merge DIR... --out DIR`: one report from many result
// folders (lib/merge/). Exit 0 when every run passed, 1 when a test or a run
// failed, 2 when the folders cannot be merged (the reason is printed and
// nothing is written).
import { SetupError } from '../kbuild/source.ts';
import { kernelSelftestCases } from '../parity/kernel-cases.ts';
import { MIRRORED_SERIES, parityKernel } from '../parity/table.ts';
import { cachedDebianSources, describeOrigin, ensureKernelSource, type KernelSource } from '../kbuild/source.ts';
import { KERNEL_SERIES } from '../kbuild/series.ts';
import { MergeError, readRuns, writeMerged } from '../merge/index.ts';
import { kernelParities, type CasesOfRun } from '../merge/parity.ts';
import type { KernelParity } from '../merge/json.ts';
import { readFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { mergedAudits } from '../merge/audit.ts';
import { auditSummary, checkAuditPage } from './audit.ts';
import { chromiumMissing } from '../audit/browser.ts';
import { mergedPageProblems, probeMergedPage } from '../merge/page-check.ts';
import { UsageError } from './args.ts';
import { EXIT_FAILED, EXIT_PASS, EXIT_USAGE } from './exit-codes.ts';
import { laterServedCases, mirroredTests } from './parity.ts';

export interface MergeCommandOptions {
  out: string | undefined;
  dirs: string[];
  kernelSrc?: string;
}

export async function mergeCommand(o: MergeCommandOptions): Promise<number> {
  const { dirs } = o;
  const out = o.out;
  if (!out) throw new UsageError('merge needs --out DIR');
  if (dirs.length === 0) throw new UsageError('merge needs at least one result folder');
  let runs;
  try {
    runs = readRuns(dirs);
  } catch (err) {
    if (!(err instanceof MergeError)) throw err;
    process.stderr.write(`iommufd-conformance merge: refused: ${err.message}\n`);
    return EXIT_USAGE;
  }
  const lines: string[] = [];
  let parity: KernelParity[] = [];
  try {
    // Each run against the selftests of the kernel it ran on: --kernel-src for all, else the Debian tree
    // of the run's package version (in the cache, where the run's kernel was built from it).
    const given = o.kernelSrc ? await ensureKernelSource({ tree: o.kernelSrc }) : null;
    const debian = given ? [] : cachedDebianSources();
    const byPackageVersion = new Map<string, KernelSource>();
    for (const run of given ? [] : runs) {
      const want = run.identity.kernel.packageVersion;
      if (!want || byPackageVersion.has(want)) continue;
      let src = debian.find((d) => d.origin.kind === 'debian' && d.origin.packageVersion === want);
      // A tree extracted before the cache recorded its package: ask for the series, which finds it by its key.
      const series = KERNEL_SERIES.find((v) => run.identity.kernel.release.startsWith(`${v}.`));
      if (!src && series) {
        const s = await ensureKernelSource({ series });
        if (s.origin.kind === 'debian' && s.origin.packageVersion === want) src = s;
      }
      if (src) byPackageVersion.set(want, src);
    }
    // The later kernels' cases the mirror also serves (LATER_SERIES_SERVED), for the mirrored series' tables.
    const laterCases = runs.some((r) => r.identity.kernel.release.startsWith(`${MIRRORED_SERIES}.`)) ? await laterServedCases() : new Set<string>();
    const casesOf: CasesOfRun = (run) => {
      const want = run.identity.kernel.packageVersion;
      const src = given ?? (want ? byPackageVersion.get(want) : undefined);
      if (!src) {
        lines.push(`parity ${run.label}: not computed: no kernel source for ${want ? `package version ${want}` : 'a kernel not built from a Debian package'} (give --kernel-src)`);
        return null;
      }
      const kernel = parityKernel(`${describeOrigin(src.origin)}, Linux ${src.version}`, src.version);
      return { cases: kernelSelftestCases(src.dir), kernel, ...(kernel.mirrored ? { laterCases } : {}) };
    };
    parity = kernelParities(runs, casesOf, await mirroredTests());
  } catch (err) {
    if (!(err instanceof SetupError)) throw err;
    lines.push(`parity: not computed: ${err.message.split('\n')[0]} (${err.fix})`);
  }
  // The type1-vs-compat audit of every kernel whose runs cover both audit profiles (shards joined).
  const { audits, notes } = mergedAudits(runs, out);
  let auditFailures = 0;
  lines.push(...notes);
  for (const a of audits) {
    const page = checkAuditPage(a.audit, a.files);
    auditFailures += a.audit.verdict.failures.length + page.failures;
    lines.push(...auditSummary(a.audit, a.files, 10).map((l) => l.replace(/^audit:/, `audit ${a.kernel}:`)), ...page.lines);
  }
  const result = writeMerged(
    runs,
    out,
    parity,
    audits.map((a) => ({ kernel: a.kernel, href: relative(out, a.files.html), ok: a.audit.verdict.ok, summary: `${a.audit.verdict.ok ? 'passed' : 'FAILED'}: ${a.audit.verdict.scenarios} scenarios, ${a.audit.verdict.failures.length} failure(s)` })),
  );
  for (const r of runs) {
    lines.push(`${r.ok ? 'ok    ' : 'FAILED'} ${r.label}: ${r.counts.pass} passed, ${r.counts.fail} failed, ${r.counts.skip} skipped${r.parts.length > 1 ? ` (${r.parts.length} shards)` : ''}${r.problems.length ? `; ${r.problems.join('; ')}` : ''}`);
  }
  for (const p of parity) {
    const c = p.table.rows.filter((row) => row.ours).length;
    lines.push(`parity ${p.kernel}: ${c}/${p.table.rows.length} kernel cases mirrored`);
  }
  const f = result.files;
  // The page as a reader sees it: every run, every cell's counts, every failure linked to its report.
  let pageFailures = 0;
  const missing = chromiumMissing();
  if (missing) {
    if (process.env.CI === 'true') pageFailures = 1;
    lines.push(`page: ${process.env.CI === 'true' ? 'FAILED: cannot be checked in CI' : 'not checked in Chromium'}: ${missing}`);
  } else {
    const problems = mergedPageProblems(probeMergedPage(readFileSync(f.html, 'utf8'), dirname(f.html)), runs, f.html);
    pageFailures = problems.length;
    lines.push(...(problems.length === 0 ? ['page: checked in headless Chromium: every run, cell and failure link as merged'] : problems.map((p) => `page: FAIL: ${p}`)));
  }
  lines.push(`merged ${runs.length} run(s) into ${f.ktap}, ${f.xunit}, ${f.json}, ${f.html}`);
  const pass = runs.reduce((a, r) => a + r.counts.pass, 0);
  const fail = runs.reduce((a, r) => a + r.counts.fail, 0) + runs.reduce((a, r) => a + r.problems.length, 0) + pageFailures + auditFailures;
  const skip = runs.reduce((a, r) => a + r.counts.skip, 0);
  lines.push(`summary: ${pass} passed, ${fail} failed, ${skip} skipped`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return result.ok && pageFailures === 0 && auditFailures === 0 ? EXIT_PASS : EXIT_FAILED;
}
