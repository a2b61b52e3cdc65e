// The fuzzer's run: fast-check's model-based testing (fc.commands and
// fc.modelRun) over the steps of commands.ts, on the real kernel in lockstep
// with the model, for a time budget. Each fast-check run opens fresh iommufd
// contexts (so a shrunk sequence starts from nothing, on the real kernel
// too), runs its steps, compares each context's whole state with the model,
// closes everything and compares the pinned/locked accounting. On a failure
// (a divergence, a step's own check, a kernel splat) fast-check shrinks it on
// the real kernel; the minimal sequence is written as a replay file (JSON)
// and as a readable mocha test, and the replay command is printed.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import fc from 'fast-check';
import { FailNthInjector } from '../kernel/fail-nth.ts';
import { LockstepProcess, type LockstepIommufd } from '../lockstep/index.ts';
import { modelFactories } from '../lockstep/models.ts';
import { MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE, type Mapping } from '../sys/index.ts';
import { KernelLogTail, kernelProblems } from '../vm/kernel-log.ts';
import { PACKAGE_ROOT } from '../package-root.ts';
import { BUFFER_BYTES } from './arbitraries.ts';
import type { VfioContainer } from '../kernel/index.ts';
import { vfioDeviceUnderTest } from '../kernel/device-choice.ts';
import { commandArbitraries, compareAll, emptyIds, reviveArgs, runStep, CONTEXTS, FuzzCommand, type FuzzIds, type FuzzProfile, type FuzzWorld, type StepName } from './commands.ts';

export interface ReplayStep {
  name: StepName;
  args: unknown;
  nth: number | null;
}

export interface ReplayFile {
  version: 1;
  seed: number;
  /** fast-check's path to the shrunk counterexample (with the seed: `fc.check(..., { seed, path })`). */
  path: string;
  kernel: string;
  mutation: string | null;
  error: string;
  steps: ReplayStep[];
}

export interface FuzzOptions {
  seed: number;
  timeMs: number;
  /** Where the replay file and generated test go on a failure. */
  out: string;
  /** About one step in this many runs under fail-nth (0: none; needs fault injection). */
  faultEvery?: number;
  maxCommands?: number;
  /** Named in the replay file (the bench's mutated model). */
  mutation?: string | null;
  log?: (line: string) => void;
  /** 'model': on the model alone, no oracle (unit tests of the fuzzer itself). */
  mode?: 'lockstep' | 'model';
  /** The guest's profile (default: IOMMUFD_CONFORMANCE_PROFILE, else mock): viommu adds the VFIO container steps. */
  profile?: FuzzProfile;
}

/** The profile the guest was booted for (the CLI passes it on in IOMMUFD_CONFORMANCE_PROFILE). */
export function guestProfile(): FuzzProfile {
  return process.env.IOMMUFD_CONFORMANCE_PROFILE === 'viommu' ? 'viommu' : 'mock';
}

/** The viommu profile's device (lib/kernel/device-choice.ts vfioDeviceUnderTest), bound to vfio-pci, and its IOMMU group. */
function vfioDevice(): { bdf: string; groupId: number } {
  const device = vfioDeviceUnderTest();
  if ('why' in device) throw new Error(`the viommu profile fuzzes the device under test's VFIO group: ${device.why}`);
  return { bdf: device.bdf, groupId: device.groupId };
}

export interface FuzzResult {
  ok: boolean;
  runs: number;
  steps: number;
  seconds: number;
  stepsPerSecond: number;
  /** Seconds from the start to the first failing run (before shrinking). */
  firstFailureSeconds: number | null;
  replayFile: string | null;
  testFile: string | null;
  error: string | null;
}

/** User memory of a session: the buffer the steps map from, ACCESS_RW's buffer, the dirty bitmap. */
interface SessionMemory {
  lp: LockstepProcess;
  buffer: Mapping;
  /** The viommu profile: what the type1 container maps from (see vfioMapDma). */
  type1Buffer: Mapping | null;
  rw: { view: Uint8Array; address: bigint; mapping: Mapping };
  bitmap: { view: Uint8Array; address: bigint; mapping: Mapping };
}

