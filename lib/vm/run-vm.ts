// `iommufd-conformance vm`: builds (or reuses) the guest kernel, boots one
// guest per profile, runs the suites (or a user command) inside, and reports
// what happened in the guest: exit code, kernel problems, timings.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { KernelSeries } from '../kbuild/series.ts';
import { chooseAccel, type Accel } from './accel.ts';
import { ensureGuestKernel, type KernelFlavour } from './kernel.ts';
import { kernelFragmentsOf, profiles, type ProfileName } from './profiles.ts';
import { bundleGuest } from './guest-bundle.ts';
import { boot, qemuBinary, type BootResult } from './qemu.ts';
import { classifyProblems, loadFindings, reportedFindings } from './findings.ts';
import { recordVmRun } from './run-record.ts';
import { shardLabel, type Shard } from '../shard.ts';
import { kernelRecord, stampKernel } from './stamp-results.ts';

export interface VmRunOptions {
  profiles: ProfileName[];
  out: string;
  flavour: KernelFlavour;
  kernel?: string;
  kernelSrc?: string;
  /** Which Debian linux-source-<series> to build when neither kernel nor kernelSrc is given. */
  kernelVersion?: KernelSeries;
  accel: 'auto' | Accel;
  timeoutSeconds: number;
  /** A user command instead of the suites. */
  exec?: string;
  /** Extra arguments for the guest's `run` (e.g. --grep). */
  runArgs?: string[];
  /** Run only this shard of each profile's selected tests (lib/shard.ts). */
  shard?: Shard | null;
  log?: (line: string) => void;
}

export interface ProfileOutcome {
  profile: ProfileName;
  ok: boolean;
  result: BootResult;
  reasons: string[];
  /** Kernel reports that are known findings (fixtures/findings.json), by id: reported, not failures. */
  knownFindings: { id: string; doc: string; problem: string }[];
}

/**
 * What the guest inherits from this process: the Node binary that runs the
 * tool, and every IOMMUFD_CONFORMANCE_* knob (mode, backend, ...) set here.
 */
export function guestEnvironment(env: NodeJS.ProcessEnv, profile: string, kernelSource: string): Record<string, string> {
  // IOMMUFD_CONFORMANCE_OUT is where this process writes (npm test's unit results); the guest's run sets its own.
  const knobs = Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('IOMMUFD_CONFORMANCE_') && e[0] !== 'IOMMUFD_CONFORMANCE_OUT' && e[1] !== undefined),
  );
  return {
    ...knobs,
    IOMMUFD_CONFORMANCE_IN_VM: '1',
    IOMMUFD_CONFORMANCE_PROFILE: profile,
    IOMMUFD_CONFORMANCE_KERNEL: kernelSource,
    ...(env.CI ? { CI: env.CI } : {}),
  };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Results of an earlier run must not pass for this one's: every file of the profile's folder goes. */
export function freshResultsDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}

