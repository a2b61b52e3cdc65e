// Boots the guest: host root read-only over 9p, the results folder writable,
// lib/vm/guest-init.sh as PID 1. Streams the console, times the boot, ends a
// hung guest, and returns the job's exit code with whatever the kernel
// reported that should fail the run.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePackages } from '../kbuild/apt.ts';
import { SetupError } from '../kbuild/setup-error.ts';
import type { Accel } from './accel.ts';
import type { Profile } from './profiles.ts';
import { kernelProblems } from './kernel-log.ts';

export const GUEST_INIT = resolve(dirname(fileURLToPath(import.meta.url)), 'guest-init.sh');
const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MARK = '@@iommufd-conformance:';

export interface BootRequest {
  /** What -kernel boots: a PVH vmlinux or a bzImage. */
  image: string;
  profile: Profile;
  accel: Accel;
  /** A bash script run in the guest as root, in `cwd`. */
  script: string;
  /**
   * The script waits itself, before it needs any mount, for one byte on fd 3
   * (IOMMUFD_CONFORMANCE_START_FD; the suites' loader, lib/vm/guest-loader.cjs, does): the init then starts it
   * before its first mount and writes the byte once every mount is made. Otherwise it starts
   * after the mounts.
   */
  startsEarly?: boolean;
  cwd: string;
  env?: Record<string, string>;
  /** Host paths the job needs to see (the Node binary): no tmpfs is mounted over them. */
  neededPaths?: string[];
  /** Writable in the guest, at the same path. Must exist; no spaces. */
  resultsDir: string;
  timeoutSeconds: number;
  memoryMiB?: number;
  cpus?: number;
  /** Called with each console line (the job's output and kernel errors). */
  onLine?: (line: string) => void;
}

export interface BootResult {
  /** The job's exit code; null when the guest never reported one. */
  exitCode: number | null;
  timedOut: boolean;
  /** ms from starting QEMU to the init script's first line. */
  bootMs: number | null;
  /** ms from starting QEMU to the first test (a marker the reporter prints). */
  firstTestMs: number | null;
  totalMs: number;
  console: string;
  dmesg: string;
  /** Panics, oopses, WARNs, BUGs, KASAN and lockdep reports found in the logs. */
  problems: string[];
  /** What the guest's init reported as failing (a mount, the power-off), with the cause. */
  guestErrors: string[];
}

