// The command line: `vm` (suites in a QEMU guest), `run` (suites on this host).
import { SetupError } from '../kbuild/source.ts';
import { parseProfiles, PROFILES, profiles, type ProfileName } from '../vm/profiles.ts';
import { parseOptions, UsageError, usageOf, type OptionSpec } from './args.ts';
import { DEFAULT_KERNEL_SERIES, KERNEL_SERIES, parseKernelSeries } from '../kbuild/series.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { runSuites, testFilesIn } from './run.ts';
import { testAll } from './test-all.ts';

/** The option of every command that boots a guest: which Debian linux-source-<series> to build. */
const kernelVersionOption = {
  type: 'string',
  default: DEFAULT_KERNEL_SERIES,
  help: `${KERNEL_SERIES.join('|')}: Debian's linux-source-<version> to build (6.1 has no iommufd)`,
} as const;

const vmSpec: OptionSpec = {
  'kernel-version': kernelVersionOption,
  profile: { type: 'string', default: 'all', help: `${PROFILES.join('|')}|all, comma-separated` },
  out: { type: 'string', default: 'out', help: 'results folder (one sub-folder per profile)' },
  kernel: { type: 'string', help: 'a ready bzImage instead of building one' },
  'kernel-src': { type: 'string', help: 'a Linux tree to build instead of Debian linux-source (rebuilt incrementally on every run)' },
  flavour: { type: 'string', default: 'base', help: 'base|debug (debug adds KASAN and lockdep)' },
  accel: { type: 'string', default: 'auto', help: 'auto|kvm|tcg' },
  timeout: { type: 'string', default: '1800', help: 'seconds before a guest is killed' },
  exec: { type: 'string', help: 'run this shell command in the guest instead of the suites' },
  grep: { type: 'string', help: 'only tests whose full title matches' },
};

const runSpec: OptionSpec = {
  profile: { type: 'string', help: `the suites of this profile (${PROFILES.join('|')}); default: all suites` },
  out: { type: 'string', default: 'out', help: 'folder for results.json, results.tap, results.xml' },
  grep: { type: 'string', help: 'only tests whose full title matches' },
  manifest: { type: 'string', help: 'run the bundled test files listed in this guest manifest (used inside test VMs)' },
};

const paritySpec: OptionSpec = {
  results: { type: 'string', help: 'results.ktap of a mock-profile run (default: the newest under --out)' },
  out: { type: 'string', default: 'out', help: 'where npm test / vm left their results' },
  'kernel-src': { type: 'string', help: 'a Linux tree whose selftests to compare with (default: Debian linux-source-<kernel-version>)' },
  'kernel-version': kernelVersionOption,
  markdown: { type: 'string', help: 'also write the table to this Markdown file' },
};

const auditSpec: OptionSpec = {
  out: { type: 'string', default: 'out', help: 'results folder: the guests\' results in OUT/<profile>/, the reports in OUT/audit/' },
  raw: { type: 'string', help: 'only render: a folder with audit-raw.json or <profile>/audit-raw.json (repeatable); boots no VM' },
  known: { type: 'string', help: 'the known-differences table (default: fixtures/audit/known-differences.json)' },
  kernel: { type: 'string', help: 'a ready bzImage instead of building one' },
  'kernel-version': kernelVersionOption,
  accel: { type: 'string', default: 'auto', help: 'auto|kvm|tcg' },
  timeout: { type: 'string', default: '1800', help: 'seconds before a guest is killed' },
};

const testSpec: OptionSpec = {
  out: { type: 'string', default: 'out', help: 'results folder' },
  'kernel-version': kernelVersionOption,
};

const HELP = `iommufd-conformance: conformance tests for the Linux iommufd uAPI and its VFIO compat layer

usage:
  iommufd-conformance vm [options]     run the suites in QEMU guests built and booted here
${usageOf(vmSpec)}
  iommufd-conformance run [options]    run the suites on this host (needs /dev/iommu)
${usageOf(runSpec)}
  iommufd-conformance audit [options]  type1 against iommufd compat, scenario by scenario: audit.md, audit.json, audit.html
${usageOf(auditSpec)}
  iommufd-conformance test [options]   unit suites here, then the VM suites of every profile (npm test)
${usageOf(testSpec)}
  iommufd-conformance parity [options] each kernel iommu selftest case, our test for it, its status in the last run
${usageOf(paritySpec)}
`;

async function parityCommand(argv: string[]): Promise<number> {
  const { options: o } = parseOptions(argv, paritySpec);
  const { lastMockResults, parityTable } = await import('./parity.ts');
  const { parityHolds, renderParityMarkdown } = await import('../parity/table.ts');
  const results = (o.results as string | undefined) ?? lastMockResults(o.out as string);
  const table = await parityTable({ results, kernelSrc: o['kernel-src'] as string | undefined, kernelVersion: parseKernelSeries(o['kernel-version'] as string) });
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
  return runAuditCommand({ out: o.out as string, rawDirs, knownPath: o.known as string | undefined, kernel: o.kernel as string | undefined, kernelVersion: parseKernelSeries(o['kernel-version'] as string), accel, timeoutSeconds });
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
  const { ok, outcomes } = await runInVm({
    profiles: exec && o.profile === 'all' ? ['mock'] : parseProfiles(o.profile as string),
    out: o.out as string,
    flavour,
    kernel: o.kernel as string | undefined,
    kernelSrc: o['kernel-src'] as string | undefined,
    kernelVersion: parseKernelSeries(o['kernel-version'] as string),
    accel,
    timeoutSeconds,
    exec,
    runArgs: o.grep ? ['--grep', o.grep as string] : [],
  });
  // With --exec the guest command's exit code becomes ours.
  if (exec && outcomes.length === 1) return outcomes[0]!.result.exitCode ?? 1;
  return ok ? 0 : 1;
}

async function runCommand(argv: string[]): Promise<number> {
  const { options: o } = parseOptions(argv, runSpec);
  const selected: ProfileName[] = o.profile ? parseProfiles(o.profile as string) : [...PROFILES];
  let files: string[];
  if (o.manifest) {
    const manifest = JSON.parse(readFileSync(o.manifest as string, 'utf8')) as { suites: Record<ProfileName, string[]> };
    files = selected.flatMap((p) => manifest.suites[p] ?? []);
  } else {
    files = selected.flatMap((p) => profiles[p].suites.flatMap(testFilesIn));
  }
  const failures = await runSuites({ files, out: o.out as string, grep: o.grep as string | undefined });
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
        return await testAll(options.out as string, parseKernelSeries(options['kernel-version'] as string));
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
