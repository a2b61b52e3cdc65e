// From result folders to runs: folders of the same run (same tool version,
// profile, selection (--grep, --test), kernel release, package version, .config and flavour, same
// machine) are one run when they are its shards 1..N, exactly once each, cut
// from one selection and disjoint; anything else (a shard missing or given
// twice, shards of two different splits, a whole run beside its shards,
// shards that saw different test lists) is refused with the reason. Runs that
// differ (two kernels, two profiles, two flavours) stay apart: a test that ran
// in two profiles keeps one name per run.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RunIdentity } from '../report/run-identity.ts';
import { shardLabel } from '../shard.ts';
import { MergeError, type MergedRun, type MergedTest, type RunFolder } from './types.ts';

/** What makes two folders parts of the same run (uname -v, which carries the build's date, is left out). */
export function runKey(id: RunIdentity): string {
  const k = id.kernel;
  return JSON.stringify([id.tool.name, id.tool.version, id.profile, id.select, k.release, k.machine, k.packageVersion, k.configSha256, k.flavour]);
}

function describeFolder(f: RunFolder): string {
  return `${f.dir}${f.identity.shard ? ` (shard ${shardLabel(f.identity.shard)})` : ' (whole run)'}`;
}

/** Checks that the folders are one run, whole or as a complete shard set; returns them in shard order. */
export function checkShardSet(folders: RunFolder[]): RunFolder[] {
  const what = `${folders[0]!.identity.profile} on ${folders[0]!.identity.kernel.release}`;
  if (folders.length === 1 && !folders[0]!.identity.shard) return folders;
  const whole = folders.filter((f) => !f.identity.shard);
  if (whole.length > 0) {
    throw new MergeError(
      `overlapping results for ${what}: ${folders.map(describeFolder).join(', ')} (${whole.length > 1 ? 'two whole runs of the same cases' : 'a whole run beside shards of it'}); merge one of them`,
    );
  }
  const counts = new Set(folders.map((f) => f.identity.shard!.count));
  if (counts.size > 1) throw new MergeError(`shards of different splits for ${what}: ${folders.map(describeFolder).join(', ')}`);
  const n = [...counts][0]!;
  const byIndex = new Map<number, RunFolder[]>();
  for (const f of folders) byIndex.set(f.identity.shard!.index, [...(byIndex.get(f.identity.shard!.index) ?? []), f]);
  const doubled = [...byIndex].filter(([, fs]) => fs.length > 1);
  if (doubled.length > 0) {
    throw new MergeError(`overlapping shards for ${what}: ${doubled.map(([i, fs]) => `shard ${i}/${n} given ${fs.length} times (${fs.map((f) => f.dir).join(', ')})`).join('; ')}`);
  }
  const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    throw new MergeError(`incomplete shard set for ${what}: ${missing.map((i) => `${i}/${n}`).join(', ')} missing (have ${[...byIndex.keys()].sort((a, b) => a - b).map((i) => `${i}/${n}`).join(', ')})`);
  }
  const ordered = Array.from({ length: n }, (_, i) => byIndex.get(i + 1)![0]!);
  const finished = ordered.filter((f) => f.identity.finished && f.identity.selection);
  const digests = new Set(finished.map((f) => `${f.identity.selection!.digest}/${f.identity.selection!.total}`));
  if (digests.size > 1) {
    throw new MergeError(`the shards of ${what} split different test lists (different suites or selections): ${finished.map((f) => `${f.dir}: ${f.identity.selection!.total} tests, ${f.identity.selection!.digest}`).join('; ')}`);
  }
  const seen = new Map<string, string>();
  for (const f of finished) {
    for (const name of new Set(f.results.map((r) => r.name))) {
      const other = seen.get(name);
      if (other) throw new MergeError(`overlapping shards for ${what}: ${name} is in ${other} and in ${f.dir}`);
      seen.set(name, f.dir);
    }
  }
  if (finished.length === ordered.length) {
    const selected = finished.reduce((a, f) => a + f.identity.selection!.selected, 0);
    const total = finished[0]!.identity.selection!.total;
    if (selected !== total) throw new MergeError(`the shards of ${what} cover ${selected} of ${total} selected tests`);
  }
  return ordered;
}

/** A name per run, unique among `runs`: PROFILE@RELEASE, then +FLAVOUR, the machine, the config's hash as needed. */
function labelRuns(keys: RunIdentity[]): string[] {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9_.+@,:/-]+/g, '_');
  const forms: ((id: RunIdentity) => string)[] = [
    (id) => `${id.profile}@${id.kernel.release}`,
    (id) => `${id.profile}@${id.kernel.release}${id.kernel.flavour && id.kernel.flavour !== 'base' ? `+${id.kernel.flavour}` : ''}`,
    (id) => `${id.profile}@${id.kernel.release}${id.kernel.flavour ? `+${id.kernel.flavour}` : ''}:${id.kernel.machine}`,
    (id) => `${id.profile}@${id.kernel.release}${id.kernel.flavour ? `+${id.kernel.flavour}` : ''}:${id.kernel.machine}:${(id.kernel.configSha256 ?? 'noconfig').slice(0, 8)}`,
  ];
  for (const form of forms) {
    const labels = keys.map((k) => clean(form(k)));
    if (new Set(labels).size === labels.length) return labels;
  }
  // Still equal (tool version or selection differ): number them.
  const last = keys.map((k) => clean(forms[forms.length - 1]!(k)));
  return last.map((l, i) => `${l}#${i + 1}`);
}

export function mergeRuns(folders: RunFolder[]): MergedRun[] {
  const groups = new Map<string, RunFolder[]>();
  for (const f of folders) groups.set(runKey(f.identity), [...(groups.get(runKey(f.identity)) ?? []), f]);
  const sets = [...groups.values()].map(checkShardSet);
  const labels = labelRuns(sets.map((s) => s[0]!.identity));
  const runs = sets.map((parts, i): MergedRun => {
    const first = parts[0]!.identity;
    const tests: MergedTest[] = parts.flatMap((p) => p.results.map((r) => ({ ...r, from: p.dir })));
    const problems: string[] = [];
    for (const p of parts) {
      const where = parts.length > 1 ? `shard ${shardLabel(p.identity.shard!)}: ` : '';
      if (!p.identity.finished) problems.push(`${where}the suites did not finish (${p.dir})`);
      else if (!existsSync(join(p.dir, 'results.ktap'))) problems.push(`${where}no results.ktap in ${p.dir}`);
      if (p.identity.vm && !p.identity.vm.ok) problems.push(...p.identity.vm.reasons.map((r) => `${where}${r}`));
      if (p.identity.finished && p.identity.selection && p.identity.selection.total === 0) problems.push(`${where}no test was selected (${p.identity.select ?? 'the selection'} matches nothing)`);
    }
    const counts = {
      pass: tests.filter((t) => t.status.kind === 'pass').length,
      fail: tests.filter((t) => t.status.kind === 'fail').length,
      skip: tests.filter((t) => t.status.kind === 'skip').length,
    };
    const versions = [...new Set(parts.map((p) => p.identity.kernel.version))];
    const identity: RunIdentity = {
      ...first,
      shard: null,
      kernel: { ...first.kernel, version: versions.join(' | ') },
      finished: parts.every((p) => p.identity.finished),
      counts: null,
    };
    return { label: labels[i]!, identity, parts, tests, problems, counts, ok: problems.length === 0 && counts.fail === 0 };
  });
  return runs.sort((a, b) => a.label.localeCompare(b.label));
}
