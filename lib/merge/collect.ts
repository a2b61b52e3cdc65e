// Finds the result folders under the paths given to `merge`: every folder that
// holds a run.json (a whole run or one shard), at any depth, so a CI job's
// downloaded artifacts (one folder per job, each with OUT/<profile>/) can be
// passed as they are. A folder with results but no run.json is refused: its
// run did not finish, or predates run.json, and nothing reads such a folder.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readKtapResults } from '../parity/table.ts';
import { readRunIdentity, RUN_IDENTITY_FILE } from '../report/run-identity.ts';
import { MergeError, type RunFolder } from './types.ts';

const MAX_DEPTH = 6;

function walk(dir: string, depth: number, found: string[], unfinished: string[]): void {
  if (existsSync(join(dir, RUN_IDENTITY_FILE))) {
    found.push(dir);
    return;
  }
  if (existsSync(join(dir, 'results.ktap')) || existsSync(join(dir, 'results.json'))) unfinished.push(dir);
  if (depth >= MAX_DEPTH) return;
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.') || name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, depth + 1, found, unfinished);
  }
}

export function collectRunFolders(paths: readonly string[]): RunFolder[] {
  if (paths.length === 0) throw new MergeError('no result folder given');
  const found: string[] = [];
  const unfinished: string[] = [];
  for (const p of paths) {
    const dir = resolve(p);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MergeError(`${p}: not a folder`);
    const before = found.length;
    walk(dir, 0, found, unfinished);
    if (found.length === before && !unfinished.some((u) => u.startsWith(dir))) throw new MergeError(`${p}: no results folder (no ${RUN_IDENTITY_FILE}) in it`);
  }
  if (unfinished.length > 0) {
    throw new MergeError(
      `results without a ${RUN_IDENTITY_FILE} (the run did not finish, or an older version wrote them): ${unfinished.join(', ')}`,
    );
  }
  const unique = [...new Set(found)];
  return unique.map((dir) => {
    const identity = readRunIdentity(dir)!;
    if (identity.format !== 1) throw new MergeError(`${join(dir, RUN_IDENTITY_FILE)}: unknown format ${String(identity.format)}`);
    return { dir, identity, results: identity.finished ? readKtapResults(join(dir, 'results.ktap')) : [] };
  });
}
