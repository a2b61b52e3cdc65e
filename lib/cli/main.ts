// The command line: one table of commands, each with its options (declared in
// lib/cli/options.ts and parsed strictly by lib/cli/args.ts), its own --help,
// and the exit codes of lib/cli/exit-codes.ts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Shard } from '../shard.ts';
import { SetupError } from '../kbuild/setup-error.ts';
import { parseBdf } from '../kernel/device-choice.ts';
import { ALL_PROFILES, DEVICE_PROFILES, profiles, type DeviceProfile, type ProfileName } from '../vm/profiles.ts';
import { parseCommandLine, UsageError, usageOf, type OptionSpec, type ParsedOptions } from './args.ts';
import { EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_PASS, EXIT_USAGE, vmExitCode } from './exit-codes.ts';
import {
  GUEST_OPTIONS, guestChoice, KERNEL_OPTIONS, kernelChoice, kernelVersionOption, PROFILES, profilesOption, SELECT_OPTIONS, selectionArgs, selectionOf,
  SHARD_OPTIONS, shardChoice, type Selection,
} from './options.ts';
import { FUZZ_OPTIONS } from './fuzz.ts';
import { KSELFTEST_NOTES, KSELFTEST_OPTIONS } from './kselftest.ts';
import { PACKAGE_ROOT } from './paths.ts';

interface Command {
  summary: string;
  options: OptionSpec;
  /** Extra usage lines under the options. */
  notes?: string;
  /** The words the command takes after its options (e.g. 'DIR...'); none when absent. */
  positionals?: string;
  run(o: ParsedOptions, positionals: string[]): Promise<number>;
}

const OUT = (help: string): OptionSpec => ({ out: { type: 'string', default: 'out', value: 'DIR', help } });

