// `iommufd-conformance doctor`: everything this machine lacks for each job,
// found at once (not one missing tool per failed run), each with the command
// that installs it. Changes nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromiumMissing } from '../audit/browser.ts';
import { KERNEL_BUILD_PACKAGES, KERNEL_HEADERS_PACKAGES, packageInstalled } from '../kbuild/apt.ts';
import { cacheRoot } from '../kbuild/cache.ts';
import { machineAptSources, privateSourcesList, releaseCodename } from '../kbuild/debian-archive.ts';
import { cachedDebianSources, describeOrigin } from '../kbuild/source.ts';
import { ADDON_PATH } from '../sys/addon.ts';
import { isRoot } from '../sys/credentials.ts';
import { cpuHasVirtualisation, kvmOpens } from '../vm/accel.ts';

export interface Check {
  what: string;
  /** ok: present; missing: a job below cannot run; note: works, but slower or partly. */
  status: 'ok' | 'missing' | 'note';
  detail: string;
  /** Debian packages that fix it. */
  packages?: string[];
  /** The command that fixes it, when it is not an apt-get install. */
  fix?: string;
  /** The jobs that need it. */
  neededBy: string;
}

/** Packages of KERNEL_BUILD_PACKAGES and KERNEL_HEADERS_PACKAGES named after the command they install. */
const KERNEL_TOOL_COMMANDS = new Set(['make', 'gcc', 'bc', 'flex', 'bison', 'rsync']);

