// The merged KTAP file (Documentation/dev-tools/ktap.rst): one subtest per
// run, indented two spaces, headed by "# Subtest: LABEL" and diagnostic lines
// naming the kernel (uname -r and -v, package version, .config hash), the
// profile, flavour, shards and the tool's version; inside, the run's tests as
// the run reported them, with the kselftest "# Totals:" line; the run's own
// result line is "not ok" when a test failed or the run itself did (a guest
// that crashed, a kernel WARN), with the reasons as diagnostics.
import type { MergedRun } from './types.ts';

export function runHeaderLines(run: MergedRun): string[] {
  const id = run.identity;
  const k = id.kernel;
  const shards = run.parts.length > 1 ? `${run.parts.length} shards` : 'unsharded';
  return [
    `kernel: ${k.release} (${k.version}) ${k.machine}`,
    `kernel package: ${k.packageVersion ?? 'none (not built from a Debian package)'}; config sha256: ${k.configSha256 ?? 'unknown'}`,
    `profile: ${id.profile}; flavour: ${k.flavour ?? 'n/a'}; ${shards}${id.select ? `; selection: ${id.select}` : ''}`,
    `tool: ${id.tool.name} ${id.tool.version}`,
  ];
}

export function renderKtap(runs: MergedRun[]): string {
  const out = ['KTAP version 1', `1..${runs.length}`];
  runs.forEach((run, i) => {
    const sub = (line: string) => out.push(`  ${line}`);
    sub('KTAP version 1');
    sub(`# Subtest: ${run.label}`);
    for (const h of runHeaderLines(run)) sub(`# ${h}`);
    sub(`1..${run.tests.length}`);
    run.tests.forEach((t, j) => {
      const s = t.status;
      if (s.kind === 'fail' && s.message) s.message.split('\n').forEach((line, k) => sub(`# ${k === 0 ? `${t.name}: ` : ''}${line}`.trimEnd()));
      sub(`${s.kind === 'fail' ? 'not ok' : 'ok'} ${j + 1} ${t.name}${s.kind === 'skip' ? ` # SKIP ${s.reason}` : ''}`);
    });
    sub(`# Totals: pass:${run.counts.pass} fail:${run.counts.fail} xfail:0 xpass:0 skip:${run.counts.skip} error:${run.problems.length}`);
    for (const p of run.problems) out.push(`# ${run.label}: ${p.replace(/\s*\n\s*/g, ' ')}`);
    out.push(`${run.ok ? 'ok' : 'not ok'} ${i + 1} ${run.label}`);
  });
  const pass = runs.reduce((a, r) => a + r.counts.pass, 0);
  const fail = runs.reduce((a, r) => a + r.counts.fail, 0);
  const skip = runs.reduce((a, r) => a + r.counts.skip, 0);
  const errors = runs.reduce((a, r) => a + r.problems.length, 0);
  out.push(`# Totals: pass:${pass} fail:${fail} xfail:0 xpass:0 skip:${skip} error:${errors}`);
  return `${out.join('\n')}\n`;
}
