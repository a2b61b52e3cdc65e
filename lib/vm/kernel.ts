// Builds the guest kernel: `make tinyconfig` plus the fragments in
// fixtures/kernel/ that apply to the tree, out of tree, cached by source
// (Debian package version, or a user tree's path), flavour, fragments and
// compiler, under a lock per cache entry. A Debian build is made in the
// entry's build folder and counts as done only once its image is renamed into
// place (a killed run's half build is removed by the next); a user tree is
// rebuilt incrementally on every run (make decides), so the booted kernel is
// the tree as it is. The image is vmlinux itself, which QEMU boots through
// the PVH entry point (CONFIG_PVH in base.config): `make vmlinux` skips the
// bzImage stage (its own objects, compressing vmlinux on the host) and the
// guest skips decompressing it under TCG.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePackages, KERNEL_BUILD_PACKAGES } from '../kbuild/apt.ts';
import { cacheDir } from '../kbuild/cache.ts';
import { withLock } from '../kbuild/lock.ts';
import type { KernelSeries } from '../kbuild/series.ts';
import { describeOrigin, ensureKernelSource, SetupError, type KernelOrigin, type KernelSource } from '../kbuild/source.ts';

export type KernelFlavour = 'base' | 'debug';

export interface GuestKernel {
  /** What QEMU's -kernel boots: the PVH vmlinux built here, or a user-given bzImage. */
  image: string;
  /** The .config the image was built with (null for a user-given bzImage). */
  config: string | null;
  version: string;
  /** Where the kernel came from: Debian's package and its exact version, a user tree, or a given bzImage. */
  origin: KernelOrigin | { kind: 'image'; path: string };
  /** One line for logs and result files, e.g. "linux-source-7.2 7.2.13-1". */
  source: string;
  flavour: KernelFlavour | null;
  /** Seconds spent building in this run (0 when cached or given). */
  buildSeconds: number;
  /** CPU seconds (user + system) of every process of that build (0 when cached or given): printed beside
   *  the wall time and the load average, so a build timed on a busy machine can be told for what it is. */
  buildCpuSeconds: number;
  cached: boolean;
}

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures/kernel');

/**
 * The fragments that apply to a tree, chosen by what its Kconfig offers (not
 * by version number), each line of each checked against the final .config;
 * then `extra`, names of fragments in fixtures/kernel/ that the profiles of
 * the run ask for (lib/vm/profiles.ts kernelFragments), last so they win.
 */
export function fragmentsFor(flavour: KernelFlavour, treeDir: string, extra: readonly string[] = []): string[] {
  const fragments = [join(FIXTURES, 'base.config')];
  const mmKconfig = join(treeDir, 'mm/Kconfig');
  if (existsSync(mmKconfig) && /^config SLOB$/m.test(readFileSync(mmKconfig, 'utf8'))) fragments.push(join(FIXTURES, 'slub.config'));
  const procKconfig = join(treeDir, 'fs/proc/Kconfig');
  if (existsSync(procKconfig) && /^config SYSCTL$/m.test(readFileSync(procKconfig, 'utf8'))) fragments.push(join(FIXTURES, 'sysctl.config'));
  const p9Kconfig = join(treeDir, 'fs/9p/Kconfig');
  if (existsSync(p9Kconfig) && /^config 9P_FS\n(?:\t.*\n)*?\tdepends on INET\b/m.test(readFileSync(p9Kconfig, 'utf8'))) fragments.push(join(FIXTURES, '9p-inet.config'));
  const iommufdKconfig = join(treeDir, 'drivers/iommu/iommufd/Kconfig');
  // 6.1 (Debian 12's own kernel) predates iommufd (6.2): VFIO alone, and the iommufd suites skip.
  if (existsSync(iommufdKconfig)) {
    fragments.push(join(FIXTURES, 'iommufd.config'));
    // Since the mock domain moved onto the generic page table code, IOMMUFD_TEST depends on IOMMU_PT_AMDV1.
    if (/\bIOMMU_PT_AMDV1\b/.test(readFileSync(iommufdKconfig, 'utf8'))) fragments.push(join(FIXTURES, 'iommufd-generic-pt.config'));
  }
  if (flavour === 'debug') fragments.push(join(FIXTURES, 'debug.config'));
  for (const name of [...new Set(extra)].sort()) {
    const path = join(FIXTURES, name);
    if (!existsSync(path)) throw new Error(`no kernel config fragment ${path}`);
    fragments.push(path);
  }
  return fragments;
}