export function qemuBinary(log?: (line: string) => void): string {
  const find = () => spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']);
  if (find().status !== 0) ensurePackages(['qemu-system-x86'], 'booting the test VM', log);
  const r = find();
  if (r.status !== 0) throw new SetupError('qemu-system-x86_64 is not installed', 'apt-get install qemu-system-x86');
  return r.stdout.toString().trim();
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * What the guest mounts (devtmpfs is mounted by the kernel: DEVTMPFS_MOUNT).
 * Scratch space is a tmpfs on /run (TMPDIR=/run/tmp). /tmp gets a tmpfs too,
 * unless a host path the guest needs lies under it: a tmpfs there would hide
 * the clone or the results folder.
 */
export function guestFstab(resultsDir: string, neededPaths: string[] = []): string {
  const underTmp = [resultsDir, ...neededPaths].some((p) => p === '/tmp' || p.startsWith('/tmp/'));
  return [
    'proc /proc proc defaults 0 0',
    'sysfs /sys sysfs defaults 0 0',
    'debugfs /sys/kernel/debug debugfs defaults 0 0',
    'tmpfs /run tmpfs mode=0755 0 0',
    ...(underTmp ? [] : ['tmpfs /tmp tmpfs mode=1777 0 0']),
    `results ${resultsDir} 9p trans=virtio,version=9p2000.L,msize=512000,access=any 0 0`,
    '',
  ].join('\n');
}

export function qemuArgs(req: BootRequest): string[] {
  const kernelArgs = [
    // No `quiet` (it keeps KERN_WARNING off the console): loglevel=5 prints
    // warnings and everything worse (WARN, BUG, KASAN, UBSAN, lockdep,
    // panics) and leaves out the boot's notice and info chatter.
    'console=ttyS0', 'loglevel=5', 'panic=-1', 'oops=panic', 'ro',
    // The 9p tag is what the kernel passes as the device name: "/dev/root" on 6.4 and later, but 6.1
    // strips "/dev/" first (init/do_mounts.c, prepare_namespace), so a plain "root" works on both.
    'root=root', 'rootfstype=9p', 'rootflags=trans=virtio,version=9p2000.L,msize=512000,cache=loose',
    // 72 x 2 MiB: the dirty-tracking selftests' 128 MiB MAP_HUGETLB buffer (64) and room besides.
    `init=${GUEST_INIT}`, 'hugepages=72',
    `IOMMUFD_CONFORMANCE_RESULTS=${req.resultsDir}`,
    // Under TCG on a loaded host, check_timer()'s test of the timer through the IO-APIC can miss its
    // ticks, and with interrupt remapping on (the viommu profile) that is a panic at boot ("timer
    // doesn't work through Interrupt-remapped IO-APIC", arch/x86/kernel/apic/io_apic.c). Seen twice in
    // one afternoon here. no_timer_check makes timer_irq_works() trust the timer, which QEMU's is.
    ...(req.accel === 'kvm' ? [] : ['no_timer_check']),
    ...req.profile.kernelArgs,
  ];
  const accel = req.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
  return [
    ...accel,
    '-machine', 'q35',
    '-m', `${req.memoryMiB ?? 2048}M`,
    '-smp', String(req.cpus ?? 2),
    '-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio',
    '-kernel', req.image,
    '-append', kernelArgs.join(' '),
    '-fsdev', 'local,id=root,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=root,mount_tag=root',
    '-fsdev', `local,id=results,path=${req.resultsDir},security_model=none,multidevs=remap`,
    '-device', 'virtio-9p-pci,fsdev=results,mount_tag=results',
    ...req.profile.qemuArgs,
  ];
}

export function boot(req: BootRequest): Promise<BootResult> {
  if (/\s/.test(req.resultsDir)) throw new RangeError(`results folder ${req.resultsDir} has white space: the kernel command line cannot carry it`);
  if (!existsSync(req.image)) throw new SetupError(`kernel image ${req.image} is missing`, 'run `iommufd-conformance vm` to build it, or pass --kernel');
  const vm = join(req.resultsDir, '.vm');
  rmSync(vm, { recursive: true, force: true });
  mkdirSync(vm, { recursive: true });
  writeFileSync(join(vm, 'job.sh'), `${req.script}\n`);
  if (req.startsEarly) writeFileSync(join(vm, 'start-early'), '');
  writeFileSync(join(vm, 'cwd'), req.cwd);
  writeFileSync(join(vm, 'fstab'), guestFstab(req.resultsDir, [req.cwd, PACKAGE_ROOT, ...(req.neededPaths ?? [])]));
  writeFileSync(
    join(vm, 'job.env'),
    Object.entries(req.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)}\n`).join(''),
  );
  // Found before the clock starts: the times are QEMU's start to the guest's markers.
  const qemu = qemuBinary();
  const started = Date.now();
  const child = spawn(qemu, qemuArgs(req), { stdio: ['ignore', 'pipe', 'pipe'] });
  let consoleText = '';
  let pending = '';
  let bootMs: number | null = null;
  let firstTestMs: number | null = null;
  let timedOut = false;
  const guestErrors: string[] = [];
  const onText = (chunk: Buffer) => {
    const text = pending + chunk.toString('utf8').replace(/\r/g, '');
    const lines = text.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      consoleText += `${line}\n`;
      if (line.startsWith(`${MARK}ready`)) bootMs ??= Date.now() - started;
      else if (line.startsWith(`${MARK}first-test`)) firstTestMs ??= Date.now() - started;
      else if (line.startsWith(`${MARK}error `)) {
        guestErrors.push(line.slice(`${MARK}error `.length));
        req.onLine?.(`guest init: ${line.slice(`${MARK}error `.length)}`);
      }
      else if (!line.startsWith(MARK)) req.onLine?.(line);
    }
  };
  child.stdout.on('data', onText);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, req.timeoutSeconds * 1000);
  return new Promise((done, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (pending) onText(Buffer.from('\n'));
      const exitFile = join(vm, 'exit-code');
      const exitCode = existsSync(exitFile) ? Number(readFileSync(exitFile, 'utf8').trim()) : null;
      const dmesgFile = join(vm, 'dmesg.txt');
      const dmesg = existsSync(dmesgFile) ? readFileSync(dmesgFile, 'utf8') : '';
      if (exitCode === null && !timedOut && code !== 0 && stderr.trim()) {
        consoleText += `\n[qemu exited ${code}] ${stderr.trim()}\n`;
      }
      done({
        exitCode,
        timedOut,
        bootMs,
        firstTestMs,
        totalMs: Date.now() - started,
        console: consoleText,
        dmesg,
        problems: kernelProblems(`${consoleText}\n${dmesg}`),
        guestErrors,
      });
    });
  });
}