function version(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

// ------------------------------------------------------------ test selection

async function profileFiles(profile: ProfileName): Promise<string[]> {
  const { testFilesIn } = await import('./run.ts');
  return profiles[profile].suites.flatMap(testFilesIn);
}

/**
 * The tests each profile would run under a selection, listed on this host
 * from the suite files (nothing runs). A name given with --test that no
 * profile has is a usage error; so is a --grep that matches nothing at all.
 */
async function selectedByProfile(selected: ProfileName[], s: Selection, shard: Shard | null = null): Promise<Map<ProfileName, string[]>> {
  const { listTestsByFileSet } = await import('./run.ts');
  // Whether a selection matches is judged on the whole selection; --list then prints this shard's part.
  const files = await Promise.all(selected.map(profileFiles));
  const lists = await listTestsByFileSet(files, s);
  const byProfile = new Map<ProfileName, string[]>(selected.map((p, i) => [p, lists[i]!]));
  const all = new Set([...byProfile.values()].flat());
  const unknown = (s.tests ?? []).filter((t) => !all.has(t));
  if (unknown.length > 0) {
    throw new UsageError(`no test named ${unknown.join(', ')} in profile(s) ${selected.join(', ')}${s.grep !== undefined ? ` matching --grep ${s.grep}` : ''} (--list prints the names)`);
  }
  if (all.size === 0) throw new UsageError(`the selection matches no test in profile(s) ${selected.join(', ')}`);
  if (shard && s.list) {
    // The split of the listed names themselves (suite files load once per process: no second listing).
    const { assignShards } = await import('../shard.ts');
    for (const [p, names] of byProfile) {
      const shardOf = assignShards(names, shard.count);
      byProfile.set(p, names.filter((_, i) => shardOf[i] === shard.index));
    }
  }
  return byProfile;
}

function printList(byProfile: Map<ProfileName, string[]>): number {
  for (const [p, names] of byProfile) {
    process.stdout.write(`# profile ${p}: ${names.length} test(s)\n`);
    for (const n of names) process.stdout.write(`${n}\n`);
  }
  return EXIT_PASS;
}

// ------------------------------------------------------------ audit --host

const HOST_AUDIT_NOTES = `With --host --device BDF: no VM. The device half of the audit runs here against BDF, which must already be
bound to vfio-pci with every device of its IOMMU group bound to vfio-pci or to no driver: this command never
binds or unbinds a device (it prints how to). It checks that first (root, the device, its driver, its group,
/dev/vfio/N opens, an Intel VT-d unit the model knows) and writes nothing when a check fails. While it runs it
opens the device's group and cdev (nothing else's), pins and maps its own memory through them, and sets
vfio_iommu_type1.dma_entry_limit for one scenario, putting it back after. Writes OUT/host/audit-raw.json
(labelled with the kernel, /proc/version, the platform and the device) and OUT/audit/audit.{md,json,html};
compat-mock (the mock profile's guest) is reported skipped. Exit 3 when the host cannot run it.`;

async function hostAudit(o: ParsedOptions): Promise<number> {
  if (!o.host) throw new UsageError('--device names the device for --host: give both');
  if (o.device === undefined) throw new UsageError('--host needs --device BDF (the vfio-pci device to audit, e.g. 0000:03:00.0)');
  // The VM options without defaults; the others (--accel, --timeout, --flavour, --kernel-version) are simply not used.
  for (const vmOnly of ['raw', 'publish', 'kernel', 'kernel-src', 'shard']) {
    if (o[vmOnly] !== undefined) throw new UsageError(`--host runs on this host: --${vmOnly} is for the VM audit`);
  }
  let device: string;
  try {
    device = parseBdf(o.device as string);
  } catch (e) {
    throw new UsageError(`--device: ${(e as Error).message}`);
  }
  const { runHostAudit } = await import('./audit-host.ts');
  return runHostAudit({ device, out: o.out as string, knownPath: o.known as string | undefined });
}

// ------------------------------------------------------------ commands

const commands: Record<string, Command> = {
  vm: {
    summary: 'run the suites in QEMU guests built and booted here (or --exec a command in one)',
    options: {
      profile: { type: 'string', default: 'all', value: 'P', help: `${ALL_PROFILES.join('|')}|all (${PROFILES.join(', ')}), comma-separated` },
      ...OUT('results folder (one sub-folder per profile)'),
      ...KERNEL_OPTIONS,
      ...GUEST_OPTIONS,
      ...SELECT_OPTIONS,
      ...SHARD_OPTIONS,
      exec: { type: 'string', value: 'CMD', help: 'run this shell command in the guest instead of the suites; its exit code becomes ours' },
    },
    notes: 'With --grep or --test, a profile with no matching test is skipped (counted, with the reason).',
    async run(o) {
      const kernel = kernelChoice(o);
      const guest = guestChoice(o);
      const s = selectionOf(o);
      const exec = o.exec as string | undefined;
      const shard = shardChoice(o);
      if (exec && (s.list || s.grep !== undefined || s.tests || shard)) throw new UsageError('--exec runs a command, not tests: it takes no --grep, --test, --list or --shard');
      let selected: ProfileName[] = exec && o.profile === 'all' ? ['mock'] : profilesOption(o.profile as string);
      const skipped: string[] = [];
      if (s.list || s.grep !== undefined || s.tests) {
        const byProfile = await selectedByProfile(selected, s, shard);
        if (s.list) return printList(byProfile);
        for (const [p, names] of byProfile) {
          if (names.length === 0) skipped.push(`profile ${p}: skipped: no test matches ${[s.grep !== undefined ? `--grep ${s.grep}` : '', ...(s.tests ?? []).map((t) => `--test ${t}`)].filter(Boolean).join(' ')}`);
        }
        selected = selected.filter((p) => (byProfile.get(p) ?? []).length > 0);
      }
      for (const line of skipped) process.stderr.write(`${line}\n`);
      const { runInVm } = await import('../vm/run-vm.ts');
      const out = o.out as string;
      const { outcomes } = await runInVm({
        profiles: selected,
        out,
        ...kernel,
        ...guest,
        exec,
        runArgs: selectionArgs(s),
        shard,
      });
      if (skipped.length > 0) process.stderr.write(`${skipped.length} profile(s) skipped: no matching test\n`);
      // With --exec the guest command's exit code becomes ours.
      if (exec && outcomes.length === 1 && outcomes[0]!.result.exitCode !== null && !outcomes[0]!.result.timedOut) return outcomes[0]!.result.exitCode;
      const { resolve } = await import('node:path');
      return vmExitCode(outcomes.map((outcome) => ({ outcome, resultsDir: join(resolve(out), outcome.profile) })), exec !== undefined);
    },
  },

  run: {
    summary: 'run the suites on this host (needs /dev/iommu; used inside the guests)',
    options: {
      profile: { type: 'string', value: 'P', help: `the suites of these profiles (${ALL_PROFILES.join('|')}|all, comma-separated); default: all suites` },
      ...OUT('folder for results.json, .tap, .xml, .ktap'),
      ...SELECT_OPTIONS,
      ...SHARD_OPTIONS,
      files: { type: 'string', multiple: true, value: 'PATH', help: "these test files, or the *.test.ts under these folders, instead of a profile's suites" },
      manifest: { type: 'string', value: 'FILE', help: 'run the bundled test files listed in this guest manifest (used inside test VMs)' },
    },
    async run(o) {
      const s = selectionOf(o);
      const shard = shardChoice(o);
      const selected: ProfileName[] = o.profile ? profilesOption(o.profile as string) : [...PROFILES];
      const paths = (o.files as string[] | undefined) ?? [];
      let files: string[];
      if (paths.length > 0) {
        if (o.profile !== undefined || o.manifest !== undefined) throw new UsageError('--files runs those files: give it without --profile or --manifest');
        const { testFilesIn } = await import('./run.ts');
        files = paths.flatMap((p) => {
          const found = p.endsWith('.test.ts') && existsSync(p) ? [resolve(p)] : testFilesIn(resolve(p));
          if (found.length === 0) throw new UsageError(`--files ${p}: no *.test.ts file there`);
          return found;
        });
      } else if (o.manifest) {
        const manifest = JSON.parse(readFileSync(o.manifest as string, 'utf8')) as { suites: Record<ProfileName, string[]> };
        files = selected.flatMap((p) => manifest.suites[p] ?? []);
      } else {
        files = (await Promise.all(selected.map(profileFiles))).flat();
      }
      const { listTests, runSuites } = await import('./run.ts');
      if (s.list) {
        for (const n of await listTests(files, { ...s, shard })) process.stdout.write(`${n}\n`);
        return EXIT_PASS;
      }
      // run.json names the run by its profile, or by the files it was given.
      const profile = paths.length > 0 ? paths.map((p) => relative(PACKAGE_ROOT, resolve(p)) || '.').join(',') : selected.join(',');
      const failures = await runSuites({ files, out: o.out as string, grep: s.grep, tests: s.tests, shard, profile, kernelLog: true });
      return failures === 0 ? EXIT_PASS : EXIT_FAILED;
    },
  },

  audit: {
    summary: 'type1 against iommufd compat, and compat against native iommufd, scenario by scenario: audit.md, audit.json, audit.html',
    options: {
      ...OUT("results folder: the guests' results in OUT/<profile>/, the reports in OUT/audit/"),
      raw: { type: 'string', multiple: true, value: 'DIR', help: 'only render: a folder with audit-raw.json or <profile>/audit-raw.json; boots no VM' },
      known: { type: 'string', value: 'FILE', help: 'the known-differences table (default: fixtures/audit/known-differences.json)' },
      publish: { type: 'boolean', help: "also add or replace the part of this run's kernel and platform in docs/audit/ (docs/audit/KERNEL/PLATFORM/, and every part side by side in docs/audit/audit.md and audit.html), if the audit passed" },
      platform: { type: 'string', default: 'viommu', value: 'PROFILE', help: 'the device profile to boot beside mock: viommu (intel-iommu with interrupt remapping), viommu-noir, viommu-noir-unsafe-type1 or viommu-noir-unsafe (without it; allow_unsafe_interrupts off, on for type1 only, on for both)' },
      host: { type: 'boolean', help: 'run the device half (type1, compat-device, native) on this host against --device, in this process: no VM (root)' },
      device: { type: 'string', value: 'BDF', help: 'with --host: the PCI device to audit (e.g. 0000:03:00.0), which you have bound to vfio-pci' },
      ...KERNEL_OPTIONS,
      ...GUEST_OPTIONS,
      ...SHARD_OPTIONS,
    },
    notes: HOST_AUDIT_NOTES,
    async run(o) {
      if (o.host || o.device !== undefined) return hostAudit(o);
      const kernel = kernelChoice(o);
      const guest = guestChoice(o);
      const { runAuditCommand } = await import('./audit.ts');
      const platform = o.platform as string;
      if (!(DEVICE_PROFILES as readonly string[]).includes(platform)) throw new UsageError(`--platform is one of ${DEVICE_PROFILES.join(', ')} (got '${platform}')`);
      return runAuditCommand({ out: o.out as string, rawDirs: (o.raw as string[] | undefined) ?? [], knownPath: o.known as string | undefined, publish: o.publish === true, deviceProfile: platform as DeviceProfile, ...kernel, ...guest, shard: shardChoice(o) });
    },
  },

  parity: {
    summary: 'each kernel iommu selftest case, our test for it, its status in the last run',
    options: {
      results: { type: 'string', value: 'KTAP', help: 'results.ktap of a mock-profile run (default: the newest under --out)' },
      ...OUT('where npm test / vm left their results'),
      'kernel-src': { type: 'string', value: 'DIR', help: 'a Linux tree whose selftests to compare with (default: Debian linux-source-<kernel-version>)' },
      'kernel-version': KERNEL_OPTIONS['kernel-version'],
      markdown: { type: 'string', value: 'FILE', help: 'also write the table to this Markdown file' },
    },
    async run(o) {
      const { lastMockResults, parityTable } = await import('./parity.ts');
      const { parityHolds, renderParityMarkdown } = await import('../parity/table.ts');
      const results = (o.results as string | undefined) ?? lastMockResults(o.out as string);
      const table = await parityTable({ results, kernelSrc: o['kernel-src'] as string | undefined, kernelVersion: kernelVersionOption(o) });
      const markdown = renderParityMarkdown(table);
      process.stdout.write(markdown);
      if (!results) process.stdout.write(`(no results.ktap under ${o.out}: run \`iommufd-conformance vm --profile mock\` or npm test first)\n`);
      if (o.markdown) writeFileSync(o.markdown as string, markdown);
      return parityHolds(table) ? EXIT_PASS : EXIT_FAILED;
    },
  },

  kselftest: {
    summary: "the kernel's own iommu and VFIO selftests from the tree in use, each in its guest, beside ours",
    options: KSELFTEST_OPTIONS,
    notes: KSELFTEST_NOTES,
    async run(o) {
      const { kselftestCommand } = await import('./kselftest.ts');
      return kselftestCommand(o);
    },
  },

  test: {
    summary: 'unit suites here, then the VM suites of every profile, the audit and the parity table (npm test)',
    options: { ...OUT('results folder'), ...KERNEL_OPTIONS, ...SHARD_OPTIONS },
    async run(o) {
      const kernel = kernelChoice(o);
      const { testAll } = await import('./test-all.ts');
      return testAll(o.out as string, kernel, shardChoice(o));
    },
  },

  merge: {
    summary: 'one report (KTAP, xunit, JSON, HTML matrix, audit, parity) from result folders: shards, kernels, flavours, profiles',
    positionals: 'RESULT_DIR...',
    options: {
      out: { type: 'string', value: 'DIR', help: 'where to write merged.ktap, merged.xml, merged.json, merged.html (required)' },
      'kernel-src': { type: 'string', value: 'DIR', help: 'a Linux tree whose selftests the parity table compares with (default: Debian linux-source-6.12)' },
    },
    notes: 'Each RESULT_DIR is searched for results folders (a run.json in it or below: a CI job\'s artifacts as downloaded).\nExit 2 (with the reason, writing nothing) when the folders cannot be merged: a missing or doubled shard, a whole run beside its shards, a run that did not finish.',
    async run(o, dirs) {
      const { mergeCommand } = await import('./merge.ts');
      return mergeCommand({ out: o.out as string | undefined, dirs, kernelSrc: o['kernel-src'] as string | undefined });
    },
  },

  'cache-key': {
    summary: "the guest kernel's cache key and folder (key=, dir= lines for a CI cache such as actions/cache), without building",
    options: { ...KERNEL_OPTIONS },
    async run(o) {
      const { cacheKeyCommand } = await import('./cache-key.ts');
      return cacheKeyCommand(kernelChoice(o));
    },
  },

  fuzz: {
    summary: 'random ioctl sequences in lockstep with the model, with fail-nth mixed in, shrunk to a replayable reproducer',
    options: FUZZ_OPTIONS,
    notes: 'Prints the seed, the operations per second and, on a divergence, the replay file, the generated mocha test and the command that replays it.',
    async run(o) {
      const { runFuzzCommand } = await import('./fuzz.ts');
      return runFuzzCommand(o);
    },
  },

  doctor: {
    summary: 'what this machine lacks for each job, all at once, with the command that installs each',
    options: {},
    async run() {
      const { runDoctor } = await import('./doctor.ts');
      return runDoctor();
    },
  },
};

function commandHelp(name: string): string {
  const c = commands[name]!;
  const options = usageOf({ ...c.options, help: { type: 'boolean', help: 'this help' } });
  return `usage: iommufd-conformance ${name} [options]${c.positionals ? ` ${c.positionals}` : ''}\n  ${c.summary}\n\noptions:\n${options}\n${c.notes ? `\n${c.notes}\n` : ''}`;
}

const EXIT_CODES = `exit codes:
  0  everything ran and passed
  1  a test failed, the model diverged, the kernel logged a WARN/BUG/KASAN/lockdep report, or the audit or parity found a difference
  2  usage: unknown command, option or argument, or a bad value
  3  environment or infrastructure: a missing tool, a failed kernel build, a guest that crashed, timed out or wrote no results`;

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  return `iommufd-conformance ${version()}: conformance tests for the Linux iommufd uAPI and its VFIO compat layer

usage: iommufd-conformance COMMAND [options]      (iommufd-conformance COMMAND --help for its options)

commands:
${Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`).join('\n')}

  --version  print the version
  --help     this help

