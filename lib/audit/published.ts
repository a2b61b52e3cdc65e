// The published audit: docs/audit/<kernel>/<platform>/ holds the reports (audit.md, audit.json, audit.html)
// of the last passing run on that kernel and IOMMU platform (lib/audit/published-layout.ts), and
// docs/audit/audit.md and audit.html put every part side by side (lib/audit/render-published.ts), so a VMM
// author reads the answer without booting anything. `audit --publish` adds or replaces one part.
// `npm test` compares each of its audits (the main one and each platform's) with the part of its kernel and
// platform and fails where they differ, or where that part was never published, so the published report
// cannot go stale: a change in the kernel's answers, the model's predictions, the scenarios or the known
// differences shows up as a failure until the part is published again.
//
// The comparison is of what the report says, not of its bytes: when it was
// generated and where the raw files were read from are provenance, shown in
// the report (which run produced each part, and when) but not compared.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { platformKey, PUBLISHED_AUDIT_DIR, publishedParts, readAuditJson, reportKernel, reportPlatform, type AuditJsonFile } from './published-layout.ts';
import { renderPublishedHtml, renderPublishedMarkdown } from './render-published.ts';
import type { AuditFiles } from './write.ts';

export { BASELINE_PLATFORM, platformKey, platformLabel, PUBLISHED_AUDIT_DIR, publishedKernels, publishedParts, readAuditJson, reportKernel, reportPlatform, type AuditJsonFile, type PublishedPart } from './published-layout.ts';

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

/** What a report ran on: each profile's kernel (or state) and the platform. */
function identityOf(j: AuditJsonFile): string {
  const kernels = Object.entries(j.profiles)
    .map(([p, s]) => `${p} ${s.state === 'ran' ? (s.kernel ?? '?') : s.state}`)
    .join(', ');
  return `${kernels}; platform ${reportPlatform(j) ?? '(none)'}`;
}

export interface PublishedComparison {
  /** false when the two were not compared (different kernels or platforms): `note` says why. */
  compared: boolean;
  note: string;
  /** One line per difference; empty when the published report says what this run says. */
  drift: string[];
}

/**
 * What differs between the published report and this run's: every scenario
 * (added, removed, or the first field that changed), every known difference,
 * the verdict. Only reports of the same kernels and platform are compared.
 */
export function comparePublished(published: AuditJsonFile, run: AuditJsonFile): PublishedComparison {
  if (identityOf(published) !== identityOf(run)) {
    return { compared: false, note: `not compared: the published report is of ${identityOf(published)}, this run of ${identityOf(run)}`, drift: [] };
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
  return { compared: true, note: `compared with the published report of ${published.generated} (${identityOf(published)})`, drift };
}

/** How to publish a run, for the messages: npm test's main audit by default. */
export const PUBLISH_MAIN_RUN = '`npx iommufd-conformance audit --raw OUT/vm --publish` (OUT: this run\'s --out)';

/**
 * This run's reports against docs/audit/: the part of the same kernel and platform. A kernel with no part
 * at all is not compared (a kernel the report does not cover: npm test's --kernel-version 7.3, a user's
 * tree), and says so. A published kernel without this platform's part fails: the platform's results are
 * nowhere a reader finds them. No part at all fails. `publish` says how to publish this run.
 */
export function checkPublished(runJsonPath: string, dir = PUBLISHED_AUDIT_DIR, publish = PUBLISH_MAIN_RUN): { lines: string[]; failures: number } {
  const how = `if this run is right, publish it: ${publish} and commit docs/audit/`;
  const run = readAuditJson(runJsonPath);
  const kernel = reportKernel(run);
  const platform = reportPlatform(run);
  const parts = publishedParts(dir);
  if (parts.length === 0) return { lines: [`published audit: FAILED: ${dir} has no part (docs/audit/<kernel>/<platform>/audit.json); ${how}`], failures: 1 };
  const kernels = [...new Set(parts.map((p) => p.kernel))];
  if (kernel === null || platform === null || !kernels.includes(kernel)) {
    return { lines: [`published audit: not compared: docs/audit/ has parts for kernels ${kernels.join(', ')}, this run is of ${identityOf(run)}`], failures: 0 };
  }
  const key = platformKey(platform);
  const part = parts.find((p) => p.kernel === kernel && p.key === key);
  const others = parts.filter((p) => p !== part);
  const rest = others.length > 0 ? `; not compared, no run of theirs here: ${others.map((p) => p.path).join(', ')}` : '';
  if (!part) {
    return {
      lines: [`published audit: FAILED: NOT PUBLISHED: docs/audit/${kernel}/${key}/ (platform '${platform}' on ${kernel}) does not exist, so nothing a reader sees says what this run says; ${how}`],
      failures: 1,
    };
  }
  const cmp = comparePublished(part.json, run);
  if (!cmp.compared) return { lines: [`published audit: FAILED: docs/audit/${part.path}/: ${cmp.note}`], failures: 1 };
  if (cmp.drift.length === 0) return { lines: [`published audit: ${part.path}: current (${cmp.note})${rest}`], failures: 0 };
  const shown = cmp.drift.slice(0, 10).map((d) => `published audit: STALE: ${d}`);
  if (cmp.drift.length > 10) shown.push(`published audit: ... and ${cmp.drift.length - 10} more`);
  return { lines: [...shown, `published audit: FAILED: docs/audit/${part.path}/ differs from this run in ${cmp.drift.length} place(s) (${cmp.note}); ${how}`], failures: 1 };
}

/**
 * Copies a run's three reports into docs/audit/<kernel>/<platform>/ (adding or replacing that part only;
 * the caller checks the verdict first), then rewrites docs/audit/audit.md and audit.html, every part side
 * by side. Returns the files written.
 */
export function publishAudit(files: AuditFiles, dir = PUBLISHED_AUDIT_DIR): string[] {
  const json = readAuditJson(files.json);
  const kernel = reportKernel(json);
  if (kernel === null) throw new Error(`${files.json}: not the report of one kernel: nothing published`);
  const platform = reportPlatform(json);
  if (platform === null) throw new Error(`${files.json}: not the report of one IOMMU platform: nothing published`);
  const part = join(dir, kernel, platformKey(platform));
  // Two platform names with one folder name would overwrite each other's part: refused.
  if (existsSync(join(part, 'audit.json'))) {
    const there = reportPlatform(readAuditJson(join(part, 'audit.json')));
    if (there !== platform) throw new Error(`${part} holds platform '${there}', not '${platform}' (the same folder name): nothing published`);
  }
  mkdirSync(part, { recursive: true });
  const written: string[] = [];
  for (const [from, name] of [[files.markdown, 'audit.md'], [files.json, 'audit.json'], [files.html, 'audit.html']] as const) {
    copyFileSync(from, join(part, name));
    written.push(join(part, name));
  }
  written.push(...writePublishedIndex(dir));
  return written;
}

/** docs/audit/audit.md and audit.html from the parts there. */
export function writePublishedIndex(dir = PUBLISHED_AUDIT_DIR): string[] {
  writeFileSync(join(dir, 'audit.md'), renderPublishedMarkdown(dir));
  writeFileSync(join(dir, 'audit.html'), renderPublishedHtml(dir));
  return [join(dir, 'audit.md'), join(dir, 'audit.html')];
}
