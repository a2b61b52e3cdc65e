// `iommufd-conformance run`: the suites on the current host, through mocha's
// programmatic API, reported on the console and as results.json / .tap / .xml.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Mocha from 'mocha';
// Imported, not named by path, so that a bundle (lib/vm/guest-bundle.ts)
// carries the reporter with the same copy of mocha it was written against.
import ConformanceReporter from '../report/reporter.cjs';
import { removeRunIdentity, runningKernel, toolIdentity, writeRunIdentity } from '../report/run-identity.ts';
import { applyShard, shardLabel, type Shard } from '../shard.ts';
import { PACKAGE_ROOT } from './paths.ts';

export interface RunSuitesOptions {
  /** Test files to run (see testFilesIn). */
  files: string[];
  out?: string;
  grep?: string;
  bail?: boolean;
  /** Run only this shard's part of the selected tests (lib/shard.ts). */
  shard?: Shard | null;
  /** What run.json names the run by: the profile, or the folders that ran. */
  profile?: string;
}

export function testFilesIn(folder: string): string[] {
  const dir = resolve(PACKAGE_ROOT, folder);
  if (!existsSync(dir)) return [];
  const files: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...testFilesIn(path));
    else if (name.endsWith('.test.ts')) files.push(path);
  }
  return files;
}

/** Runs the suites and resolves with the number of failed tests. */
export async function runSuites(opts: RunSuitesOptions): Promise<number> {
  // Suites that write side results (the audit's raw matrix) find the results
  // folder here, in a host run and in a guest alike.
  if (opts.out) process.env.IOMMUFD_CONFORMANCE_OUT = resolve(opts.out);
  // A run.json of an earlier run must not vouch for this one's results.
  if (opts.out) removeRunIdentity(resolve(opts.out));
  const startedAt = new Date().toISOString();
  const mocha = new Mocha({
    reporter: ConformanceReporter,
    reporterOptions: opts.out ? { out: resolve(opts.out) } : {},
    timeout: 120000,
    ...(opts.grep ? { grep: opts.grep } : {}),
    bail: opts.bail ?? false,
  });
  const files = [...new Set(opts.files)];
  if (files.length === 0) throw new Error('no test files to run');
  for (const f of files) mocha.addFile(f);
  await mocha.loadFilesAsync();
  const grep = (mocha.options.grep as RegExp | undefined) ?? null;
  const shard = opts.shard ?? null;
  const selection = applyShard(mocha.suite, shard, grep, (t) => ConformanceReporter.ktapName(t));
  if (shard) process.stdout.write(`shard ${shardLabel(shard)}: ${selection.selected} of ${selection.total} selected tests (selection ${selection.digest})\n`);
  const { failures, stats } = await new Promise<{ failures: number; stats: Mocha.Stats | undefined }>((done) => {
    const runner = mocha.run((failures) => done({ failures, stats: runner.stats }));
  });
  if (opts.out) {
    writeRunIdentity(resolve(opts.out), {
      format: 1,
      tool: toolIdentity(),
      profile: opts.profile ?? process.env.IOMMUFD_CONFORMANCE_PROFILE ?? 'custom',
      grep: grep ? grep.source : null,
      shard,
      selection,
      kernel: runningKernel(),
      finished: true,
      counts: stats ? { tests: stats.tests, passes: stats.passes, failures: stats.failures, pending: stats.pending } : null,
      startedAt,
      finishedAt: new Date().toISOString(),
    });
  }
  return failures;
}
