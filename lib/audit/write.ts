// From raw folders to the three reports: what `iommufd-conformance audit` and
// `npm test` call. Input problems (no raw file, a raw file or a known-differences
// table that does not validate) become problems of the verdict, so the reports
// are still written and say what is wrong.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KNOWN_DIFFERENCES_PATH, KnownDifferencesError, loadKnownDifferences, type KnownDifference } from './known-differences.ts';
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
  return buildAudit(raws, known, problems);
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