/**
 * The fuzzer's lockstep session: a lockstep process, its user memory, a
 * fault injector. Each run opens fresh contexts; after a failed run the
 * model may hold what the kernel does not (a pin a mutated model forgot),
 * so the next run starts a new lockstep process: every run, shrinking's
 * included, starts from a kernel and a model that agree.
 */
export class FuzzSession {
  readonly injector = new FailNthInjector();
  readonly log = KernelLogTail.open();
  #memory: SessionMemory;
  #stale = false;
  #world: { ids: FuzzIds; w: FuzzWorld } | null = null;

  readonly #device: { bdf: string; groupId: number } | null;

  /** mode 'model' runs the steps on the model alone (no oracle: the unit tests of the plumbing). */
  constructor(
    readonly mode: 'lockstep' | 'model' = 'lockstep',
    readonly profile: FuzzProfile = guestProfile(),
  ) {
    this.#device = profile === 'viommu' ? vfioDevice() : null;
    this.#memory = this.#start();
    this.log?.read();
  }

  get lp(): LockstepProcess {
    return this.#memory.lp;
  }

  #start(): SessionMemory {
    const lp = new LockstepProcess(this.mode, modelFactories());
    if (this.mode === 'lockstep' && !lp.checking) throw new Error('the fuzzer needs lockstep mode with a model (IOMMUFD_CONFORMANCE_MODE unset or lockstep)');
    // BUFFER_BYTES of shared memory the steps map from, then as many more: the
    // longest non-overflowing user range a step draws (an offset up to the
    // buffer's last page, a length up to BUFFER_BYTES + a page) stays in memory
    // the model knows. (PROT_NONE guard pages would take away the mapping's
    // view, through which the model reads the bytes ACCESS_RW copies.)
    const buffer = lp.mmap(Number(BUFFER_BYTES) * 2, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    const bytes = new Uint8Array(buffer.buffer);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i & 0xff;
    const type1Buffer = this.#device ? lp.mmap(Number(BUFFER_BYTES) * 2, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS) : null;
    return { lp, buffer, type1Buffer, rw: lp.userBuffer(4 * 4096), bitmap: lp.userBuffer(4096) };
  }