function compilerId(): string {
  const r = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new SetupError('no C compiler (gcc) to build the guest kernel', `apt-get install ${KERNEL_BUILD_PACKAGES.join(' ')}`);
  return r.stdout.split('\n')[0] ?? '';
}

/** A fresh build needs about 1.5 GB (source tree and objects); say so before starting rather than failing midway. */
function checkDiskSpace(dir: string, neededBytes = 2e9): void {
  const fs = statfsSync(dir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (free < neededBytes) {
    throw new SetupError(
      `only ${(free / 1e9).toFixed(1)} GB free under ${dir}; building the guest kernel needs about ${(neededBytes / 1e9).toFixed(1)} GB`,
      'free some disk space, or set IOMMUFD_CONFORMANCE_CACHE to a folder on a larger disk',
    );
  }
}

function checkBuildTools(log: (line: string) => void): void {
  ensurePackages(KERNEL_BUILD_PACKAGES, 'building the guest kernel', log);
}

/** Options as `NAME -> value` ("y", "m", a string, or "n" for "is not set"). */
export function parseConfig(text: string): Map<string, string> {
  const options = new Map<string, string>();
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (set) options.set(set[1]!, set[2]!);
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (unset) options.set(unset[1]!, 'n');
  }
  return options;
}

/** Lines of the fragments that the final .config did not keep (a dependency is missing). */
export function unmetOptions(fragments: string[], finalConfig: string): string[] {
  const final = parseConfig(finalConfig);
  // Merged as merge_config.sh merges them: a later fragment's line overrides an earlier one's.
  const wanted = new Map<string, { value: string; fragment: string }>();
  for (const fragment of fragments) {
    for (const [name, value] of parseConfig(readFileSync(fragment, 'utf8'))) wanted.set(name, { value, fragment });
  }
  const unmet: string[] = [];
  for (const [name, { value }] of wanted) {
    const got = final.get(name) ?? 'n';
    if (got !== value) unmet.push(`${name}: wanted ${value}, got ${got}`);
  }
  return unmet;
}

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
}

/** Runs the long `make`, printing how many objects are done every few seconds. */
function makeWithProgress(args: string[], cwd: string, expectedObjects: number, log: (line: string) => void): Promise<number> {
  return new Promise((resolveDone, reject) => {
    const started = Date.now();
    const child = spawn('make', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let objects = 0;
    let tail = '';
    const errors: string[] = [];
    const count = (chunk: Buffer) => {
      const text = tail + chunk.toString();
      const lines = text.split('\n');
      tail = lines.pop() ?? '';
      for (const line of lines) if (/^\s+(CC|AS|LD|AR)\s/.test(line)) objects++;
    };
    child.stdout.on('data', count);
    child.stderr.on('data', (chunk: Buffer) => {
      errors.push(chunk.toString());
      if (errors.length > 200) errors.shift();
    });
    const every = process.stderr.isTTY ? 3000 : 20000;
    const timer = setInterval(() => {
      const s = Math.round((Date.now() - started) / 1000);
      const pct = expectedObjects > 0 ? ` (~${Math.min(99, Math.round((100 * objects) / expectedObjects))}%)` : '';
      log(`kernel build: ${objects} objects${pct}, ${s} s`);
    }, every);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      if (code === 0) resolveDone(objects);
      else reject(new Error(`kernel build failed (make exit ${code}):\n${errors.join('').split('\n').slice(-40).join('\n')}`));
    });
  });
}

