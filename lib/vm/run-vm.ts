// `iommufd-conformance vm`: builds (or reuses) the guest kernel, boots one
// guest per profile, runs the suites (or a user command) inside, and reports
// what happened in the guest: exit code, kernel problems, timings.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chooseAccel, type Accel } from './accel.ts';
import { ensureGuestKernel, type KernelFlavour } from './kernel.ts';
import { profiles, type ProfileName } from './profiles.ts';
import { bundleGuest } from './guest-bundle.ts';
import { boot, qemuBinary, type BootResult } from './qemu.ts';
import { classifyProblems, loadFindings } from './findings.ts';

export interface VmRunOptions {
  profiles: ProfileName[];
  out: string;
  flavour: KernelFlavour;
  kernel?: string;
  kernelSrc?: string;
  accel: 'auto' | Accel;
  timeoutSeconds: number;
  /** A user command instead of the suites. */
  exec?: string;
  /** Extra arguments for the guest's `run` (e.g. --grep). */
  runArgs?: string[];
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

function seconds(ms: number | null): string {
  return ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`;
}

export async function runInVm(opts: VmRunOptions): Promise<{ ok: boolean; outcomes: ProfileOutcome[] }> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const t0 = Date.now();
  qemuBinary(log); // fail early, with the fix, when QEMU is missing
  const kernel = await ensureGuestKernel({ flavour: opts.flavour, sourceDir: opts.kernelSrc, bzImage: opts.kernel, log });
  const { accel, why } = await chooseAccel(kernel.bzImage, opts.accel);
  log(`guest kernel: ${kernel.bzImage} (${kernel.cached ? 'cached' : `built in ${kernel.buildSeconds.toFixed(0)} s`}); accelerator: ${accel} (${why})`);
  const out = resolve(opts.out);
  const manifest = opts.exec ? null : await bundleGuest(out);
  const outcomes: ProfileOutcome[] = [];
  const findings = loadFindings();
  for (const name of opts.profiles) {
    const profile = profiles[name];
    const resultsDir = join(out, name);
    // Results of an earlier run must not pass for this one's.
    for (const f of ['results.json', 'results.tap', 'results.xml']) rmSync(join(resultsDir, f), { force: true });
    mkdirSync(resultsDir, { recursive: true });
    const script = opts.exec ?? [
      `exec node ${manifest!.main} run --profile ${name} --out ${resultsDir} --manifest ${manifest!.path}`,
      ...(opts.runArgs ?? []).map((a) => `'${a.replace(/'/g, `'\\''`)}'`),
    ].join(' ');
    log(`--- profile ${name}: ${profile.description}`);
    const result = await boot({
      bzImage: kernel.bzImage,
      profile,
      accel,
      script,
      cwd: process.cwd(),
      env: { IOMMUFD_CONFORMANCE_IN_VM: '1', IOMMUFD_CONFORMANCE_PROFILE: name, ...(process.env.CI ? { CI: process.env.CI } : {}) },
      resultsDir,
      timeoutSeconds: opts.timeoutSeconds,
      onLine: (line) => process.stdout.write(`${line}\n`),
    });
    writeFileSync(join(resultsDir, 'console.log'), result.console);
    writeFileSync(join(resultsDir, 'dmesg.txt'), result.dmesg);
    const reasons: string[] = [];
    if (result.timedOut) reasons.push(`the guest did not finish within ${opts.timeoutSeconds} s and was killed (raise --timeout, or see ${join(resultsDir, 'console.log')})`);
    else if (result.exitCode === null) reasons.push(`the guest stopped without reporting an exit code (crash or panic: see ${join(resultsDir, 'console.log')})`);
    else if (result.exitCode !== 0) reasons.push(`the guest command exited with ${result.exitCode}`);
    if (!opts.exec && result.exitCode !== null) {
      // A guest that ran no test proves nothing: that is a failure, not a pass.
      const resultsJson = join(resultsDir, 'results.json');
      const tests = existsSync(resultsJson) ? (JSON.parse(readFileSync(resultsJson, 'utf8')).stats?.tests ?? 0) : 0;
      if (tests === 0) reasons.push(`no test ran in the guest (${existsSync(resultsJson) ? 'results.json counts 0 tests' : 'no results.json written'})`);
    }
    // A report that is a known finding is that finding (its own test checks it still reproduces); any other fails the run.
    const { known, unknown } = classifyProblems(result.problems, findings);
    if (unknown.length > 0) {
      reasons.push(`the guest kernel reported ${unknown.length} problem(s):\n    ${unknown.join('\n    ')}`);
    }
    const knownFindings = known.map((k) => ({ id: k.finding.id, doc: k.finding.doc, problem: k.problem.split('\n')[0]! }));
    for (const id of new Set(knownFindings.map((k) => k.id))) {
      const f = findings.find((x) => x.id === id)!;
      log(`profile ${name}: known kernel finding ${id} (${f.doc}) reproduced ${knownFindings.filter((k) => k.id === id).length} time(s): ${f.title}`);
    }
    log(`profile ${name}: boot ${seconds(result.bootMs)}, boot to first test ${seconds(result.firstTestMs)}, total ${seconds(result.totalMs)}`);
    for (const r of reasons) log(`profile ${name}: FAILED: ${r}`);
    outcomes.push({ profile: name, ok: reasons.length === 0, result, reasons, knownFindings });
  }
  const ok = outcomes.every((o) => o.ok);
  log(`kernel build ${kernel.cached ? '0 s (cached)' : `${kernel.buildSeconds.toFixed(0)} s`}; total ${seconds(Date.now() - t0)}; ${ok ? 'all profiles passed' : 'FAILED'}`);
  writeFileSync(
    join(out, 'vm-run.json'),
    JSON.stringify(
      {
        kernel: { image: kernel.bzImage, version: kernel.version, buildSeconds: kernel.buildSeconds, cached: kernel.cached },
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
