// The command line: `vm` (suites in a QEMU guest), `run` (suites on this host).
import { SetupError } from '../kbuild/source.ts';
import { parseProfiles, PROFILES, profiles, type ProfileName } from '../vm/profiles.ts';
import { parseShard, type Shard } from '../shard.ts';
import { parseOptions, UsageError, usageOf, type OptionSpec } from './args.ts';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { PACKAGE_ROOT } from './paths.ts';
import { runSuites, testFilesIn } from './run.ts';
import { testAll } from './test-all.ts';

/** Shared by every command that runs suites (lib/shard.ts). */
const shardOption: OptionSpec = {
  shard: { type: 'string', help: 'K/N: run only the K-th of N parts of the selected tests (split by test name, the same on every machine)' },
};

function shardOf(o: Record<string, unknown>): Shard | null {
  return typeof o.shard === 'string' ? parseShard(o.shard) : null;
}

const vmSpec: OptionSpec = {
  profile: { type: 'string', default: 'all', help: `${PROFILES.join('|')}|all, comma-separated` },
  out: { type: 'string', default: 'out', help: 'results folder (one sub-folder per profile)' },
  kernel: { type: 'string', help: 'a ready bzImage instead of building one' },
  'kernel-src': { type: 'string', help: 'a Linux tree to build instead of Debian linux-source-6.12' },
  flavour: { type: 'string', default: 'base', help: 'base|debug (debug adds KASAN and lockdep)' },
  accel: { type: 'string', default: 'auto', help: 'auto|kvm|tcg' },
  timeout: { type: 'string', default: '1800', help: 'seconds before a guest is killed' },
  exec: { type: 'string', help: 'run this shell command in the guest instead of the suites' },
  grep: { type: 'string', help: 'only tests whose full title matches' },
  ...shardOption,
};

const runSpec: OptionSpec = {
  profile: { type: 'string', help: `the suites of this profile (${PROFILES.join('|')}); default: all suites` },
  out: { type: 'string', default: 'out', help: 'folder for results.json, results.tap, results.xml' },
  grep: { type: 'string', help: 'only tests whose full title matches' },
  manifest: { type: 'string', help: 'run the bundled test files listed in this guest manifest (used inside test VMs)' },
  ...shardOption,
};

const testSpec: OptionSpec = {
  out: { type: 'string', default: 'out', help: 'results folder' },
  ...shardOption,
};

const paritySpec: OptionSpec = {
  results: { type: 'string', help: 'results.ktap of a mock-profile run (default: the newest under --out)' },
  out: { type: 'string', default: 'out', help: 'where npm test / vm left their results' },
  'kernel-src': { type: 'string', help: 'a Linux tree whose selftests to compare with (default: Debian linux-source-6.12)' },
  markdown: { type: 'string', help: 'also write the table to this Markdown file' },
};

const auditSpec: OptionSpec = {
  out: { type: 'string', default: 'out', help: 'results folder: the guests\' results in OUT/<profile>/, the reports in OUT/audit/' },
  raw: { type: 'string', help: 'only render: a folder with audit-raw.json or <profile>/audit-raw.json (repeatable); boots no VM' },
  known: { type: 'string', help: 'the known-differences table (default: fixtures/audit/known-differences.json)' },
  kernel: { type: 'string', help: 'a ready bzImage instead of building one' },
  accel: { type: 'string', default: 'auto', help: 'auto|kvm|tcg' },
  timeout: { type: 'string', default: '1800', help: 'seconds before a guest is killed' },
  ...shardOption,
};

const mergeSpec: OptionSpec = {
  out: { type: 'string', help: 'where to write merged.ktap, merged.xml, merged.json, merged.html (required)' },
  'kernel-src': { type: 'string', help: 'a Linux tree whose selftests the parity table compares with (default: Debian linux-source-6.12)' },
};

const cacheKeySpec: OptionSpec = {
  flavour: { type: 'string', default: 'base', help: 'base|debug' },
  'kernel-src': { type: 'string', help: 'a Linux tree instead of Debian linux-source-6.12' },
};

const HELP = `iommufd-conformance: conformance tests for the Linux iommufd uAPI and its VFIO compat layer

usage:
  iommufd-conformance vm [options]     run the suites in QEMU guests built and booted here
${usageOf(vmSpec)}
  iommufd-conformance run [options] [FILE|FOLDER...]   run the suites on this host (a profile's, or these test files)
${usageOf(runSpec)}
  iommufd-conformance audit [options]  type1 against iommufd compat, scenario by scenario: audit.md, audit.json, audit.html
${usageOf(auditSpec)}
  iommufd-conformance test [options]   unit suites here, then the VM suites of every profile (npm test)
${usageOf(testSpec)}
  iommufd-conformance merge DIR... [options]  one report (KTAP, xunit, JSON, HTML matrix, parity) from many result folders
${usageOf(mergeSpec)}
  iommufd-conformance cache-key [options]  the guest kernel's cache key (for a CI cache), without building
${usageOf(cacheKeySpec)}
  iommufd-conformance parity [options] each kernel iommu selftest case, our test for it, its status in the last run
${usageOf(paritySpec)}
`;

