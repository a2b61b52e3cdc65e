// The shapes `iommufd-conformance merge` works on: result folders as read
// (one per run or shard), and runs as merged (a shard set joined into one).
import type { KtapResult } from '../parity/table.ts';
import type { RunIdentity } from '../report/run-identity.ts';

/** Input that cannot be merged (a folder a run did not finish, an overlapping or incomplete shard set). */
export class MergeError extends Error {
  override name = 'MergeError';
}

/** One results folder: a whole run or one shard of it. */
export interface RunFolder {
  /** Absolute path. */
  dir: string;
  identity: RunIdentity;
  /** The folder's results.ktap, in order (empty when the suites did not finish). */
  results: KtapResult[];
}

export interface MergedTest extends KtapResult {
  /** The folder (a shard's, or the whole run's) whose results.ktap reported it. */
  from: string;
}

/** One run: a whole run's folder, or every shard of one split joined. */
export interface MergedRun {
  /** Unique among the merged runs, usable as a KTAP name and an HTML id: PROFILE@RELEASE[+FLAVOUR][...]. */
  label: string;
  identity: RunIdentity;
  /** The folders it came from, shard 1..N in order (one for a whole run). */
  parts: RunFolder[];
  tests: MergedTest[];
  /** Why the run failed outside its tests (a guest that crashed, a kernel WARN, suites that did not finish). */
  problems: string[];
  counts: { pass: number; fail: number; skip: number };
  /** Every test passed or skipped, and nothing else went wrong. */
  ok: boolean;
}

/** The run's suite of a test: its name up to the first dot (kselftest's FIXTURE, our top-level describe). */
export function suiteOf(testName: string): string {
  const dot = testName.indexOf('.');
  return dot === -1 ? testName : testName.slice(0, dot);
}
