// `iommufd-conformance run`: the suites on the current host, through mocha's
// programmatic API, reported on the console and as results.json / .tap / .xml.
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Mocha from 'mocha';
// Imported, not named by path, so that a bundle (lib/vm/guest-bundle.ts)
// carries the reporter with the same copy of mocha it was written against.
import ConformanceReporter from '../report/reporter.cjs';
import { findingOf, loadFindings, REPORTED_FINDINGS_FILE } from '../vm/findings.ts';
import { removeRunIdentity, runningKernel, toolIdentity, writeRunIdentity } from '../report/run-identity.ts';
import { applyShard, shardLabel, type Shard } from '../shard.ts';
import { kernelLogRootHooks } from '../vm/kernel-log.ts';
import { bundledTestFiles } from './bundled-tests.ts';
import { PACKAGE_ROOT } from './paths.ts';

/** Which tests of the loaded files run: all, or those matching a pattern and/or named by KTAP name. */
export interface TestSelection {
  /** Only tests whose full title matches (mocha's --grep). */
  grep?: string;
  /** Only the tests with these KTAP names (FIXTURE.VARIANT.TEST). */
  tests?: string[];
  /** Only this shard of the selected tests (lib/shard.ts). */
  shard?: Shard | null;
}

export interface RunSuitesOptions extends TestSelection {
  /** Test files to run (see testFilesIn). */
  files: string[];
  out?: string;
  bail?: boolean;
  /** Read the kernel log after every test and fail the test during which a WARN, BUG... appeared. */
  kernelLog?: boolean;
  /** What run.json names the run by: the profile, or the files that ran. */
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

/**
 * Keeps only the selected tests in the suite tree, and drops suites left
 * empty (their hooks then do not run either). Returns the KTAP names kept.
 * Selecting by pruning rather than by mocha's grep also keeps a failing
 * hook's failHookAffectedTests to the selected tests.
 */
export function selectTests(root: Mocha.Suite, selection: TestSelection): string[] {
  const grep = selection.grep === undefined ? null : new RegExp(selection.grep);
  const names = selection.tests === undefined ? null : new Set(selection.tests);
  const kept: string[] = [];
  const prune = (suite: Mocha.Suite): boolean => {
    suite.tests = suite.tests.filter((t) => {
      const name = ConformanceReporter.ktapName(t);
      const keep = (!grep || grep.test(t.fullTitle())) && (!names || names.has(name));
      if (keep) kept.push(name);
      return keep;
    });
    suite.suites = suite.suites.filter(prune);
    return suite.tests.length > 0 || suite.suites.length > 0;
  };
  prune(root);
  return kept;
}

/**
 * Loads the test files into mocha's suite tree, in order. Files bundled into
 * the guest's CLI (lib/cli/bundled-tests.ts) are evaluated in place, with the
 * same events mocha's own loadFilesAsync emits around each file (the bdd
 * interface takes the file's name from them); any other file through mocha.
 */
async function loadTestFiles(mocha: Mocha, files: string[]): Promise<void> {
  const bundled = files.filter((f) => bundledTestFiles.has(f));
  if (bundled.length === 0) {
    for (const f of files) mocha.addFile(f);
    await mocha.loadFilesAsync();
    return;
  }
  if (bundled.length !== files.length) {
    throw new Error(`test files neither all bundled nor all on disk: ${files.filter((f) => !bundledTestFiles.has(f)).join(', ')} not in this bundle`);
  }
  for (const f of files) {
    mocha.suite.emit(Mocha.Suite.constants.EVENT_FILE_PRE_REQUIRE, globalThis, f, mocha);
    const module = await bundledTestFiles.get(f)!();
    mocha.suite.emit(Mocha.Suite.constants.EVENT_FILE_REQUIRE, module, f, mocha);
    mocha.suite.emit(Mocha.Suite.constants.EVENT_FILE_POST_REQUIRE, globalThis, f, mocha);
  }
}

async function loadSuites(files: string[]): Promise<Mocha> {
  const unique = [...new Set(files)];
  if (unique.length === 0) throw new Error('no test files to run');
  const mocha = new Mocha();
  await loadTestFiles(mocha, unique);
  return mocha;
}

/** The KTAP names of the tests these files define, as selected; loads the files, runs nothing. */
export async function listTests(files: string[], selection: TestSelection = {}): Promise<string[]> {
  const mocha = await loadSuites(files);
  let names = selectTests(mocha.suite, selection);
  if (selection.shard) {
    applyShard(mocha.suite, selection.shard, null, (t) => ConformanceReporter.ktapName(t));
    const kept = new Set<string>();
    mocha.suite.eachTest((t) => {
      kept.add(ConformanceReporter.ktapName(t));
    });
    names = names.filter((n) => kept.has(n));
  }
  mocha.dispose();
  return names;
}

/**
 * The KTAP names, as selected, of the tests each set of files defines (one list per set, in its files'
 * order), from one loading of every file: an ES module is evaluated once per process, so listing a second
 * set that shares a file with the first (every VM profile shares suites/vm/common) would find its tests
 * already defined elsewhere and list none of them.
 */
export async function listTestsByFileSet(fileSets: string[][], selection: Omit<TestSelection, 'shard'> = {}): Promise<string[][]> {
  const mocha = await loadSuites(fileSets.flat());
  selectTests(mocha.suite, selection);
  const byFile = new Map<string, string[]>();
  mocha.suite.eachTest((t) => {
    const file = resolve(t.file ?? '');
    byFile.set(file, [...(byFile.get(file) ?? []), ConformanceReporter.ktapName(t)]);
  });
  mocha.dispose();
  return fileSets.map((files) => [...new Set(files.map((f) => resolve(f)))].flatMap((f) => byFile.get(f) ?? []));
}

/** Runs the suites and resolves with the number of failed tests. */
/** A known kernel finding (fixtures/findings.json) is reported under its id and does not fail its test. */
function knownFinding(): (problem: string) => string | null {
  const findings = loadFindings();
  return (problem) => {
    const f = findingOf(problem, findings);
    return f ? `${f.id} (${f.doc})` : null;
  };
}

export async function runSuites(opts: RunSuitesOptions): Promise<number> {
  // Suites that write side results (the audit's raw matrix) find the results
  // folder here, in a host run and in a guest alike.
  if (opts.out) process.env.IOMMUFD_CONFORMANCE_OUT = resolve(opts.out);
  // A run.json of an earlier run must not vouch for this one's results.
  if (opts.out) removeRunIdentity(resolve(opts.out));
  // Nor its reported findings count for this one.
  if (opts.out) rmSync(join(resolve(opts.out), REPORTED_FINDINGS_FILE), { force: true });
  const startedAt = new Date().toISOString();
  const files = [...new Set(opts.files)];
  if (files.length === 0) throw new Error('no test files to run');
  const mocha = new Mocha({
    reporter: ConformanceReporter,
    reporterOptions: opts.out ? { out: resolve(opts.out) } : {},
    timeout: 120000,
    bail: opts.bail ?? false,
    // A failing before/beforeEach hook fails the tests it took with it, by name.
    failHookAffectedTests: true,
    ...(opts.kernelLog
      ? { rootHooks: kernelLogRootHooks((why) => process.stdout.write(`kernel log: not read after each test: ${why}\n`), undefined, knownFinding()) }
      : {}),
  } as Mocha.MochaOptions);
  await loadTestFiles(mocha, files);
  if (opts.grep !== undefined || opts.tests !== undefined) selectTests(mocha.suite, opts);
  // The shard is cut from what the selection kept: every shard of a set selects the same list.
  const shard = opts.shard ?? null;
  const selection = applyShard(mocha.suite, shard, null, (t) => ConformanceReporter.ktapName(t));
  if (shard) process.stdout.write(`shard ${shardLabel(shard)}: ${selection.selected} of ${selection.total} selected tests (selection ${selection.digest})\n`);
  const { failures, stats } = await new Promise<{ failures: number; stats: Mocha.Stats | undefined }>((done) => {
    const runner = mocha.run((failures) => done({ failures, stats: runner.stats }));
  });
  if (opts.out) {
    writeRunIdentity(resolve(opts.out), {
      format: 1,
      tool: toolIdentity(),
      profile: opts.profile ?? process.env.IOMMUFD_CONFORMANCE_PROFILE ?? 'custom',
      select: [opts.grep !== undefined ? `--grep ${opts.grep}` : '', ...(opts.tests ?? []).map((t) => `--test ${t}`)].filter(Boolean).join(' ') || null,
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
