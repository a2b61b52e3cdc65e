// `iommufd-conformance run`: the suites on the current host, through mocha's
// programmatic API, reported on the console and as results.json / .tap / .xml.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Mocha from 'mocha';
import { PACKAGE_ROOT } from './paths.ts';

export interface RunSuitesOptions {
  /** Folders (relative to the package root) whose *.test.ts files run. */
  folders: string[];
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
  const mocha = new Mocha({
    reporter: join(PACKAGE_ROOT, 'suites/support/reporter.cjs'),
    reporterOptions: opts.out ? { out: resolve(opts.out) } : {},
    timeout: 120000,
    ...(opts.grep ? { grep: opts.grep } : {}),
    bail: opts.bail ?? false,
  });
  const files = [...new Set(opts.folders.flatMap(testFilesIn))];
  if (files.length === 0) throw new Error(`no test files in ${opts.folders.join(', ')}`);
  for (const f of files) mocha.addFile(f);
  await mocha.loadFilesAsync();
  return new Promise((done) => mocha.run((failures) => done(failures)));
}
