// The command line: `vm` (suites in a QEMU guest), `run` (suites on this host).
import { SetupError } from '../kbuild/source.ts';
import { parseProfiles, PROFILES, profiles, type ProfileName } from '../vm/profiles.ts';
import { parseOptions, UsageError, usageOf, type OptionSpec } from './args.ts';
import { readFileSync } from 'node:fs';
import { runSuites, testFilesIn } from './run.ts';
import { testAll } from './test-all.ts';

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
};

const runSpec: OptionSpec = {
  profile: { type: 'string', help: `the suites of this profile (${PROFILES.join('|')}); default: all suites` },
  out: { type: 'string', default: 'out', help: 'folder for results.json, results.tap, results.xml' },
  grep: { type: 'string', help: 'only tests whose full title matches' },
  manifest: { type: 'string', help: 'run the bundled test files listed in this guest manifest (used inside test VMs)' },
};

const HELP = `iommufd-conformance: conformance tests for the Linux iommufd uAPI and its VFIO compat layer

usage:
  iommufd-conformance vm [options]     run the suites in QEMU guests built and booted here
${usageOf(vmSpec)}
  iommufd-conformance run [options]    run the suites on this host (needs /dev/iommu)
${usageOf(runSpec)}
  iommufd-conformance test [--out DIR] unit suites here, then the VM suites of every profile (npm test)
`;

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
      case 'test': {
        const { options } = parseOptions(rest, { out: { type: 'string', default: 'out', help: '' } });
        return await testAll(options.out as string);
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
