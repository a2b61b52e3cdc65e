// run.json: who ran what, on which kernel, written into a results folder when
// a run ends, for `iommufd-conformance merge` (lib/merge/) to tell runs apart
// and check shard sets. The suites' side (runSuites: the kernel the tests
// really ran on, from uname; the profile; the shard and the selection it cut
// from) is written where the tests ran, as the run's last act, so a folder
// whose run did not finish has none. A VM run's host then adds what only it
// knows: the kernel's package version, a hash of its .config, the flavour and
// how the guest ended (lib/vm/run-vm.ts).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { arch, machine, release, version } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';
import type { Shard, ShardSelection } from '../shard.ts';

export const RUN_IDENTITY_FILE = 'run.json';

export interface KernelIdentity {
  /** uname -r where the tests ran. */
  release: string;
  /** uname -v. */
  version: string;
  /** uname -m. */
  machine: string;
  /** The kernel source's Debian package version (e.g. 6.12.117-1~deb12u1), when the tool built it from one. */
  packageVersion: string | null;
  /** sha256 of the kernel's .config, when known (a guest kernel the tool built; /boot/config-RELEASE on a host). */
  configSha256: string | null;
  /** base or debug, for a kernel the tool built. */
  flavour: string | null;
}

export interface RunIdentity {
  format: 1;
  tool: { name: string; version: string };
  /** The profile (mock, viommu), or what ran instead: the folders given to `run`. */
  profile: string;
  /** The selection the run was given (`--grep P --test NAME ...`), or null for every test. */
  select: string | null;
  shard: Shard | null;
  /** What the selection kept before the split (the same for every shard of a set) and what this shard kept. */
  selection: ShardSelection | null;
  kernel: KernelIdentity;
  /** Whether the suites ran to their end (false: only the host's record of a guest that did not finish). */
  finished: boolean;
  counts: { tests: number; passes: number; failures: number; pending: number } | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** A VM run's outcome as the host saw it (exit code, kernel problems). */
  vm?: { ok: boolean; reasons: string[]; accel: string; exitCode: number | null };
}

export function toolIdentity(): { name: string; version: string } {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}

export function sha256File(path: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return null;
  }
}

/** The running kernel as uname sees it; its .config hash from /boot when that file is there. */
export function runningKernel(): KernelIdentity {
  return {
    release: release(),
    version: version(),
    machine: typeof machine === 'function' ? machine() : arch(),
    packageVersion: null,
    configSha256: sha256File(`/boot/config-${release()}`),
    flavour: null,
  };
}

export function readRunIdentity(dir: string): RunIdentity | null {
  const path = join(dir, RUN_IDENTITY_FILE);
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, 'utf8')) as RunIdentity;
}

/** Written whole or not at all (a reader never sees half a file). */
export function writeRunIdentity(dir: string, identity: RunIdentity): string {
  const path = join(dir, RUN_IDENTITY_FILE);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(identity, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  return path;
}

export function removeRunIdentity(dir: string): void {
  rmSync(join(dir, RUN_IDENTITY_FILE), { force: true });
}
