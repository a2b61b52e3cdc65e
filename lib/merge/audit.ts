// The type1-vs-compat audit from merged runs: a sharded profile's audit-raw.json
// files each hold the shard's own scenarios (the others read "not run"), so the
// profile's raw is joined from its shards, each scenario and backend taken from
// the shard whose KTAP reported that test (audit.BACKEND.SCENARIO). Runs of the
// same kernel (release, package, config, flavour, machine, tool version) whose
// profiles cover every audit profile then make one audit, written to
// OUT/audit/<kernel>/ by lib/audit's writers; its verdict fails the merge like
// `iommufd-conformance audit` fails.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { htmlId } from '../audit/render-html.ts';
import { AUDIT_PROFILES, AuditInputError, buildAudit, readRawFile, scenarioIdsOf, type Audit, type LoadedRaw } from '../audit/report.ts';
import { KnownDifferencesError, loadKnownDifferences, type KnownDifference } from '../audit/known-differences.ts';
import { AUDIT_RAW_FILE, type BackendId, type BackendResult } from '../audit/types.ts';
import { writeAuditReports, type AuditFiles } from '../audit/write.ts';
import ConformanceReporter from '../report/reporter.cjs';
import type { MergedRun } from './types.ts';

/** The KTAP name of the audit test of one scenario on one backend (lib/report/reporter.cjs names it). */
function auditTestName(backend: string, scenario: string): string {
  return ConformanceReporter.ktapName({ titlePath: () => ['audit', backend, scenario] } as never);
}

/** The run's raw audit file, joined from its shards; null when no part wrote one. Throws AuditInputError. */
export function joinedAuditRaw(run: MergedRun): LoadedRaw | null {
  const parts = run.parts.filter((p) => existsSync(join(p.dir, AUDIT_RAW_FILE)));
  if (parts.length === 0) return null;
  const loaded = parts.map((p) => ({ part: p, raw: readRawFile(join(p.dir, AUDIT_RAW_FILE)) }));
  if (loaded.length === 1 && run.parts.length === 1) return loaded[0]!.raw;
  if (parts.length !== run.parts.length) {
    throw new AuditInputError(`${run.label}: ${run.parts.length - parts.length} of its ${run.parts.length} shards wrote no ${AUDIT_RAW_FILE}`);
  }
  const first = loaded[0]!.raw.raw;
  const ran = loaded.map((l) => new Set(l.part.results.map((r) => r.name)));
  const scenarios = first.scenarios.map((s) => {
    const results: Partial<Record<BackendId, BackendResult>> = {};
    for (const b of Object.keys(s.results) as BackendId[]) {
      const i = ran.findIndex((names) => names.has(auditTestName(b, s.id)));
      const from = loaded[i === -1 ? 0 : i]!.raw.raw.scenarios.find((x) => x.id === s.id);
      const r = from?.results[b];
      if (r) results[b] = r;
    }
    return { ...s, results };
  });
  const backends = { ...first.backends };
  for (const l of loaded) {
    for (const [b, avail] of Object.entries(l.raw.raw.backends) as [BackendId, { available: boolean }][]) if (avail.available) backends[b] = avail;
  }
  return { path: parts.map((p) => join(p.dir, AUDIT_RAW_FILE)).join(' + '), raw: { ...first, backends, scenarios } };
}

export interface MergedAudit {
  /** The kernel, as the runs name it. */
  kernel: string;
  runs: string[];
  audit: Audit;
  files: AuditFiles;
}

/** Builds and writes an audit for every kernel whose merged runs cover every audit profile; returns them and what was left out. */
export function mergedAudits(runs: MergedRun[], outDir: string, knownPath?: string): { audits: MergedAudit[]; notes: string[] } {
  const groups = new Map<string, MergedRun[]>();
  for (const r of runs) {
    const k = r.identity.kernel;
    const key = JSON.stringify([r.identity.tool.version, k.release, k.packageVersion, k.configSha256, k.flavour, k.machine]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const audits: MergedAudit[] = [];
  const notes: string[] = [];
  for (const group of groups.values()) {
    const k = group[0]!.identity.kernel;
    const kernel = `${k.release}${k.flavour && k.flavour !== 'base' ? `+${k.flavour}` : ''}`;
    const problems: string[] = [];
    const raws: LoadedRaw[] = [];
    for (const r of group) {
      try {
        const raw = joinedAuditRaw(r);
        if (raw) raws.push(raw);
      } catch (e) {
        if (!(e instanceof AuditInputError)) throw e;
        problems.push(e.message);
      }
    }
    const have = new Set(raws.map((r) => r.raw.profile));
    if (raws.length === 0 && problems.length === 0) continue;
    const missing = AUDIT_PROFILES.filter((p) => !have.has(p));
    if (missing.length > 0 && problems.length === 0) {
      notes.push(`audit ${kernel}: not built: no audit results of profile ${missing.join(', ')} among the merged runs`);
      continue;
    }
    let known: KnownDifference[] = [];
    try {
      known = loadKnownDifferences(knownPath, raws.length > 0 ? scenarioIdsOf(raws) : undefined);
    } catch (e) {
      if (!(e instanceof KnownDifferencesError)) throw e;
      problems.push(e.message);
    }
    const audit = buildAudit(raws, known, problems);
    const files = writeAuditReports(audit, join(outDir, 'audit', htmlId(kernel)));
    audits.push({ kernel, runs: group.map((r) => r.label), audit, files });
  }
  return { audits, notes };
}