${EXIT_CODES}
`;
}

/** The cause of an unexpected error in one line, and the tail of a multi-line message (a compiler's errors). */
function describeError(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const [first, ...rest] = e.message.split('\n');
  const tail = rest.filter((l) => l.trim() !== '').slice(-20);
  const debug = process.env.IOMMUFD_CONFORMANCE_DEBUG === '1';
  return [`iommufd-conformance: error: ${first}`, ...tail.map((l) => `  ${l}`), ...(debug ? [e.stack ?? ''] : ['  (IOMMUFD_CONFORMANCE_DEBUG=1 prints the stack)'])].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined) {
      process.stderr.write(help());
      return EXIT_USAGE;
    }
    if (name === '--help' || name === '-h') {
      process.stdout.write(help());
      return EXIT_PASS;
    }
    if (name === '--version' || name === '-V') {
      process.stdout.write(`${version()}\n`);
      return EXIT_PASS;
    }
    if (name === 'help') {
      if (rest.length > 1 || (rest[0] !== undefined && !(rest[0] in commands))) throw new UsageError(`help takes one command name (${Object.keys(commands).join(', ')})`);
      process.stdout.write(rest[0] === undefined ? help() : commandHelp(rest[0]));
      return EXIT_PASS;
    }
    const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (!command) throw new UsageError(`unknown command '${name}'`);
    const { values: options, positionals } = parseCommandLine(rest, command.options, command.positionals !== undefined);
    if (options.help) {
      process.stdout.write(commandHelp(name));
      return EXIT_PASS;
    }
    return await command.run(options, positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      const hint = name !== undefined && Object.hasOwn(commands, name) ? `iommufd-conformance ${name} --help` : 'iommufd-conformance --help';
      process.stderr.write(`iommufd-conformance: ${err.message} (see \`${hint}\`)\n`);
      return EXIT_USAGE;
    }
    if (err instanceof SetupError) {
      process.stderr.write(`iommufd-conformance: ${err.message}\n`);
      return EXIT_ENVIRONMENT;
    }
    process.stderr.write(`${describeError(err)}\n`);
    return EXIT_ENVIRONMENT;
  }
}