export interface BuildOptions {
  flavour?: KernelFlavour;
  /** Which Debian linux-source-<series> to build (default 6.12). */
  series?: KernelSeries;
  /** A Linux tree to build instead of Debian's linux-source. */
  sourceDir?: string;
  /** A ready bzImage: no build at all. */
  bzImage?: string;
  /** Fragments (names in fixtures/kernel/) the run's profiles need beyond the default ones. */
  extraFragments?: readonly string[];
  log?: (line: string) => void;
}

function configure(src: KernelSource, build: string, fragments: string[]): void {
  run('make', ['-s', `O=${build}`, 'tinyconfig'], src.dir);
  run(join(src.dir, 'scripts/kconfig/merge_config.sh'), ['-m', '-O', build, join(build, '.config'), ...fragments], src.dir);
  run('make', ['-s', `O=${build}`, 'olddefconfig'], src.dir);
}

function checkFragments(fragments: string[], build: string): void {
  const unmet = unmetOptions(fragments, readFileSync(join(build, '.config'), 'utf8'));
  if (unmet.length > 0) throw new Error(`kernel config lost options from fixtures/kernel (a dependency is missing):\n  ${unmet.join('\n  ')}`);
}

/** Copies vmlinux and .config out of the build folder; vmlinux last, by rename, so a half copy never looks built. */
function publish(build: string, image: string, config: string): void {
  copyFileSync(join(build, '.config'), `${config}.tmp`);
  renameSync(`${config}.tmp`, config);
  copyFileSync(join(build, 'vmlinux'), `${image}.tmp`);
  renameSync(`${image}.tmp`, image);
}

/**
 * CPU seconds (user + system) used so far by this process's children that have been waited for,
 * their own waited-for children included (/proc/self/stat's cutime and cstime): taken around a
 * build, the CPU time of make and everything it ran.
 */
export function childrenCpuSeconds(stat = readFileSync('/proc/self/stat', 'utf8')): number {
  // Fields after the command name's closing parenthesis: state is field 3, cutime 16, cstime 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[13]) + Number(fields[14]);
  if (!Number.isFinite(ticks)) throw new Error(`cannot read cutime/cstime from /proc/self/stat: ${stat.slice(0, 80)}`);
  return ticks / CLOCK_TICKS_PER_SECOND;
}
/** USER_HZ: 100 on every Linux architecture this runs on (the ABI fixes it for /proc). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Where a build of this source, flavour, compiler and config lives in the cache: `id` (the folder's name
 * under kernel/, also what `iommufd-conformance cache-key` prints for a CI cache) and the folder.
 * A user tree has one entry per tree and flavour, rebuilt incrementally; a package version one per
 * fragment set.
 */
export async function guestKernelCacheEntry(opts: {
  flavour: KernelFlavour;
  sourceDir?: string;
  series?: KernelSeries;
  extraFragments?: readonly string[];
  log?: (line: string) => void;
}): Promise<{
  id: string;
  dir: string;
  src: KernelSource;
  fragments: string[];
  key: string;
  userTree: boolean;
}> {
  const src: KernelSource = await ensureKernelSource({ tree: opts.sourceDir, series: opts.series, log: opts.log });
  const fragments = fragmentsFor(opts.flavour, src.dir, opts.extraFragments);
  const fragmentText = fragments.map((f) => readFileSync(f, 'utf8')).join('\n');
  const key = createHash('sha256').update(src.key).update(opts.flavour).update(compilerId()).update(fragmentText).digest('hex').slice(0, 16);
  const userTree = src.origin.kind === 'tree';
  // A user tree's one entry per flavour would be reconfigured back and forth between runs with and without
  // the extra fragments: those get their own entry.
  const extras = [...new Set(opts.extraFragments ?? [])].sort().map((f) => f.replace(/\.config$/, ''));
  const id = userTree ? [`${src.key}-${opts.flavour}`, ...extras].join('+') : `${src.version}-${opts.flavour}-${key}`;
  // Named, not created: `cache-key` must leave no empty entry behind.
  return { id, dir: join(cacheDir('kernel'), id), src, fragments, key, userTree };
}