async function parityCommand(argv: string[]): Promise<number> {
  const { options: o } = parseOptions(argv, paritySpec);
  const { lastMockResults, parityTable } = await import('./parity.ts');
  const { parityHolds, renderParityMarkdown } = await import('../parity/table.ts');
  const results = (o.results as string | undefined) ?? lastMockResults(o.out as string);
  const table = await parityTable({ results, kernelSrc: o['kernel-src'] as string | undefined });
  const markdown = renderParityMarkdown(table);
  process.stdout.write(markdown);
  if (!results) process.stdout.write(`(no results.ktap under ${o.out}: run \`iommufd-conformance vm --profile mock\` or npm test first)\n`);
  if (o.markdown) writeFileSync(o.markdown as string, markdown);
  return parityHolds(table) ? 0 : 1;
}

async function auditCommand(argv: string[]): Promise<number> {
  // --raw may be given several times; the option parser keeps one value per name.
  const rawDirs: string[] = [];
  const others: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--raw') {
      if (argv[i + 1] === undefined) throw new UsageError('--raw needs a value');
      rawDirs.push(argv[++i]!);
    } else if (arg.startsWith('--raw=')) rawDirs.push(arg.slice('--raw='.length));
    else others.push(arg);
  }
  const { options: o, rest } = parseOptions(others, auditSpec);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
  const accel = o.accel as string;
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') throw new UsageError('--accel is auto, kvm or tcg');
  const timeoutSeconds = Number(o.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError('--timeout takes a number of seconds');
  const { runAuditCommand } = await import('./audit.ts');
  return runAuditCommand({ out: o.out as string, rawDirs, knownPath: o.known as string | undefined, kernel: o.kernel as string | undefined, accel, timeoutSeconds, shard: shardOf(o) });
}

async function vmCommand(argv: string[]): Promise<number> {
  const { options: o } = parseOptions(argv, vmSpec);
  const flavour = o.flavour as string;
  if (flavour !== 'base' && flavour !== 'debug') throw new UsageError('--flavour is base or debug');
  const accel = o.accel as string;
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') throw new UsageError('--accel is auto, kvm or tcg');
  const timeoutSeconds = Number(o.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError('--timeout takes a number of seconds');
  const { runInVm } = await import('../vm/run-vm.ts');
  const exec = o.exec as string | undefined;
  if (exec && (o.shard || o.grep)) throw new UsageError('--shard and --grep pick tests; --exec runs a command instead of the tests');
  const { ok, outcomes } = await runInVm({
    profiles: exec && o.profile === 'all' ? ['mock'] : parseProfiles(o.profile as string),
    out: o.out as string,
    flavour,
    kernel: o.kernel as string | undefined,
    kernelSrc: o['kernel-src'] as string | undefined,
    accel,
    timeoutSeconds,
    exec,
    runArgs: o.grep ? ['--grep', o.grep as string] : [],
    shard: shardOf(o),
  });
  // With --exec the guest command's exit code becomes ours.
  if (exec && outcomes.length === 1) return outcomes[0]!.result.exitCode ?? 1;
  return ok ? 0 : 1;
}

async function runCommand(argv: string[]): Promise<number> {
  const { options: o, rest: paths } = parseOptions(argv, runSpec);
  const selected: ProfileName[] = o.profile ? parseProfiles(o.profile as string) : [...PROFILES];
  let files: string[];
  if (paths.length > 0) {
    if (o.profile || o.manifest) throw new UsageError('give test files or folders, or --profile, not both');
    files = paths.flatMap((p) => {
      const found = p.endsWith('.test.ts') ? [resolve(p)] : testFilesIn(resolve(p));
      if (found.length === 0 || !existsSync(found[0]!)) throw new UsageError(`${p}: no *.test.ts file there`);
      return found;
    });
  } else if (o.manifest) {
    const manifest = JSON.parse(readFileSync(o.manifest as string, 'utf8')) as { suites: Record<ProfileName, string[]> };
    files = selected.flatMap((p) => manifest.suites[p] ?? []);
  } else {
    files = selected.flatMap((p) => profiles[p].suites.flatMap(testFilesIn));
  }
  const profile = paths.length > 0 ? paths.map((p) => relative(PACKAGE_ROOT, resolve(p)) || '.').join(',') : selected.join(',');
  const failures = await runSuites({ files, out: o.out as string, grep: o.grep as string | undefined, shard: shardOf(o), profile });
  return failures === 0 ? 0 : 1;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'vm':
        return await vmCommand(rest);
      case 'run':
        return await runCommand(rest);
      case 'parity':
        return await parityCommand(rest);
      case 'audit':
        return await auditCommand(rest);
      case 'test': {
        const { options } = parseOptions(rest, testSpec);
        return await testAll(options.out as string, shardOf(options));
      }
      case 'merge': {
        const { mergeCommand } = await import('./merge.ts');
        return await mergeCommand(rest, mergeSpec);
      }
      case 'cache-key': {
        const { cacheKeyCommand } = await import('./cache-key.ts');
        return await cacheKeyCommand(rest, cacheKeySpec);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof RangeError) {
      process.stderr.write(`iommufd-conformance: ${err.message}\n\n${HELP}`);
      return 2;
    }
    if (err instanceof SetupError) {
      process.stderr.write(`iommufd-conformance: ${err.message}\n`);
      return 3;
    }
    throw err;
  }
}
