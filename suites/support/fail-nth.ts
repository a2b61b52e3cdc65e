// tools/testing/selftests/iommu/iommufd_fail_nth.c's harness in TypeScript:
// setup_fault_injection(), and TEST_FAIL_NTH as testFailNth(), so that each
// mirrored test reads like the C one.
//
// The C harness runs a test body once with no fault injected, then again for
// nth = 1, 2, ..., with the nth fault site (a failslab or fail_page_alloc
// allocation, or one of iommufd's own iommufd_should_fail() points) failed,
// from where the body calls fail_nth_enable(), until a run of the body never
// reaches the nth site. Each run must either succeed or fail cleanly; the
// last one (nothing injected) must succeed. Here every run is also in
// lockstep with the model: the call that failed by injection is not run on
// the model (LockstepProcess.withFaultInjection), and after each run the
// kernel's whole state is compared with the model's (compareIommufdState),
// then the kernel log is read for splats, naming the test and the nth.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import type { Context } from 'mocha';
import { FailNthInjector, probeFaultInjection } from '../../lib/kernel/index.ts';
import { compareIommufdState, type UserRange } from '../../lib/lockstep/index.ts';
import { KernelLogTail, kernelProblems } from '../../lib/vm/kernel-log.ts';
import type { Iommufd } from './iommufd-utils.ts';
import { lockstep } from './lockstep.ts';
import { skipBecause } from './skip.ts';

const DEBUGFS = '/sys/kernel/debug';

// ---------------------------------------------------------------- setup_fault_injection()

/** The debugfs values setup_fault_injection() changed, to put back after the suite. */
export interface FaultInjectionSetup {
  restore(): void;
}

function readAttr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * Mounts debugfs when /sys/kernel/debug is not a debugfs yet (the test guest
 * mounts it from its fstab; another machine may not), as root can.
 */
function ensureDebugfs(): void {
  if (readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === DEBUGFS)) return;
  try {
    execFileSync('mount', ['-t', 'debugfs', 'debugfs', DEBUGFS], { stdio: 'pipe' });
  } catch {
    // Left to the probe: fault injection then counts as missing, and the suite skips saying so.
  }
}

/**
 * setup_fault_injection() of iommufd_fail_nth.c, from a before() hook: lets
 * every allocation be a fault site (failslab and fail_page_alloc otherwise
 * skip allocations that may sleep or use highmem: ignore-gfp-wait and
 * ignore-gfp-highmem N) and quiets the fault attributes' own reports
 * (verbose 0: the test looks for kernel splats, not for injection notices).
 * Like the C file it leaves probability, interval and times alone: a fail-nth
 * site fails before those are consulted (lib/fault-inject.c should_fail_ex).
 * At their default (probability 0) nothing fails outside an armed call; a
 * non-zero probability would fail random allocations of the whole run, so it
 * stops the suite. Skips, with the reason, without fault injection.
 */
export function setupFaultInjection(ctx: Context): FaultInjectionSetup {
  if (lockstep().mode === 'model') skipBecause(ctx, 'fault injection needs a kernel (model-only mode)');
  ensureDebugfs();
  const have = probeFaultInjection(DEBUGFS);
  if (!have.failNth) skipBecause(ctx, 'kernel lacks /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION)');
  // The C file's have_fault_injection: writing failslab/ignore-gfp-wait succeeded.
  if (!have.failslab) skipBecause(ctx, `no ${DEBUGFS}/failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS, debugfs mounted)`);

  const saved: [string, string][] = [];
  const set = (path: string, value: string): boolean => {
    const old = readAttr(path);
    if (old === null) return false;
    writeFileSync(path, value);
    saved.push([path, old]);
    return true;
  };
  /* Allow any allocation call to be fault injected */
  if (!set(`${DEBUGFS}/failslab/ignore-gfp-wait`, 'N')) skipBecause(ctx, `${DEBUGFS}/failslab/ignore-gfp-wait cannot be set`);
  set(`${DEBUGFS}/fail_page_alloc/ignore-gfp-wait`, 'N');
  set(`${DEBUGFS}/fail_page_alloc/ignore-gfp-highmem`, 'N');
  for (const name of readdirSync(DEBUGFS)) {
    if (!name.startsWith('fail')) continue;
    /* We are looking for kernel splats, quiet down the log */
    set(`${DEBUGFS}/${name}/verbose`, '0');
    const probability = readAttr(`${DEBUGFS}/${name}/probability`);
    if (probability !== null && probability !== '0') {
      throw new Error(`${DEBUGFS}/${name}/probability is ${probability}: random fault injection is on for the whole machine; set it to 0 for the fail_nth suite`);
    }
  }
  return {
    restore() {
      for (const [path, value] of saved.reverse()) writeFileSync(path, value);
    },
  };
}

// ---------------------------------------------------------------- the kernel log

// KernelLogTail (new /dev/kmsg records since the last read) lives in lib/vm/kernel-log.ts, shared with
// the per-test kernel-log check of every run (lib/vm/kernel-log.ts kernelLogRootHooks).
export { KernelLogTail };

// ---------------------------------------------------------------- TEST_FAIL_NTH

/** FIXTURE_SETUP and FIXTURE_TEARDOWN of the test's fixture. */
export interface FailNthFixture<S> {
  setup(): S;
  teardown(self: S): void;
}

