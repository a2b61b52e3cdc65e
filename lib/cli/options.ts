// The command line's options, declared once and shared by the commands that
// take them: a new kernel option is one entry in KERNEL_OPTIONS (and one line
// in kernelChoice), and every command that builds or boots a kernel has it.
import { DEFAULT_KERNEL_SERIES, KERNEL_SERIES, parseKernelSeries, type KernelSeries } from '../kbuild/series.ts';
import type { KernelFlavour } from '../vm/kernel.ts';
import { parseProfiles, PROFILES, type ProfileName } from '../vm/profiles.ts';
import { parseShard, type Shard } from '../shard.ts';
import { UsageError, type OptionSpec, type ParsedOptions } from './args.ts';

/** Which guest kernel: `vm`, `test` and `audit` take these. */
export const KERNEL_OPTIONS = {
  'kernel-version': {
    type: 'string',
    default: DEFAULT_KERNEL_SERIES,
    value: KERNEL_SERIES.join('|'),
    help: "Debian's linux-source-<version> to build (6.1 has no iommufd)",
  },
  kernel: { type: 'string', value: 'BZIMAGE', help: 'a ready kernel image (a bzImage, or a vmlinux built with CONFIG_PVH) instead of building one' },
  'kernel-src': { type: 'string', value: 'DIR', help: 'a Linux tree to build instead of Debian linux-source (rebuilt incrementally on every run)' },
  flavour: { type: 'string', default: 'base', value: 'base|debug', help: 'debug adds KASAN and lockdep' },
} satisfies OptionSpec;

/** How guests run. */
export const GUEST_OPTIONS = {
  accel: { type: 'string', default: 'auto', value: 'auto|kvm|tcg', help: 'the accelerator (auto: KVM when a probe guest runs under it)' },
  timeout: { type: 'string', default: '1800', value: 'S', help: 'seconds before a guest is killed' },
} satisfies OptionSpec;

/** Which tests run: `vm` and `run` take these. */
export const SELECT_OPTIONS = {
  grep: { type: 'string', value: 'PATTERN', help: 'only tests whose full title matches' },
  test: { type: 'string', multiple: true, value: 'NAME', help: 'only the test with this KTAP name (FIXTURE.VARIANT.TEST)' },
  list: { type: 'boolean', help: 'print the KTAP names of the tests each profile would run, and run nothing' },
} satisfies OptionSpec;

/** One part of the selected tests (lib/shard.ts): every command that runs suites (vm, run, audit, test) takes it. */
export const SHARD_OPTIONS = {
  shard: { type: 'string', value: 'K/N', help: 'run only the K-th of N parts of the selected tests (split by test name, the same on every machine)' },
} satisfies OptionSpec;

export function shardChoice(o: ParsedOptions): Shard | null {
  if (o.shard === undefined) return null;
  try {
    return parseShard(o.shard as string);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export interface KernelChoice {
  kernelVersion: KernelSeries;
  kernel?: string;
  kernelSrc?: string;
  flavour: KernelFlavour;
}

export function kernelChoice(o: ParsedOptions): KernelChoice {
  const flavour = o.flavour as string;
  if (flavour !== 'base' && flavour !== 'debug') throw new UsageError('--flavour is base or debug');
  if (o.kernel !== undefined && o['kernel-src'] !== undefined) throw new UsageError('--kernel and --kernel-src exclude each other');
  return { kernelVersion: kernelVersionOption(o), kernel: o.kernel as string | undefined, kernelSrc: o['kernel-src'] as string | undefined, flavour };
}

/** --kernel-version, for the commands that take it alone (parity) and with the other kernel options. */
export function kernelVersionOption(o: ParsedOptions): KernelSeries {
  try {
    return parseKernelSeries((o['kernel-version'] as string | undefined) ?? DEFAULT_KERNEL_SERIES);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export interface GuestChoice {
  accel: 'auto' | 'kvm' | 'tcg';
  timeoutSeconds: number;
}

export function guestChoice(o: ParsedOptions): GuestChoice {
  const accel = o.accel as string;
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') throw new UsageError('--accel is auto, kvm or tcg');
  const timeoutSeconds = Number(o.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError('--timeout takes a number of seconds');
  return { accel, timeoutSeconds };
}

export function profilesOption(value: string): ProfileName[] {
  try {
    return parseProfiles(value);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export interface Selection {
  grep?: string;
  tests?: string[];
  list: boolean;
}

export function selectionOf(o: ParsedOptions): Selection {
  const grep = o.grep as string | undefined;
  if (grep !== undefined) {
    try {
      new RegExp(grep);
    } catch (err) {
      throw new UsageError(`--grep: ${(err as Error).message}`);
    }
  }
  const tests = o.test as string[] | undefined;
  return { ...(grep !== undefined ? { grep } : {}), ...(tests ? { tests } : {}), list: o.list === true };
}

/** The guest's `run` arguments for a selection. */
export function selectionArgs(s: Selection): string[] {
  return [...(s.grep !== undefined ? ['--grep', s.grep] : []), ...(s.tests ?? []).flatMap((t) => ['--test', t])];
}

export { PROFILES };