function commandPath(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The trees whose installed headers are cached (lib/kbuild/source.ts:ensureKernelHeaders). */
function cachedHeaders(): string[] {
  const dir = join(cacheRoot(), 'headers');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((d) => existsSync(join(dir, d, '.installed')));
}

function cachedKernels(): string[] {
  const dir = join(cacheRoot(), 'kernel');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((d) => existsSync(join(dir, d, 'vmlinux')));
}

export function doctorChecks(): Check[] {
  const checks: Check[] = [];
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  checks.push({
    what: 'Node.js >= 20.19',
    status: major > 20 || (major === 20 && minor >= 19) ? 'ok' : 'missing',
    detail: `${process.execPath} ${process.version}`,
    fix: 'install Node.js 20.19 or newer (https://nodejs.org, or your distribution\'s nodejs)',
    neededBy: 'everything',
  });

  const cxx = commandPath('c++') ?? commandPath('g++');
  const addonBuilt = existsSync(ADDON_PATH);
  checks.push({
    what: 'system-call backend',
    status: addonBuilt ? 'ok' : 'note',
    detail: addonBuilt
      ? `native addon built (${ADDON_PATH})`
      : `native addon not built: the koffi backend runs the core calls; the suites that fork, set capabilities or inject faults need the addon${cxx ? '' : ' (no C++ compiler)'}`,
    ...(addonBuilt ? {} : { packages: cxx ? [] : ['g++', 'make', 'python3'], fix: cxx ? 'npm run build:native' : 'apt-get install g++ make python3 && npm run build:native' }),
    neededBy: 'the VM suites (fork, capabilities, fail-nth), npm run bench',
  });

  const qemu = commandPath('qemu-system-x86_64');
  checks.push({ what: 'QEMU', status: qemu ? 'ok' : 'missing', detail: qemu ?? 'qemu-system-x86_64 not found', packages: ['qemu-system-x86'], neededBy: 'vm, test, audit' });

  const vt = cpuHasVirtualisation();
  const kvm = kvmOpens();
  checks.push({
    what: 'KVM',
    status: vt && kvm ? 'ok' : 'note',
    detail: vt && kvm
      ? '/dev/kvm opens and the CPU has vmx/svm (a probe guest confirms it on first use)'
      : `not usable (${!vt ? 'the CPU advertises no vmx/svm' : '/dev/kvm missing or not openable by this user'}): guests run under TCG, several times slower`,
    ...(vt && !kvm ? { fix: 'load kvm_intel or kvm_amd, and add this user to the kvm group' } : {}),
    neededBy: 'fast guests (optional)',
  });

  const kernels = cachedKernels();
  // The source comes from Debian's archive through the tool's own apt configuration (no root needed).
  const trees = cachedDebianSources().map((t) => describeOrigin(t.origin));
  let archive: string | null = null;
  let noArchive = '';
  try {
    const list = privateSourcesList(machineAptSources(), releaseCodename());
    archive = /^deb \[[^\]]*\] (\S+) /m.exec(list)?.[1] ?? null;
  } catch (err) {
    noArchive = (err as Error).message.split('\n')[0]!;
  }
  const aptTools = commandPath('apt-get') !== null && commandPath('dpkg-deb') !== null;
  const source = aptTools && archive !== null;
  checks.push({
    what: 'kernel source',
    status: source ? 'ok' : kernels.length > 0 || trees.length > 0 ? 'note' : 'missing',
    detail: source
      ? `linux-source-<version> fetched on first use from ${archive} with the tool's own apt configuration${trees.length > 0 ? ` (cached: ${trees.join(', ')})` : ''}`
      : `${aptTools ? noArchive : 'apt-get and dpkg-deb are missing'}${trees.length > 0 ? ` (cached: ${trees.join(', ')})` : ''}${kernels.length > 0 ? ` (cached guest kernels: ${kernels.join(', ')})` : ''}; --kernel-src DIR or --kernel BZIMAGE do without`,
    ...(source ? {} : { fix: 'pass --kernel-src DIR (a Linux tree) or --kernel BZIMAGE' }),
    neededBy: 'vm, test, audit (building the guest kernel), parity, the layout unit test',
  });

  // The tools by command (what make will run), the libraries by package. Building a guest kernel and installing a
  // tree's headers are two checks: a cached kernel makes the build's tools optional, but not the headers', which the
  // layout unit test and every kselftest build install from the tree unless they are cached too.
  // make and gcc are in both lists: each package is looked for once.
  const absent = new Set([...new Set([...KERNEL_BUILD_PACKAGES, ...KERNEL_HEADERS_PACKAGES])].filter((p) => (KERNEL_TOOL_COMMANDS.has(p) ? commandPath(p) === null : !packageInstalled(p))));
  const missing = (packages: readonly string[]) => packages.filter((p) => absent.has(p));
  const missingBuild = missing(KERNEL_BUILD_PACKAGES);
  checks.push({
    what: 'kernel build tools',
    status: missingBuild.length === 0 ? 'ok' : kernels.length > 0 ? 'note' : 'missing',
    detail: missingBuild.length === 0 ? KERNEL_BUILD_PACKAGES.join(' ') : `missing ${missingBuild.join(', ')}${kernels.length > 0 ? ' (the cached guest kernels need none; a new version or config does)' : ''}`,
    packages: missingBuild,
    neededBy: 'vm, test, audit (building the guest kernel)',
  });
  const missingHeaders = missing(KERNEL_HEADERS_PACKAGES);
  const headers = cachedHeaders();
  checks.push({
    what: 'kernel headers tools',
    status: missingHeaders.length === 0 ? 'ok' : headers.length > 0 ? 'note' : 'missing',
    detail: missingHeaders.length === 0
      ? `${KERNEL_HEADERS_PACKAGES.join(' ')} (make headers_install)`
      : `missing ${missingHeaders.join(', ')}${headers.length > 0 ? ` (the cached headers of ${headers.join(', ')} need none; another tree's do)` : ''}`,
    packages: missingHeaders,
    neededBy: 'the layout unit test, kselftest and npm run bench (make headers_install of a tree)',
  });

  const chromium = chromiumMissing();
  const ci = process.env.CI === 'true';
  checks.push({
    what: 'Chromium',
    // Outside CI the audit says the page was not checked and goes on; in CI that fails.
    status: chromium ? (ci ? 'missing' : 'note') : 'ok',
    detail: chromium ?? 'headless chromium runs',
    packages: ['chromium'],
    neededBy: 'audit and npm test (checking audit.html; mandatory with CI=true)',
  });
  return checks;
}

/** Prints the report; 0 when nothing is missing, 3 otherwise. */
export function runDoctor(write: (s: string) => void = (s) => process.stdout.write(s)): number {
  const checks = doctorChecks();
  const lines: string[] = [];
  for (const c of checks) {
    const mark = c.status === 'ok' ? 'ok     ' : c.status === 'missing' ? 'MISSING' : 'note   ';
    lines.push(`${mark} ${c.what}: ${c.detail}`);
    if (c.status !== 'ok') {
      const fix = c.fix ?? (c.packages && c.packages.length > 0 ? `apt-get install ${c.packages.join(' ')}` : undefined);
      if (fix) lines.push(`        fix: ${isRoot() || !fix.startsWith('apt-get') ? '' : 'sudo '}${fix}`);
      lines.push(`        needed by: ${c.neededBy}`);
    }
  }
  const missing = checks.filter((c) => c.status === 'missing');
  const packages = [...new Set(missing.flatMap((c) => c.packages ?? []))];
  if (missing.length === 0) lines.push('doctor: nothing missing');
  else {
    lines.push(`doctor: ${missing.length} missing: ${missing.map((c) => c.what).join(', ')}`);
    if (packages.length > 0) lines.push(`doctor: all at once: ${isRoot() ? '' : 'sudo '}apt-get install ${packages.join(' ')}`);
  }
  write(`${lines.join('\n')}\n`);
  return missing.length === 0 ? 0 : 3;
}
