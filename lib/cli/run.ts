// `iommufd-conformance run`: the suites on the current host, through mocha's
// programmatic API, reported on the console and as results.json / .tap / .xml.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Mocha from 'mocha';
// Imported, not named by path, so that a bundle (lib/vm/guest-bundle.ts)
// carries the reporter with the same copy of mocha it was written against.
import ConformanceReporter from '../report/reporter.cjs';
import { kernelLogHooks } from '../vm/findings.ts';
import { PACKAGE_ROOT } from './paths.ts';

export interface RunSuitesOptions {
  /** Test files to run (see testFilesIn). */
  files: string[];
  out?: string;
  grep?: string;
  bail?: boolean;
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
  const mocha = new Mocha({
    reporter: ConformanceReporter,
    reporterOptions: opts.out ? { out: resolve(opts.out) } : {},
    timeout: 120000,
    ...(opts.grep ? { grep: opts.grep } : {}),
    bail: opts.bail ?? false,
  });
  // In a test VM, the kernel log is read after every test: each report names its test (and its known finding).
  if (process.env.IOMMUFD_CONFORMANCE_IN_VM === '1') mocha.rootHooks(kernelLogHooks(opts.out ? resolve(opts.out) : undefined));
  const files = [...new Set(opts.files)];
  if (files.length === 0) throw new Error('no test files to run');
  for (const f of files) mocha.addFile(f);
  await mocha.loadFilesAsync();
  return new Promise((done) => mocha.run((failures) => done(failures)));
}
