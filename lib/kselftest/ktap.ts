// The kernel selftest harness's output (TAP version 13 / KTAP v1 from
// tools/testing/selftests/kselftest_harness.h), read with tap-parser: each
// case's status and the lines it printed (the harness's "# " diagnostics and
// the test's own printf output between its RUN line and its result).
import { Parser } from 'tap-parser';

export type KselftestStatus = 'pass' | 'fail' | 'skip' | 'not-run';

export interface KselftestCase {
  name: string;
  status: KselftestStatus;
  /** The SKIP reason the harness gave. */
  reason?: string;
  /** What the case printed, in order. */
  output: string[];
}

export interface KselftestRun {
  /** Cases in the order reported, then the planned ones never reported. */
  cases: KselftestCase[];
  planned: number | null;
  /** Why the run is incomplete (crashed before its plan was met, bailed out), or null. */
  incomplete: string | null;
}

/**
 * Reads one harness binary's output. The plan (1..N) and the "#  RUN NAME"
 * lines name every case the binary meant to run: one it started and never
 * reported (the binary crashed or was killed) is 'not-run' with what it
 * printed.
 */
export function parseKselftestOutput(text: string): KselftestRun {
  const cases: KselftestCase[] = [];
  let planned: number | null = null;
  let bailout: string | null = null;
  let pending: string[] = [];
  let started: string | null = null;
  for (const [type, arg] of Parser.parse(text) as [string, unknown][]) {
    if (type === 'plan') {
      // tap-parser makes up a "1..0" plan for output that has none (a binary that never started).
      if (!/^1\.\.\d+/m.test(text)) continue;
      const p = arg as { start: number; end: number };
      planned = p.end - p.start + 1;
    } else if (type === 'comment' || type === 'extra') {
      const line = String(arg).replace(/\n$/, '');
      const run = /^#\s+RUN\s+(\S+) \.\.\.$/.exec(line);
      if (run) {
        started = run[1]!;
        pending = [];
        continue;
      }
      pending.push(line);
    } else if (type === 'assert') {
      const r = arg as { ok: boolean; name: string; skip: string | boolean; todo: string | boolean };
      const status: KselftestStatus = r.skip !== false ? 'skip' : r.ok ? 'pass' : 'fail';
      cases.push({
        name: r.name,
        status,
        ...(status === 'skip' && typeof r.skip === 'string' ? { reason: r.skip } : {}),
        // The harness's own "OK/FAIL/SKIP NAME" echo lines say nothing the status does not.
        output: pending.filter((l) => !/^#\s+(OK|FAIL|SKIP)\s/.test(l) && !l.startsWith('# Totals:') && !/^# (PASSED|FAILED):/.test(l)),
      });
      pending = [];
      started = null;
    } else if (type === 'bailout') {
      bailout = String(arg || 'bail out');
    }
  }
  let incomplete: string | null = bailout ? `bailed out: ${bailout}` : null;
  if (started !== null && !cases.some((c) => c.name === started)) {
    cases.push({ name: started, status: 'not-run', output: pending });
    incomplete ??= `${started} started and never reported a result (the binary crashed or was killed)`;
  }
  if (planned !== null && cases.filter((c) => c.status !== 'not-run').length < planned) {
    incomplete ??= `${cases.length} of ${planned} planned cases reported`;
  }
  if (planned === null && cases.length === 0) incomplete ??= `no TAP plan and no result: the binary did not run (${text.trim().split('\n')[0] ?? 'no output'})`;
  return { cases, planned, incomplete };
}
