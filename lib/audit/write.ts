// From raw folders to the three reports: what `iommufd-conformance audit` and
// `npm test` call. Input problems (no raw file, a raw file or a known-differences
// table that does not validate) become problems of the verdict, so the reports
// are still written and say what is wrong.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { appliesTo, appliesToBaseline, KNOWN_DIFFERENCES_PATH, KnownDifferencesError, loadKnownDifferences, type KnownDifference } from './known-differences.ts';
import { checkCitation } from './source-check.ts';
import { cachedDebianSources } from '../kbuild/source.ts';
import { AUDIT_PROFILES, AuditInputError, auditJson, buildAudit, readRawFile, scenarioIdsOf, type Audit, type LoadedRaw } from './report.ts';
import { renderHtml } from './render-html.ts';
import { renderMarkdown } from './render-markdown.ts';
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
   * The kernel trees to check citations in, by kernel release (uname -r); default: the Debian trees in the
   * build cache (lib/kbuild/source.ts cachedDebianSources), one of which the audited kernel was built from.
   */
  trees?: ReadonlyMap<string, string>;
}

function cachedTrees(): Map<string, string> {
  try {
    return new Map(cachedDebianSources().map((t) => [t.version, t.dir]));
  } catch {
    return new Map();
  }
}

/**
 * The citations of the entries that explain this kernel only (a `when` that 6.12 does not meet), checked
 * against the audited kernel's own tree: they cite it, not 6.12's (whose entries the unit suite checks
 * against 6.12's tree). A tree that is not there is a problem too: nothing is taken on trust.
 */
export function kernelCitationProblems(audit: Audit, trees: ReadonlyMap<string, string>): string[] {
  const own = audit.known.filter((k) => appliesTo(k, audit.behaviour) && !appliesToBaseline(k));
  if (own.length === 0) return [];
  const kernel = Object.values(audit.profiles).find((p) => p.state === 'ran')?.kernel;
  const tree = kernel === undefined ? undefined : trees.get(kernel);
  if (!tree) return [`${own.length} known difference(s) for this kernel's behaviour cite its tree, which is not in the cache (kernel ${kernel ?? 'unknown'}): their citations are unchecked`];
  const problems: string[] = [];
  for (const k of own) {
    for (const s of k.source) {
      const p = checkCitation(tree, s);
      if (p) problems.push(`known difference ${k.scenario} (${k.between.join(' vs ')}, when ${JSON.stringify(k.when)}): citation not true of ${tree}: ${p}`);
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
  const citations = kernelCitationProblems(audit, opts.trees ?? cachedTrees());
  return citations.length === 0 ? audit : buildAudit(raws, known, [...problems, ...citations], new Date(audit.generated));
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
