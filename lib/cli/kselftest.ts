// `iommufd-conformance kselftest`: the kernel's own iommu and VFIO selftests
// from the tree in use, each in the guest that suits it, beside our suites
// (lib/kselftest/run.ts). Here: which tree and which kernel, and the exit code.
import { kselftestTree } from '../kselftest/tree.ts';
import type { ProfileName } from '../vm/profiles.ts';
import type { OptionSpec, ParsedOptions } from './args.ts';
import { UsageError } from './args.ts';
import { EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_PASS } from './exit-codes.ts';
import { GUEST_OPTIONS, guestChoice, KERNEL_OPTIONS, kernelChoice, PROFILES, profilesOption } from './options.ts';
import { PACKAGE_ROOT } from './paths.ts';

export const KSELFTEST_OPTIONS = {
  profile: { type: 'string', default: 'all', value: 'P', help: `${PROFILES.join('|')}|all: mock runs the iommu selftests, viommu the VFIO selftests` },
  out: { type: 'string', default: 'out/kselftest', value: 'DIR', help: "results: OUT/<profile>/results.ktap (ours), OUT/<profile>/kselftest/*.ktap (the kernel's), OUT/kselftest.md" },
  ...KERNEL_OPTIONS,
  ...GUEST_OPTIONS,
} satisfies OptionSpec;

export const KSELFTEST_NOTES =
  'The selftests come from the tree in use (--kernel-src, else Debian\'s linux-source-<kernel-version>); with --kernel-src and --kernel\n' +
  'together, the selftests come from the tree and the guest boots the given bzImage (that tree\'s build).';

export async function kselftestCommand(o: ParsedOptions, lines: { log?: (l: string) => void } = {}): Promise<number> {
  const log = lines.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  // Unlike vm, a ready bzImage and the tree whose selftests to build may go together.
  const kernel = kernelChoice({ ...o, kernel: undefined });
  const bzImage = o.kernel as string | undefined;
  const guest = guestChoice(o);
  const profiles: ProfileName[] = profilesOption(o.profile as string);
  if (profiles.length === 0) throw new UsageError('--profile names no profile');
  const tree = await kselftestTree(kernel, log);
  log(`kselftest: the selftests of ${tree.dir} (Linux ${tree.version})${bzImage ? `, in guests booting ${bzImage}` : ''}`);
  const { runKselftests } = await import('../kselftest/run.ts');
  const outcome = await runKselftests({
    out: o.out as string,
    tree,
    profiles,
    boot: { ...(bzImage ? { kernel: bzImage } : { kernelSrc: kernel.kernelSrc }), kernelVersion: kernel.kernelVersion, flavour: kernel.flavour, ...guest },
    packageRoot: PACKAGE_ROOT,
    log,
  });
  for (const n of outcome.table.notInTree) process.stdout.write(`kselftest: ${n}\n`);
  process.stdout.write(`kselftest (Linux ${tree.version}): ${outcome.summary}\n`);
  for (const p of [...outcome.infrastructure, ...outcome.problems]) process.stdout.write(`kselftest: FAILED: ${p}\n`);
  process.stdout.write(`kselftest: the side-by-side table is in ${o.out}/kselftest.md\n`);
  if (outcome.infrastructure.length) return EXIT_ENVIRONMENT;
  return outcome.problems.length ? EXIT_FAILED : EXIT_PASS;
}