function seconds(ms: number | null): string {
  return ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`;
}

export async function runInVm(opts: VmRunOptions): Promise<{ ok: boolean; outcomes: ProfileOutcome[] }> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const t0 = Date.now();
  qemuBinary(log); // fail early, with the fix, when QEMU is missing
  const out = resolve(opts.out);
  // A run that does not finish must not leave the previous run's summary where a user would read it.
  rmSync(join(out, 'vm-run.json'), { force: true });
  const kernel = await ensureGuestKernel({
    flavour: opts.flavour,
    series: opts.kernelVersion,
    sourceDir: opts.kernelSrc,
    bzImage: opts.kernel,
    extraFragments: kernelFragmentsOf(opts.profiles),
    log,
  });
  const { accel, why } = await chooseAccel(kernel.image, opts.accel);
  log(`guest kernel: ${kernel.source}, Linux ${kernel.version}: ${kernel.image} (${kernel.cached ? 'cached' : `built in ${kernel.buildSeconds.toFixed(0)} s`}); accelerator: ${accel} (${why})`);
  const manifest = opts.exec ? null : await bundleGuest(out, log);
  const outcomes: ProfileOutcome[] = [];
  const findings = loadFindings();
  for (const name of opts.profiles) {
    const profile = profiles[name];
    const resultsDir = join(out, name);
    freshResultsDir(resultsDir);
    // The guest runs the very Node binary that runs this process (the host's root is the guest's).
    const script = opts.exec ?? [
      `exec ${shellQuote(process.execPath)} ${manifest!.main} run --profile ${name} --out ${resultsDir} --manifest ${manifest!.path}`,
      ...[...(opts.runArgs ?? []), ...(opts.shard ? ['--shard', shardLabel(opts.shard)] : [])].map(shellQuote),
    ].join(' ');
    log(`--- profile ${name}: ${profile.description}`);
    const result = await boot({
      image: kernel.image,
      profile,
      accel,
      script,
      // The suites' loader waits for the init's go: Node starts while the init still mounts.
      startsEarly: !opts.exec,
      cwd: process.cwd(),
      env: { ...guestEnvironment(process.env, name, kernel.source), PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` },
      neededPaths: [process.execPath],
      resultsDir,
      timeoutSeconds: opts.timeoutSeconds,
      onLine: (line) => process.stdout.write(`${line}\n`),
    });
    writeFileSync(join(resultsDir, 'console.log'), result.console);
    writeFileSync(join(resultsDir, 'dmesg.txt'), result.dmesg);
    stampKernel(resultsDir, kernel);
    const reasons: string[] = result.guestErrors.map((e) => `the guest's init failed: ${e}`);
    if (result.timedOut) reasons.push(`the guest did not finish within ${opts.timeoutSeconds} s and was killed (raise --timeout, or see ${join(resultsDir, 'console.log')})`);
    else if (result.exitCode === null) reasons.push(`the guest stopped without reporting an exit code (crash or panic: see ${join(resultsDir, 'console.log')})`);
    else if (result.exitCode !== 0) reasons.push(`the guest command exited with ${result.exitCode}`);
    if (!opts.exec && result.exitCode !== null) {
      // A guest that ran no test proves nothing: that is a failure, not a pass.
      const resultsJson = join(resultsDir, 'results.json');
      const tests = existsSync(resultsJson) ? (JSON.parse(readFileSync(resultsJson, 'utf8')).stats?.tests ?? 0) : 0;
      // An empty shard (fewer selected tests than shards) ran nothing by design; its run.json says so.
      const emptyShard = opts.shard && existsSync(join(resultsDir, 'run.json')) && JSON.parse(readFileSync(join(resultsDir, 'run.json'), 'utf8')).selection?.selected === 0;
      if (tests === 0 && !emptyShard) reasons.push(`no test ran in the guest (${existsSync(resultsJson) ? 'results.json counts 0 tests' : 'no results.json written'})`);
    }
    // A report that is a known finding is that finding (its own test checks it still reproduces); any other fails the run.
    const { known, unknown } = classifyProblems(result.problems, findings);
    if (unknown.length > 0) {
      reasons.push(`the guest kernel reported ${unknown.length} problem(s):\n    ${unknown.join('\n    ')}`);
    }
    const knownFindings = known.map((k) => ({ id: k.finding.id, doc: k.finding.doc, problem: k.problem.split('\n')[0]! }));
    for (const id of new Set(knownFindings.map((k) => k.id))) {
      const f = findings.find((x) => x.id === id)!;
      // A WARN shows as two report lines (the "cut here" marker and the WARNING line): count the reports.
      const lines = knownFindings.filter((k) => k.id === id);
      const reports = lines.filter((k) => !k.problem.includes('[ cut here ]')).length || lines.length;
      log(`profile ${name}: known kernel finding ${id} (${f.doc}) reproduced ${reports} time(s): ${f.title}`);
    }
    // Wrong results the cases met and reported under a known finding's id (nothing in the kernel log shows them).
    for (const [id, r] of reportedFindings(resultsDir)) {
      const f = findings.find((x) => x.id === id);
      knownFindings.push({ id, doc: f?.doc ?? '', problem: r.first });
      log(`profile ${name}: known kernel finding ${id} (${f?.doc ?? 'not in fixtures/findings.json'}) met by ${r.count} case(s): ${f?.title ?? r.first}`);
    }
    log(`profile ${name}: boot ${seconds(result.bootMs)}, boot to first test ${seconds(result.firstTestMs)}, total ${seconds(result.totalMs)}`);
    for (const r of reasons) log(`profile ${name}: FAILED: ${r}`);
    outcomes.push({ profile: name, ok: reasons.length === 0, result, reasons, knownFindings });
    if (!opts.exec) recordVmRun(resultsDir, { profile: name, kernel, flavour: opts.flavour, accel, shard: opts.shard ?? null, runArgs: opts.runArgs ?? [], ok: reasons.length === 0, reasons, exitCode: result.exitCode });
  }
  const ok = outcomes.every((o) => o.ok);
  log(`kernel build ${kernel.cached ? '0 s (cached)' : `${kernel.buildSeconds.toFixed(0)} s`}; total ${seconds(Date.now() - t0)}; ${ok ? 'all profiles passed' : 'FAILED'}`);
  writeFileSync(
    join(out, 'vm-run.json'),
    JSON.stringify(
      {
        kernel: kernelRecord(kernel),
        accel,
        accelReason: why,
        totalMs: Date.now() - t0,
        profiles: outcomes.map((o) => ({ profile: o.profile, ok: o.ok, reasons: o.reasons, exitCode: o.result.exitCode, bootMs: o.result.bootMs, firstTestMs: o.result.firstTestMs, totalMs: o.result.totalMs, problems: o.result.problems, knownFindings: o.knownFindings })),
      },
      null,
      2,
    ),
  );
  return { ok, outcomes };
}
