// The parity table: each kernel selftest case, the test of ours that mirrors
// it, and how that test ended in the last run. Built from three independent
// sources - the kernel's C file, the suites as mocha loads them, and the
// KTAP file of a run - so a case we lost, renamed or never ran shows.
import { existsSync, readFileSync } from 'node:fs';
import type { KernelCase } from './kernel-cases.ts';

export type CaseStatus =
  | { kind: 'pass' }
  | { kind: 'fail'; message: string }
  | { kind: 'skip'; reason: string }
  | { kind: 'not-run' };

export interface ParityRow {
  kernel: string;
  kernelFile: string;
  /** Our suite file (relative to the package) that defines the same full title, or null when none does. */
  ours: string | null;
  status: CaseStatus;
}

/**
 * The kernel series whose tools/testing/selftests/iommu the mirror was
 * written against first; LATER_SERIES_SERVED are the later ones it follows as
 * well. Against any other kernel's case list (7.3-rc, a user's tree), its
 * cases that are not mirrored are expected: reported, not failed.
 */
export const MIRRORED_SERIES = '6.12';

/**
 * Later kernel series whose selftest cases the same mirror also serves
 * (issue 13: 7.2's). Against the mirrored series, a test of ours named after
 * one of their cases is that later kernel's case (it runs, or skips naming
 * the feature this kernel lacks), not a test unknown to every kernel.
 */
export const LATER_SERIES_SERVED: readonly string[] = Object.freeze(['7.2']);

export interface ParityKernel {
  /** e.g. "linux-source-7.2 7.2.13-1, Linux 7.2.13" */
  name: string;
  /** Whether the mirror follows this kernel's selftests (then every case must be mirrored). */
  mirrored: boolean;
}

/** Every series whose selftests the mirror follows: each of their cases must be mirrored. */
export const FOLLOWED_SERIES: readonly string[] = Object.freeze([MIRRORED_SERIES, ...LATER_SERIES_SERVED]);

export function parityKernel(name: string, version: string): ParityKernel {
  return { name, mirrored: FOLLOWED_SERIES.some((series) => version === series || version.startsWith(`${series}.`)) };
}

export interface ParityTable {
  kernel: ParityKernel;
  rows: ParityRow[];
  /** Our tests in the mirror folders that match no kernel case (a typo or a case the kernel dropped). */
  extra: { name: string; file: string }[];
  /** Our tests that are not this kernel's cases but a later served kernel's (LATER_SERIES_SERVED). */
  later: { name: string; file: string }[];
  results: string | null;
}

/** One result line of a KTAP file our reporter wrote, in file order. */
export interface KtapResult {
  name: string;
  status: Exclude<CaseStatus, { kind: 'not-run' }>;
}

/**
 * The results of a KTAP file our reporter wrote (lib/report/reporter.cjs), in order, duplicates kept. A
 * failure's message is the diagnostic block before its result line, from "# NAME: " on (the reporter
 * writes a whole, multi-line message that way).
 */