export async function ensureGuestKernel(opts: BuildOptions = {}): Promise<GuestKernel> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (opts.bzImage) {
    if (!existsSync(opts.bzImage)) throw new SetupError(`kernel image ${opts.bzImage} does not exist`, 'pass the path of a bzImage built with the fragments in fixtures/kernel/');
    const path = resolve(opts.bzImage);
    return { image: path, config: null, version: 'user-supplied', origin: { kind: 'image', path }, source: `bzImage ${path}`, flavour: null, buildSeconds: 0, buildCpuSeconds: 0, cached: true };
  }
  const flavour = opts.flavour ?? 'base';
  const { src, fragments, key, userTree, id: entry, dir } = await guestKernelCacheEntry({ flavour, sourceDir: opts.sourceDir, series: opts.series, extraFragments: opts.extraFragments, log });
  const source = describeOrigin(src.origin);
  log(`kernel source: ${source}, Linux ${src.version}`);
  mkdirSync(dir, { recursive: true });
  const image = join(dir, 'vmlinux');
  const config = join(dir, 'config');
  const result = (buildSeconds: number, buildCpuSeconds: number, cached: boolean): GuestKernel => ({ image, config, version: src.version, origin: src.origin, source, flavour, buildSeconds, buildCpuSeconds, cached });
  if (!userTree && existsSync(image)) return result(0, 0, true);
  return withLock(join(cacheDir('kernel'), `${entry}.lock`), `the ${src.version} (${flavour}) kernel build`, log, async () => {
    if (!userTree && existsSync(image)) return result(0, 0, true); // built by another run while we waited
    checkBuildTools(log);
    checkDiskSpace(dir);
    const build = join(dir, 'build');
    const started = Date.now();
    const cpuBefore = childrenCpuSeconds();
    if (userTree) {
      // Reconfigure only when the fragments changed; olddefconfig always (the tree's Kconfig may have changed).
      const stamp = join(build, '.iommufd-conformance-fragments');
      mkdirSync(build, { recursive: true });
      if (!existsSync(join(build, '.config')) || !existsSync(stamp) || readFileSync(stamp, 'utf8') !== key) {
        configure(src, build, fragments);
        writeFileSync(stamp, key);
      } else {
        run('make', ['-s', `O=${build}`, 'olddefconfig'], src.dir);
      }
      log(`building ${source} (${flavour}) in ${build}: make decides what changed`);
    } else {
      // A build folder without a published image is a killed run's: start clean.
      rmSync(build, { recursive: true, force: true });
      mkdirSync(build, { recursive: true });
      log(`building guest kernel ${src.version} (${flavour}) from ${source} in ${build}`);
      configure(src, build, fragments);
    }
    checkFragments(fragments, build);
    const countFile = join(cacheDir('kernel'), `objects-${src.version}-${flavour}.txt`);
    const expected = existsSync(countFile) ? Number(readFileSync(countFile, 'utf8')) : 0;
    const jobs = String(availableParallelism() + 1);
    const objects = await makeWithProgress([`O=${build}`, `-j${jobs}`, 'vmlinux'], src.dir, expected, log);
    if (!userTree) writeFileSync(countFile, String(objects));
    publish(build, image, config);
    const buildSeconds = (Date.now() - started) / 1000;
    const buildCpuSeconds = childrenCpuSeconds() - cpuBefore;
    log(
      `kernel ${userTree ? `rebuilt (${objects} objects compiled)` : 'built'} in ${buildSeconds.toFixed(0)} s ` +
        `(CPU ${buildCpuSeconds.toFixed(0)} s, load average ${loadavg()[0]!.toFixed(1)} at the end; vmlinux ${(statSync(image).size / 1e6).toFixed(1)} MB)`,
    );
    return result(buildSeconds, buildCpuSeconds, false);
  });
}
