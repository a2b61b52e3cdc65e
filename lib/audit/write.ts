// From raw folders to the three reports: what `iommufd-conformance audit` and
// `npm test` call. Input problems (no raw file, a raw file or a known-differences
// table that does not validate) become problems of the verdict, so the reports
// are still written and say what is wrong.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { appliesToKernel, citationsOf, KNOWN_DIFFERENCES_PATH, KnownDifferencesError, loadKnownDifferences, type KnownDifference } from './known-differences.ts';
import { cachedKernelTrees, checkCitation } from './source-check.ts';
import { AUDIT_PROFILES, AuditInputError, auditJson, buildAudit, readRawFile, scenarioIdsOf, type Audit, type LoadedRaw } from './report.ts';
import { renderHtml } from './render-html.ts';
import { renderMarkdown } from './render-markdown.ts';
import { auditKernels } from './switches.ts';
import { AUDIT_RAW_FILE } from './types.ts';

export interface AuditFiles {
  markdown: string;
  json: string;
  html: string;
}

export interface AuditFromFoldersOptions {
  /** Folders holding audit-raw.json, or <profile>/audit-raw.json. */
  rawDirs: string[];
  knownPath?: string;
  /** Problems found before reading (a guest that failed, say): they fail the verdict too. */
  problems?: string[];
  /**
   * The kernel trees to check citations in, by kernel release (uname -r); default: the trees in the build
   * cache (lib/audit/source-check.ts cachedKernelTrees), one of which the audited kernel was built from.
   */
  trees?: ReadonlyMap<string, string>;
}

/**
 * The audited kernel's citations, checked against that kernel's own tree (the tree it was built from, in the
 * cache): every entry that applies to the run (its `when` met) must cite source of this kernel, and every
 * citation naming this kernel must be true of its tree. A tree that is not there is a problem too: nothing is
 * taken on trust.
 */
export function kernelCitationProblems(audit: Audit, trees: ReadonlyMap<string, string>): string[] {
  const kernel = auditKernels(audit)[0];
  if (kernel === undefined) return [];
  const label = (k: KnownDifference) => `${k.scenario} (${k.between.join(' vs ')}${k.when ? `, when ${JSON.stringify(k.when)}` : ''})`;
  const problems: string[] = [];
  // An entry that explains a difference this run showed must say why in this kernel's own source. One line
  // for them all: a kernel no citation names (a user's tree, a new release) leaves every such entry uncited.
  // An entry that explained nothing here (6.1, whose audit has no compat cells) needs no citation of it.
  const explaining = new Set(audit.rows.flatMap((r) => r.comparisons.filter((c) => c.state === 'explained' && c.known).map((c) => c.known!)));
  const uncited = audit.known.filter((k) => explaining.has(k) && appliesToKernel(k, audit.behaviour) && citationsOf(k, kernel).length === 0);
  if (uncited.length > 0) {
    const shown = uncited.slice(0, 3).map(label).join('; ');
    problems.push(`${uncited.length} known difference(s) explain this run's differences on kernel ${kernel} but cite no source of its tree (add its lines to their citations in fixtures/audit/known-differences.json): ${shown}${uncited.length > 3 ? `; and ${uncited.length - 3} more` : ''}`);
  }
  const cited = audit.known.filter((k) => citationsOf(k, kernel).length > 0);
  if (cited.length === 0) return problems;
  const tree = trees.get(kernel);
  if (!tree) return [...problems, `${cited.length} known difference(s) cite kernel ${kernel}'s tree, which is not in the cache: their citations are unchecked`];
  for (const k of cited) {
    for (const s of citationsOf(k, kernel)) {
      const p = checkCitation(tree, s, kernel);
      if (p) problems.push(`known difference ${label(k)}: citation not true of ${tree}: ${p}`);
    }
  }
  return problems;
}

/** Reads every raw file it finds (a missing one is a problem of the verdict, not an exception). */
export function auditFromFolders(opts: AuditFromFoldersOptions): Audit {
  const problems: string[] = [...(opts.problems ?? [])];
  const raws: LoadedRaw[] = [];
  for (const dir of opts.rawDirs) {
    const d = resolve(dir);
    const direct = join(d, AUDIT_RAW_FILE);
    const files = existsSync(direct) ? [direct] : AUDIT_PROFILES.map((p) => join(d, p, AUDIT_RAW_FILE)).filter((f) => existsSync(f));
    if (files.length === 0) problems.push(`${d}: no ${AUDIT_RAW_FILE} there nor in ${AUDIT_PROFILES.map((p) => `${p}/`).join(' or ')}`);
    for (const f of files) {
      try {
        raws.push(readRawFile(f));
      } catch (e) {
        if (!(e instanceof AuditInputError)) throw e;
        problems.push(e.message);
      }
    }
  }
  let known: KnownDifference[] = [];
  try {
    known = loadKnownDifferences(opts.knownPath ?? KNOWN_DIFFERENCES_PATH, raws.length > 0 ? scenarioIdsOf(raws) : undefined);
  } catch (e) {
    if (!(e instanceof KnownDifferencesError)) throw e;
    problems.push(e.message);
  }
  const audit = buildAudit(raws, known, problems);
  const citations = citationOutcome(audit, opts.trees ?? cachedKernelTrees());
  for (const n of citations.notes) process.stdout.write(`audit: citations not checked (a host audit; not a failure): ${n}\n`);
  return citations.failures.length === 0 ? audit : buildAudit(raws, known, [...problems, ...citations.failures], new Date(audit.generated));
}

/**
 * What the citation check makes of an audit: failures for a VM audit, whose kernel the tool built from a
 * tree it has; notes for a host audit (audit --host), which runs on the user's own kernel, whose tree is
 * rarely at hand: its citations are said to be unchecked, and the audit is judged on its cells.
 */
export function citationOutcome(audit: Audit, trees: ReadonlyMap<string, string>): { failures: string[]; notes: string[] } {
  const problems = kernelCitationProblems(audit, trees);
  return audit.host ? { failures: [], notes: problems } : { failures: problems, notes: [] };
}

export function writeAuditReports(audit: Audit, outDir: string): AuditFiles {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const files: AuditFiles = { markdown: join(dir, 'audit.md'), json: join(dir, 'audit.json'), html: join(dir, 'audit.html') };
  writeFileSync(files.markdown, renderMarkdown(audit));
  writeFileSync(files.json, `${JSON.stringify(auditJson(audit), null, 2)}\n`);
  writeFileSync(files.html, renderHtml(audit));
  return files;
}
