// The host's part of a VM run's run.json (lib/report/run-identity.ts): the
// guest's suites wrote what they saw (uname, profile, shard, selection,
// counts) as their last act; the host adds the kernel's package version, a
// hash of the .config it was built with, the flavour, and how the guest ended.
// A guest that never wrote its part (crash, hang, a failed mount) still gets a
// run.json, marked unfinished with the host's reasons, so that `merge` reports
// the run as failed instead of losing it.
import { readRunIdentity, runningKernel, sha256File, toolIdentity, writeRunIdentity, type RunIdentity } from '../report/run-identity.ts';
import type { Shard } from '../shard.ts';
import type { GuestKernel } from './kernel.ts';

export interface VmRunRecord {
  profile: string;
  kernel: GuestKernel;
  flavour: string;
  accel: string;
  shard: Shard | null;
  /** The guest's `run` selection arguments (recorded when the guest wrote nothing). */
  runArgs: string[];
  ok: boolean;
  reasons: string[];
  exitCode: number | null;
}

export function recordVmRun(resultsDir: string, r: VmRunRecord): RunIdentity {
  const guest = readRunIdentity(resultsDir);
  const base: RunIdentity = guest ?? {
    format: 1,
    tool: toolIdentity(),
    profile: r.profile,
    select: r.runArgs.join(' ') || null,
    shard: r.shard,
    selection: null,
    // The guest never said: its release is the built tree's version, the rest is unknown.
    kernel: { ...runningKernel(), release: r.kernel.version, version: 'unknown (the guest did not report)', configSha256: null },
    finished: false,
    counts: null,
    startedAt: null,
    finishedAt: null,
  };
  const identity: RunIdentity = {
    ...base,
    kernel: {
      ...base.kernel,
      packageVersion: r.kernel.origin.kind === 'debian' ? r.kernel.origin.packageVersion : null,
      configSha256: r.kernel.config ? sha256File(r.kernel.config) : null,
      flavour: r.kernel.config ? r.flavour : null,
    },
    vm: { ok: r.ok, reasons: r.reasons, accel: r.accel, exitCode: r.exitCode },
  };
  writeRunIdentity(resultsDir, identity);
  return identity;
}
