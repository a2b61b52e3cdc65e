// `iommufd-conformance merge`: result folders in, one report out. Reads the
// folders (collect.ts), joins shard sets into runs and refuses what cannot be
// joined (runs.ts), copies each part's report files beside the page so every
// failure links to its report, and writes merged.ktap, merged.xml,
// merged.json and merged.html. Nothing is written when the input is refused.
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { collectRunFolders } from './collect.ts';
import { partFolder, renderMergedHtml, REPORT_FILES, type AuditLink } from './html.ts';
import { mergedJson, type KernelParity } from './json.ts';
import { renderKtap } from './ktap.ts';
import { mergeRuns } from './runs.ts';
import type { MergedRun } from './types.ts';
import { renderXunit } from './xunit.ts';

export interface MergeFiles {
  ktap: string;
  xunit: string;
  json: string;
  html: string;
}

export interface MergeResult {
  runs: MergedRun[];
  files: MergeFiles;
  ok: boolean;
}

export { MergeError } from './types.ts';

/** Reads and checks the folders; throws MergeError with the reason when they cannot be merged. */
export function readRuns(paths: readonly string[]): MergedRun[] {
  return mergeRuns(collectRunFolders(paths));
}

export function writeMerged(runs: MergedRun[], outDir: string, parity: KernelParity[] = [], audits: AuditLink[] = []): MergeResult {
  const out = resolve(outDir);
  mkdirSync(out, { recursive: true });
  // Report files of an earlier merge must not be linked from this one's page.
  rmSync(join(out, 'runs'), { recursive: true, force: true });
  const copied = new Set<string>();
  for (const run of runs) {
    run.parts.forEach((part, i) => {
      const rel = partFolder(run, i);
      mkdirSync(join(out, rel), { recursive: true });
      for (const f of REPORT_FILES) {
        const src = join(part.dir, f);
        if (!existsSync(src)) continue;
        copyFileSync(src, join(out, rel, f));
        copied.add(`${rel}/${f}`);
      }
    });
  }
  const files: MergeFiles = { ktap: join(out, 'merged.ktap'), xunit: join(out, 'merged.xml'), json: join(out, 'merged.json'), html: join(out, 'merged.html') };
  writeFileSync(files.ktap, renderKtap(runs));
  writeFileSync(files.xunit, renderXunit(runs));
  writeFileSync(files.json, `${JSON.stringify(mergedJson(runs, parity), null, 2)}\n`);
  writeFileSync(files.html, renderMergedHtml(runs, parity, { available: (p) => copied.has(p), audits, generatedAt: new Date() }));
  return { runs, files, ok: runs.every((r) => r.ok) };
}
