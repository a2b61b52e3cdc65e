// `iommufd-conformance fuzz`: random ioctl sequences in lockstep with the
// model (lib/fuzz), in a QEMU guest booted by the vm machinery, or here with
// --here (what the guest runs). Exit 0: no divergence within the time; 1: a
// divergence, written as a replay file and a mocha test in the results folder.
import { randomInt } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { ProfileName } from '../vm/profiles.ts';
import { UsageError, type OptionSpec, type ParsedOptions } from './args.ts';
import { EXIT_FAILED, EXIT_PASS } from './exit-codes.ts';
import { GUEST_OPTIONS, guestChoice, KERNEL_OPTIONS, kernelChoice } from './options.ts';

export const FUZZ_OPTIONS = {
  profile: { type: 'string', default: 'mock', value: 'mock|viommu', help: 'the guest to fuzz in' },
  time: { type: 'string', default: '60s', value: 'DURATION', help: 'guest time to fuzz for (90, 90s, 2m, 1h); with --mutation all, per mutation' },
  seed: { type: 'string', value: 'N', help: 'the seed (default: a random one, printed); the same seed gives the same sequences' },
  replay: { type: 'string', value: 'FILE', help: 'run the minimal sequence of a replay file written by an earlier run, once' },
  'fault-every': { type: 'string', default: '8', value: 'K', help: 'about one step in K runs under fail-nth with a random n (0: none)' },
  mutation: { type: 'string', value: 'NAME|all', help: 'fuzz a deliberately broken model (suites/fuzz-mutations; the bench)' },
  out: { type: 'string', default: 'out/fuzz', value: 'DIR', help: 'results folder (replay files, generated tests, fuzz.json)' },
  here: { type: 'boolean', help: 'fuzz on this host (needs /dev/iommu and the mock domain; what the guest runs)' },
  ...KERNEL_OPTIONS,
  ...GUEST_OPTIONS,
} satisfies OptionSpec;

/** "90", "90s", "2m", "1h", "500ms" in milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--time ${text}: give a duration like 90, 90s, 2m or 1h`);
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  const ms = Number(m[1]) * scale;
  if (ms <= 0) throw new UsageError('--time must be more than 0');
  return ms;
}

function seedOf(o: ParsedOptions): number {
  if (o.seed === undefined) return randomInt(0, 2 ** 31 - 1);
  const n = Number(o.seed);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--seed ${o.seed}: give an integer`);
  return n | 0;
}

const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

export async function runFuzzCommand(o: ParsedOptions): Promise<number> {
  const profile = o.profile as string;
  if (profile !== 'mock' && profile !== 'viommu') throw new UsageError('--profile is mock or viommu');
  const timeMs = parseDuration(o.time as string);
  const faultEvery = Number(o['fault-every']);
  if (!Number.isInteger(faultEvery) || faultEvery < 0) throw new UsageError('--fault-every takes a whole number (0: no fault injection)');
  const seed = seedOf(o);
  const replay = o.replay === undefined ? undefined : resolve(o.replay as string);
  const mutation = o.mutation as string | undefined;
  if (replay && mutation === 'all') throw new UsageError('--replay runs one sequence: it takes no --mutation all');

  if (o.here) {
    const { fuzzHere } = await import('../fuzz/main.ts');
    return (await fuzzHere({ seed, timeMs, faultEvery, replay, mutation, profile, out: resolve(o.out as string) })) ? EXIT_PASS : EXIT_FAILED;
  }

  const kernel = kernelChoice(o);
  const guest = guestChoice(o);
  const out = resolve(o.out as string);
  const args = ['--here', '--profile', profile, '--seed', String(seed), '--time', `${timeMs}ms`, '--fault-every', String(faultEvery), '--out', join(out, profile)];
  if (replay) args.push('--replay', replay);
  if (mutation) args.push('--mutation', mutation);
  process.stderr.write(replay ? `fuzz: replaying ${replay}\n` : `fuzz: seed ${seed}\n`);
  const { runInVm } = await import('../vm/run-vm.ts');
  // The guest runs the CLI bundled (lib/vm/guest-bundle.ts): tsx's esbuild does not run under TCG.
  const { bundleGuest } = await import('../vm/guest-bundle.ts');
  const manifest = await bundleGuest(out, (line) => process.stderr.write(`${line}\n`));
  const { outcomes } = await runInVm({
    profiles: [profile as ProfileName],
    out,
    ...kernel,
    ...guest,
    exec: `exec node ${manifest.main} fuzz ${args.map(quote).join(' ')}`,
  });
  const outcome = outcomes[0];
  if (!outcome || outcome.result.exitCode === null || outcome.result.timedOut) return EXIT_FAILED;
  // A kernel splat fails the run even when the fuzzer saw no divergence.
  return outcome.ok ? outcome.result.exitCode : Math.max(outcome.result.exitCode, EXIT_FAILED);
}
