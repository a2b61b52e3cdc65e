// The published audit: docs/audit/ holds the reports (audit.md, audit.json,
// audit.html) of the last full run, so a VMM author reads the answer without
// booting anything. `npm test` compares its own run with it and fails where
// they differ, so the published report cannot go stale: a change in the
// kernel's answers, the model's predictions, the scenarios or the known
// differences shows up as a failure until the report is published again
// (`iommufd-conformance audit --raw OUT/vm --publish`).
//
// The comparison is of what the report says, not of its bytes: when it was
// generated and where the raw files were read from are provenance, shown in
// the report (which run produced each cell, and when) but not compared.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';
import type { AuditFiles } from './write.ts';

export const PUBLISHED_AUDIT_DIR = join(PACKAGE_ROOT, 'docs', 'audit');

/** The parts of audit.json that the comparison reads (format 1, lib/audit/report.ts auditJson). */
interface AuditJsonFile {
  format: number;
  generated: string;
  profiles: Record<string, { state: string; kernel?: string; source?: string }>;
  backends: Record<string, unknown>;
  scenarios: Array<{ id: string } & Record<string, unknown>>;
  knownDifferences: Array<{ anchor: string } & Record<string, unknown>>;
  verdict: { ok: boolean } & Record<string, unknown>;
}

export function readAuditJson(path: string): AuditJsonFile {
  const j = JSON.parse(readFileSync(path, 'utf8')) as AuditJsonFile;
  if (j.format !== 1 || !Array.isArray(j.scenarios) || !Array.isArray(j.knownDifferences)) {
    throw new Error(`${path}: not an audit.json of format 1`);
  }
  return j;
}

/** The first place two JSON values differ, as a path and the two values; undefined when equal. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (Object.is(a, b)) return undefined;
  const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 120));
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return `${path || '(value)'}: ${show(a)} -> ${show(b)}`;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  for (const key of [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort()) {
    const d = firstDifference(ao[key], bo[key], path ? `${path}.${key}` : key);
    if (d) return d;
  }
  return undefined;
}

function kernelsOf(j: AuditJsonFile): string {
  return Object.entries(j.profiles)
    .map(([p, s]) => `${p} ${s.state === 'ran' ? (s.kernel ?? '?') : s.state}`)
    .join(', ');
}

export interface PublishedComparison {
  /** false when the two were not compared (different kernels, nothing published): `note` says why. */
  compared: boolean;
  note: string;
  /** One line per difference; empty when the published report says what this run says. */
  drift: string[];
}

/**
 * What differs between the published report and this run's: every scenario
 * (added, removed, or the first field that changed), every known difference,
 * the verdict. Only reports of the same kernels are compared.
 */
export function comparePublished(published: AuditJsonFile, run: AuditJsonFile): PublishedComparison {
  if (kernelsOf(published) !== kernelsOf(run)) {
    return { compared: false, note: `not compared: the published report is of ${kernelsOf(published)}, this run of ${kernelsOf(run)}`, drift: [] };
  }
  const drift: string[] = [];
  const byId = <T extends { id: string }>(xs: T[]) => new Map(xs.map((x) => [x.id, x]));
  const pub = byId(published.scenarios);
  const now = byId(run.scenarios);
  for (const [id, s] of now) {
    const p = pub.get(id);
    if (!p) drift.push(`scenario ${id}: in this run, not in the published report`);
    else {
      const d = firstDifference(p, s);
      if (d) drift.push(`scenario ${id}: ${d}`);
    }
  }
  for (const id of pub.keys()) if (!now.has(id)) drift.push(`scenario ${id}: in the published report, not in this run`);
  const pubKnown = new Map(published.knownDifferences.map((k) => [k.anchor, k]));
  const nowKnown = new Map(run.knownDifferences.map((k) => [k.anchor, k]));
  for (const [anchor, k] of nowKnown) {
    const d = firstDifference(pubKnown.get(anchor), k);
    if (d) drift.push(`known difference ${anchor}: ${pubKnown.has(anchor) ? d : 'not in the published report'}`);
  }
  for (const anchor of pubKnown.keys()) if (!nowKnown.has(anchor)) drift.push(`known difference ${anchor}: in the published report, no longer listed`);
  const dv = firstDifference(published.verdict, run.verdict, 'verdict');
  if (dv) drift.push(dv);
  return { compared: true, note: `compared with the published report of ${published.generated} (${kernelsOf(published)})`, drift };
}

/** This run's reports against docs/audit/: the lines to print and whether it failed. */
export function checkPublished(runJsonPath: string, dir = PUBLISHED_AUDIT_DIR): { lines: string[]; failures: number } {
  const publishedPath = join(dir, 'audit.json');
  const how = 'if this run is right, publish it: `npx iommufd-conformance audit --raw OUT/vm --publish` (OUT: this run\'s --out) and commit docs/audit/';
  if (!existsSync(publishedPath)) return { lines: [`published audit: FAILED: ${publishedPath} does not exist; ${how}`], failures: 1 };
  const cmp = comparePublished(readAuditJson(publishedPath), readAuditJson(runJsonPath));
  if (!cmp.compared) return { lines: [`published audit: ${cmp.note}`], failures: 0 };
  if (cmp.drift.length === 0) return { lines: [`published audit: current (${cmp.note})`], failures: 0 };
  const shown = cmp.drift.slice(0, 10).map((d) => `published audit: STALE: ${d}`);
  if (cmp.drift.length > 10) shown.push(`published audit: ... and ${cmp.drift.length - 10} more`);
  return { lines: [...shown, `published audit: FAILED: docs/audit/ differs from this run in ${cmp.drift.length} place(s) (${cmp.note}); ${how}`], failures: 1 };
}

/** Copies a run's three reports into docs/audit/ (the caller checks the verdict first). */
export function publishAudit(files: AuditFiles, dir = PUBLISHED_AUDIT_DIR): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [from, name] of [[files.markdown, 'audit.md'], [files.json, 'audit.json'], [files.html, 'audit.html']] as const) {
    copyFileSync(from, join(dir, name));
    written.push(join(dir, name));
  }
  return written;
}