  /** Fresh contexts for one run (the previous run's are closed first; after a failed run, in a new lockstep process). */
  fresh(): { ids: FuzzIds; w: FuzzWorld } {
    this.close();
    if (this.#stale) {
      const old = this.#memory;
      for (const m of [old.buffer, old.rw.mapping, old.bitmap.mapping, ...(old.type1Buffer ? [old.type1Buffer] : [])]) old.lp.munmap(m);
      this.#memory = this.#start();
      this.#stale = false;
    }
    const { lp, buffer, rw, bitmap, type1Buffer } = this.#memory;
    const fds: LockstepIommufd[] = [];
    for (let i = 0; i < CONTEXTS; i++) {
      const opened = lp.tryOpenIommufd({ sys: this.injector.sysCore() });
      if (!opened.iommufd) throw new Error(`cannot open /dev/iommu: errno ${opened.errno}`);
      fds.push(opened.iommufd);
    }
    let vfio: FuzzWorld['vfio'] = null;
    if (this.#device) {
      // The container first: its model's wrap probe (type1WrapOverflow) borrows the VFIO group, which is
      // busy once this run holds it open.
      const type1 = lp.openContainer();
      const group = lp.openGroup(this.#device.groupId);
      const containers: VfioContainer[] = [type1, lp.compatOn(fds[0]!)];
      vfio = { group, containers, bdf: this.#device.bdf, type1Buffer: type1Buffer! };
    }
    const w: FuzzWorld = { lp, injector: this.injector, fds, buffer, rw, bitmap, steps: 0, vfio };
    this.#world = { ids: emptyIds(vfio !== null), w };
    return this.#world;
  }

  /** Closes the run's accesses and contexts; the pinned and locked pages must be back to the model's (unless the run failed already). */
  close(check = true): void {
    const world = this.#world;
    if (!world) return;
    this.#world = null;
    const vfio = world.w.vfio;
    if (vfio) {
      // Devices first (the last one gives back the container's use), then the group, then the type1 container.
      for (const d of world.ids.vfio!.devices) vfio.group.closeDevice(d);
      vfio.group.close();
      vfio.containers[0]!.close();
    }
    world.w.fds.forEach((fd, c) => {
      for (const a of world.ids.ctxs[c]!.accesses) fd.closeAccess(a.fd);
      for (const f of world.ids.ctxs[c]!.faults) if (f.fd !== null) fd.closeAccess(f.fd);
      if (!fd.closed) fd.close();
    });
    if (check) this.lp.checkAccounting('after closing the run\'s contexts');
  }

  /** Throws when the kernel logged a WARN, BUG, KASAN or lockdep report since the last look. */
  checkKernelLog(): void {
    const problems = kernelProblems((this.log?.read() ?? []).join('\n'));
    if (problems.length > 0) throw new Error(`the kernel reported a problem:\n  ${problems.join('\n  ')}`);
  }

  /** One run of a sequence, whole: steps, whole-state comparison, close, accounting, kernel log. */
  runSequence(run: (ids: FuzzIds, w: FuzzWorld) => void): number {
    const { ids, w } = this.fresh();
    let failed = true;
    try {
      this.lp.withFaultInjection(this.injector, () => {
        run(ids, w);
        compareAll(w);
      });
      failed = false;
    } finally {
      this.#stale ||= failed;
      try {
        // Closing calls run in lockstep too: after a failure they may diverge again, which says nothing new.
        if (failed) {
          try {
            this.close(false);
          } catch {
            // the run's own error is the one to report
          }
        } else {
          this.#stale = true;
          this.close();
          this.#stale = false;
        }
      } finally {
        this.checkKernelLog();
      }
    }
    return w.steps;
  }
}

/** Runs the steps of a replay file (or of a generated test) once; throws what the run threw. */
export function replaySteps(steps: readonly ReplayStep[], session = new FuzzSession()): void {
  session.runSequence((ids, w) => {
    for (const s of steps) {
      const cmd = new FuzzCommand(s.name, reviveArgs(s.args), s.nth);
      if (cmd.check(ids)) cmd.run(ids, w);
    }
  });
}

export function readReplayFile(file: string): ReplayFile {
  const r = JSON.parse(readFileSync(file, 'utf8')) as ReplayFile;
  if (r.version !== 1 || !Array.isArray(r.steps)) throw new Error(`${file}: not a fuzz replay file (version 1 with steps)`);
  return r;
}

function kernelRelease(): string {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** A readable mocha test of a minimal sequence: one step a line, replayed by replaySteps. */
export function generatedTest(r: ReplayFile, runnerPath: string): string {
  const lines = r.steps.map((s) => `      { name: '${s.name}', nth: ${s.nth}, args: ${JSON.stringify(s.args)} },`);
  return [
    `// Generated by iommufd-conformance fuzz: the minimal sequence of seed ${r.seed} (path ${r.path}) on ${r.kernel}${r.mutation ? `, model mutation ${r.mutation}` : ''}.`,
    `// It failed with:`,
    ...r.error.split('\n').slice(0, 30).map((l) => `//   ${l}`),
    `import { replaySteps } from '${runnerPath}';`,
    ...(r.mutation ? [`import { MUTATIONS } from '${join(dirname(runnerPath), '../../suites/fuzz-mutations/mutations.ts')}';`] : []),
    '',
    `describe('fuzz seed ${r.seed}', function () {`,
    ...(r.mutation
      ? [
          `  // The model as the fuzz run had it: with the deliberate mutation ${r.mutation}.`,
          `  let revert: () => void;`,
          `  before(() => (revert = MUTATIONS.find((m) => m.name === '${r.mutation}')!.apply()));`,
          `  after(() => revert());`,
        ]
      : []),
    `  it('replays the minimal sequence in lockstep', function () {`,
    `    // nth: the step's calls run under fail-nth with this n; c: the iommufd context; indexes name what the run made.`,
    `    replaySteps([`,
    ...lines,
    `    ]);`,
    `  });`,
    `});`,
    '',
  ].join('\n');
}

/** Fuzzes for a time budget from a seed; writes a replay file and a test on a failure. */
export function fuzz(opts: FuzzOptions): FuzzResult {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const session = new FuzzSession(opts.mode, opts.profile);
  const started = performance.now();
  let steps = 0;
  let runs = 0;
  let firstFailure: number | null = null;
  const property = fc.property(fc.commands(commandArbitraries(opts.faultEvery ?? 0, session.profile), { maxCommands: opts.maxCommands ?? 40, size: 'max' }), (cmds) => {
    runs++;
    try {
      steps += session.runSequence((ids, w) => fc.modelRun(() => ({ model: ids, real: w }), cmds));
    } catch (e) {
      firstFailure ??= (performance.now() - started) / 1000;
      throw e;
    }
  });
  const details = fc.check(property, { seed: opts.seed, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: opts.timeMs, endOnFailure: false, markInterruptAsFailure: false });
  const seconds = (performance.now() - started) / 1000;
  const result: FuzzResult = { ok: !details.failed, runs, steps, seconds, stepsPerSecond: steps / seconds, firstFailureSeconds: firstFailure, replayFile: null, testFile: null, error: null };
  if (!details.failed) return result;

  // fast-check hands back its command wrappers: the step is .cmd; .hasRan says its precondition held.
  const counter = details.counterexample?.[0] as Iterable<{ cmd: unknown; hasRan: boolean }> | undefined;
  const replay: ReplayFile = {
    version: 1,
    seed: details.seed,
    path: details.counterexamplePath ?? '',
    kernel: kernelRelease(),
    mutation: opts.mutation ?? null,
    error: details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance),
    steps: counter ? [...counter].filter((c) => c.hasRan && c.cmd instanceof FuzzCommand).map((c) => (c.cmd as FuzzCommand).toJSON()) : [],
  };
  mkdirSync(opts.out, { recursive: true });
  const base = `fuzz-seed-${replay.seed}${opts.mutation ? `-${opts.mutation}` : ''}`;
  result.replayFile = join(resolve(opts.out), `${base}.json`);
  result.testFile = join(resolve(opts.out), `${base}.test.ts`);
  writeFileSync(result.replayFile, `${JSON.stringify(replay, null, 2)}\n`);
  writeFileSync(result.testFile, generatedTest(replay, join(PACKAGE_ROOT, 'lib/fuzz/runner.ts')));
  result.error = replay.error;
  log(`fuzz: divergence after ${(firstFailure as number | null)?.toFixed(1)} s (${runs} runs, shrunk ${details.numShrinks} times) to ${replay.steps.length} step(s):`);
  for (const s of replay.steps) log(`  ${s.nth !== null ? `failNth(${s.nth}) ` : ''}${s.name} ${JSON.stringify(s.args)}`);
  log(replay.error.split('\n').slice(0, 40).map((l) => `  | ${l}`).join('\n'));
  log(`fuzz: replay file ${result.replayFile}`);
  log(`fuzz: mocha test  ${result.testFile}`);
  return result;
}

/**
 * The debugfs set-up of iommufd_fail_nth.c (suites/support/fail-nth.ts,
 * setupFaultInjection) outside mocha: every allocation a fault site. Returns
 * how to put it back, or why fault injection is missing (the fuzzer then
 * runs without fail-nth, saying so).
 */
export async function prepareFaultInjection(): Promise<{ restore(): void } | { missing: string }> {
  const { setupFaultInjection } = await import('../../suites/support/fail-nth.ts');
  // skipBecause stores its reason on ctx.test, then calls ctx.skip().
  const holder: { skipReason?: string } = {};
  const ctx = {
    test: holder,
    skip(): never {
      throw Object.assign(new Error('skip'), { skipped: true });
    },
  };
  try {
    return setupFaultInjection(ctx as never);
  } catch (e) {
    if (!(e as { skipped?: boolean }).skipped) throw e;
    return { missing: holder.skipReason ?? 'fault injection is missing' };
  }
}