/** What a TEST_FAIL_NTH body gets besides `self` (the C's _nth_state and the calls bound to it). */
export interface FailNthState {
  /** The run: 0 for the run with nothing injected, else the nth fault site that fails. */
  readonly iteration: number;
  /**
   * fail_nth_enable(): the body's calls from here on count fault sites (on
   * run 0 it does nothing). Sites before it were swept by an earlier test.
   */
  enable(): void;
  /** open("/dev/iommu", O_RDWR) through the injector, in lockstep: null when it failed (by injection). */
  openIommufd(): Iommufd | null;
  /** The mocha test, for a part the running kernel cannot do (notChecked, once, on the run with nothing injected). */
  readonly ctx: Context;
}

/**
 * fail_nth_next() has 400, "an arbitrary limit based on the current kernel
 * situation", whose hitting "doesn't necessarily mean a test failure". Our
 * counts run higher than the C binary's and vary with the run: the sites a
 * pin reaches depend on how the buffer's pages sit in memory (measured:
 * map_two_domains swept 172 sites alone, 292-298 after the rest of the mock
 * profile). 1000 keeps a real runaway (a body that never stops reaching new
 * sites) a failure without failing on fragmentation.
 */
export const FAIL_NTH_MAX_ITERATIONS = 1000;

export interface FailNthOptions {
  /** User memory whose page pins are compared after each run (the selftest's buffer). */
  userMemory?: () => readonly UserRange[];
  /** The kernel log reader; null to rely on the VM runner's scan at the end. */
  kernelLog?: () => KernelLogTail | null;
  /** Skips the test, naming what is missing, where the running kernel lacks what the body needs (a require* guard). */
  requires?: (ctx: Context) => void;
}

/**
 * TEST_FAIL_NTH(fixture, name): a mocha test whose body runs once with no
 * fault injected (it must return 0), then once per fault site it reaches
 * after enable(), that site failed, until a run reaches no site left to fail
 * (that run must return 0). The body returns -1 where the C returns -1 (a
 * call failed: by injection, which lockstep checks) and 0 at its end.
 */
export function testFailNth<S extends { fd: Iommufd | null }>(
  name: string,
  fixture: FailNthFixture<S>,
  body: (self: S, nth: FailNthState) => number,
  opts: FailNthOptions = {},
): void {
  it(name, function () {
    const ctx = this;
    opts.requires?.(this);
    const title = this.test?.titlePath().join('.') ?? name;
    const started = performance.now();
    const injector = new FailNthInjector();
    const log = opts.kernelLog?.() ?? null;
    log?.read();
    let iteration = 0;

    /** Fails, naming the run, when the kernel logged a WARN, BUG, KASAN or lockdep report since the last look. */
    const checkKernelLog = (during: string) => {
      const problems = kernelProblems((log?.read() ?? []).join('\n'));
      if (problems.length > 0) throw new Error(`${title}: the kernel reported a problem during ${during}:\n  ${problems.join('\n  ')}`);
    };
    const runName = (n: number) => `the run with the nth=${n} fault site failed${n === 0 ? ' (none: the run with no fault injected)' : ''}`;

    const runBody = (self: S): number => {
      // The teardown and setup between two runs belong to the run before.
      if (iteration > 0) checkKernelLog(`the teardown after ${runName(iteration - 1)}`);
      const nth: FailNthState = {
        iteration,
        enable: () => {
          if (iteration) injector.arm(iteration);
        },
        openIommufd: () => lockstep().tryOpenIommufd({ sys: injector.sysCore() }).iommufd,
        ctx,
      };
      let result: number;
      try {
        result = lockstep().withFaultInjection(injector, () => body(self, nth));
      } catch (e) {
        throw atIteration(e, title, iteration);
      } finally {
        injector.disarm();
      }
      try {
        // The call that failed by injection did not run on the model: the
        // kernel's state must be the model's, as if it had not been made.
        if (self.fd) compareIommufdState(lockstep(), self.fd, opts.userMemory?.() ?? []);
      } catch (e) {
        throw atIteration(e, title, iteration);
      }
      checkKernelLog(runName(iteration));
      return result;
    };

    /* fail_nth_next(): whether to run again, with the next site failed */
    const next = (): boolean => {
      expect(iteration, `${title}: fault sites swept (fail_nth_next's limit)`).to.be.lessThan(FAIL_NTH_MAX_ITERATIONS);
      // A run whose calls never reached the nth site: every site was swept.
      if (iteration !== 0 && !injector.injected) return false;
      iteration++;
      return true;
    };

    let self = fixture.setup();
    let failed = true;
    try {
      expect(runBody(self), `${title}: the run with no fault injected`).to.equal(0);
      let result = 0;
      while (next()) {
        try {
          fixture.teardown(self);
        } catch (e) {
          // teardown_iommufd's checks (close, then no page of the buffer still pinned) belong to the run before.
          throw atIteration(e, title, iteration - 1);
        }
        self = fixture.setup();
        result = runBody(self);
      }
      expect(result, `${title}: the last run (nth=${iteration} not reached)`).to.equal(0);
      failed = false;
    } finally {
      try {
        fixture.teardown(self);
        checkKernelLog(`the teardown after ${runName(iteration)}`);
      } catch (e) {
        // An error of the test itself says more than the teardown's after it.
        if (!failed) throw e;
      }
      // Runs 1 .. iteration-1 each failed a site; run `iteration` reached none (or the test stopped there).
      const seconds = (performance.now() - started) / 1000;
      console.log(`      ${title}: ${Math.max(iteration - 1, 0)} fault sites swept, ${iteration + 1} runs, ${seconds.toFixed(1)} s`);
    }
  });
}

function atIteration(e: unknown, title: string, iteration: number): unknown {
  if (e instanceof Error) e.message = `${title}, the run with the nth=${iteration} fault site failed${iteration === 0 ? ' (none: the run with no fault injected)' : ''}:\n${e.message}`;
  return e;
}