export function readKtapResults(path: string): KtapResult[] {
  const out: KtapResult[] = [];
  if (!existsSync(path)) return out;
  const lines = readFileSync(path, 'utf8').split('\n');
  let diagnostics: string[] = [];
  for (const line of lines) {
    const m = /^(ok|not ok) \d+ (\S+)(?: # SKIP (.*))?$/.exec(line);
    if (!m) {
      if (line.startsWith('#')) diagnostics.push(line.replace(/^# ?/, ''));
      continue;
    }
    const [, result, name, skip] = m;
    const start = diagnostics.findIndex((d) => d.startsWith(`${name}: `));
    const message = start === -1 ? '' : [diagnostics[start]!.slice(name!.length + 2), ...diagnostics.slice(start + 1)].join('\n');
    diagnostics = [];
    if (skip !== undefined) out.push({ name: name!, status: { kind: 'skip', reason: skip } });
    else if (result === 'ok') out.push({ name: name!, status: { kind: 'pass' } });
    else out.push({ name: name!, status: { kind: 'fail', message } });
  }
  return out;
}

/** Statuses by test name from a KTAP file our reporter wrote (lib/report/reporter.cjs). */
export function readKtapStatuses(path: string): Map<string, CaseStatus> {
  return new Map(readKtapResults(path).map((r) => [r.name, r.status]));
}

export function buildParity(
  kernel: KernelCase[],
  ours: Map<string, string>,
  statuses: Map<string, CaseStatus>,
  results: string | null,
  which: ParityKernel = { name: `Linux ${MIRRORED_SERIES}`, mirrored: true },
  /** The cases of the later kernels the mirror also serves (LATER_SERIES_SERVED). */
  laterCases: ReadonlySet<string> = new Set(),
): ParityTable {
  const known = new Set(kernel.map((c) => c.name));
  const rows = kernel.map((c) => ({
    kernel: c.name,
    kernelFile: c.file,
    ours: ours.get(c.name) ?? null,
    status: statuses.get(c.name) ?? ({ kind: 'not-run' } as const),
  }));
  const unknown = [...ours].filter(([name]) => !known.has(name)).map(([name, file]) => ({ name, file }));
  const extra = unknown.filter((t) => !laterCases.has(t.name));
  const later = unknown.filter((t) => laterCases.has(t.name));
  return { kernel: which, rows, extra, later, results };
}

export function statusText(s: CaseStatus): string {
  switch (s.kind) {
    case 'pass': return 'pass';
    case 'fail': return `FAIL${s.message ? `: ${s.message}` : ''}`;
    case 'skip': return `skip: ${s.reason}`;
    case 'not-run': return 'not run';
  }
}

export interface ParityCounts {
  cases: number;
  mapped: number;
  pass: number;
  fail: number;
  skip: number;
  notRun: number;
  extra: number;
}

export function parityCounts(t: ParityTable): ParityCounts {
  const count = (k: CaseStatus['kind']) => t.rows.filter((r) => r.ours && r.status.kind === k).length;
  return {
    cases: t.rows.length,
    mapped: t.rows.filter((r) => r.ours).length,
    pass: count('pass'),
    fail: count('fail'),
    skip: count('skip'),
    notRun: count('not-run'),
    extra: t.extra.length,
  };
}

/**
 * Parity holds when every kernel case is mirrored and none of ours is unknown
 * to the kernel. Against a kernel the mirror does not follow yet, the gap is
 * expected and reported (parityNote), not a failure.
 */
export function parityHolds(t: ParityTable): boolean {
  const c = parityCounts(t);
  return !t.kernel.mirrored || (c.mapped === c.cases && c.extra === 0);
}

/** What the gap means, for a kernel the mirror does not follow yet; null otherwise. */
export function parityNote(t: ParityTable): string | null {
  if (t.kernel.mirrored) return null;
  const c = parityCounts(t);
  return (
    `${t.kernel.name}: ${c.cases - c.mapped} of its ${c.cases} selftest cases are not mirrored and ${c.extra} of ours are not among its cases; ` +
    `expected: the mirror follows the selftests of ${FOLLOWED_SERIES.join(' and ')}, not this kernel's (not a failure)`
  );
}

export function renderParityMarkdown(t: ParityTable): string {
  const c = parityCounts(t);
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    '| kernel case | our test | status |',
    '|---|---|---|',
    ...t.rows.map((r) => `| ${r.kernelFile}: ${r.kernel} | ${r.ours ? `${r.ours}: ${r.kernel}` : '**MISSING**'} | ${esc(statusText(r.status))} |`),
  ];
  if (t.extra.length) lines.push('', 'Tests of ours that match no kernel case:', ...t.extra.map((e) => `- ${e.file}: ${e.name}`));
  if (t.later.length) lines.push('', `Tests of ours for a later kernel's cases (${LATER_SERIES_SERVED.join(', ')}): ${t.later.length}`);
  const note = parityNote(t);
  lines.push(
    '',
    ...(note ? [`Note: ${note}`, ''] : []),
    `${t.kernel.name}: ${c.cases} kernel cases, ${c.mapped} mirrored; last run${t.results ? ` (${t.results})` : ''}: ${c.pass} pass, ${c.skip} skip, ${c.fail} fail, ${c.notRun} not run`,
  );
  return `${lines.join('\n')}\n`;
}

export function parityLine(t: ParityTable): string {
  const c = parityCounts(t);
  const expected = t.kernel.mirrored ? '' : ` (not mirrored yet, expected: issue 13)`;
  return `parity (${t.kernel.name}): ${c.mapped}/${c.cases} kernel selftest cases mirrored${c.extra ? `, ${c.extra} unknown to the kernel` : ''}${expected}; ${c.pass} pass, ${c.skip} skip, ${c.fail} fail, ${c.notRun} not run`;
}

/**
 * The selftest mirror's wall time in ms, from a run's timing.json
 * (lib/report/reporter.cjs): its top-level suites, hooks included.
 */
export function mirrorWallMs(timingJson: string): number {
  const { suites } = JSON.parse(readFileSync(timingJson, 'utf8')) as { suites: { file: string; ms: number }[] };
  return suites.filter((s) => /selftest/.test(s.file)).reduce((a, s) => a + s.ms, 0);
}
