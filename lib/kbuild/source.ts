// The kernel source tree the project builds from: Debian's
// linux-source-<series> package by default (fetched through the tool's own apt
// configuration, lib/kbuild/debian-archive.ts), or a tree the user names.
// Extracted once into the cache, keyed by the package's version, under a lock
// per entry, into a temporary folder renamed into place when complete.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensurePackages, KERNEL_HEADERS_PACKAGES } from './apt.ts';
import { cacheDir } from './cache.ts';
import { PrivateApt } from './debian-archive.ts';
import { withLock } from './lock.ts';
import { DEFAULT_KERNEL_SERIES, sourcePackageOf, type KernelSeries } from './series.ts';
import { SetupError } from './setup-error.ts';

export { SetupError };

export type KernelOrigin =
  | { kind: 'debian'; package: string; packageVersion: string }
  | { kind: 'tree'; path: string; describe: string };

export interface KernelSource {
  /** Root of the tree (holds the top-level Makefile). */
  dir: string;
  /** VERSION.PATCHLEVEL.SUBLEVEL from the Makefile, e.g. "6.12.117". */
  version: string;
  /** What the cache keys on: the Debian package version, or the tree's path. */
  key: string;
  origin: KernelOrigin;
}

export interface SourceOptions {
  /** A Linux tree to use instead of Debian's package. */
  tree?: string;
  /** Which linux-source-<series> (default 6.12). */
  series?: KernelSeries;
  log?: (line: string) => void;
}

/** One line naming the source: the package and its exact version, or the tree and its git state. */
export function describeOrigin(origin: KernelOrigin): string {
  return origin.kind === 'debian' ? `${origin.package} ${origin.packageVersion}` : `tree ${origin.path} (${origin.describe})`;
}

export function kernelVersionOf(dir: string): string {
  const makefile = readFileSync(join(dir, 'Makefile'), 'utf8');
  const get = (name: string) => new RegExp(`^${name}[ \\t]*=[ \\t]*(\\S*)`, 'm').exec(makefile)?.[1] ?? '';
  return `${get('VERSION')}.${get('PATCHLEVEL')}.${get('SUBLEVEL')}${get('EXTRAVERSION')}`;
}

/** `git describe --dirty` of a tree, or why there is none. */
export function gitDescribe(dir: string): string {
  const r = spawnSync('git', ['-C', dir, 'describe', '--always', '--dirty', '--tags'], { encoding: 'utf8' });
  if (r.error) return 'git is not installed';
  if (r.status !== 0) return 'not a git tree';
  return `git describe: ${r.stdout.trim()}`;
}

const PACKAGE_FILE = '.package';

/** The newest cached tree of `pkg` (used when the archive cannot be reached). */
function cachedTreeOf(pkg: string): { dir: string; packageVersion: string } | null {
  const root = cacheDir('src');
  const found: { dir: string; packageVersion: string }[] = [];
  for (const name of readdirSync(root)) {
    const f = join(root, name, PACKAGE_FILE);
    if (!existsSync(f)) continue;
    const [p, v] = readFileSync(f, 'utf8').trim().split(' ');
    if (p === pkg && v) found.push({ dir: join(root, name), packageVersion: v });
  }
  found.sort((a, b) => (spawnSync('dpkg', ['--compare-versions', a.packageVersion, 'gt', b.packageVersion]).status === 0 ? -1 : 1));
  return found[0] ?? null;
}

/**
 * The Debian trees already extracted in the cache, newest version per
 * package: the kernels in use on this machine (nothing is fetched).
 */
export function cachedDebianSources(): KernelSource[] {
  const root = cacheDir('src');
  const newest = new Map<string, KernelSource>();
  for (const name of readdirSync(root).sort()) {
    const f = join(root, name, PACKAGE_FILE);
    if (!existsSync(f) || !existsSync(join(root, name, '.extracted'))) continue;
    const [pkg, packageVersion] = readFileSync(f, 'utf8').trim().split(' ');
    if (!pkg || !packageVersion) continue;
    const have = newest.get(pkg);
    if (have && have.origin.kind === 'debian' && spawnSync('dpkg', ['--compare-versions', packageVersion, 'le', have.origin.packageVersion]).status === 0) continue;
    const dir = join(root, name);
    newest.set(pkg, { dir, version: kernelVersionOf(dir), key: name, origin: { kind: 'debian', package: pkg, packageVersion } });
  }
  return [...newest.values()];
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function debianSource(series: KernelSeries, log: (line: string) => void): Promise<KernelSource> {
  const pkg = sourcePackageOf(series);
  const apt = new PrivateApt(log);
  let packageVersion: string | null = null;
  try {
    await apt.update();
    packageVersion = apt.candidate(pkg);
  } catch (err) {
    const cached = cachedTreeOf(pkg);
    if (!(err instanceof SetupError) || !cached) throw err;
    log(`${err.message.split('\n')[0]}; using the cached ${pkg} ${cached.packageVersion}`);
    packageVersion = cached.packageVersion;
  }
  if (!packageVersion) {
    const carried = apt.packageNames('linux-source-').filter((n) => /^linux-source-\d+\.\d+$/.test(n)).map((n) => n.slice('linux-source-'.length));
    throw new SetupError(
      `Debian's archive (${apt.sourcesList}) does not carry ${pkg}; it carries linux-source for ${carried.length > 0 ? carried.join(', ') : 'no series at all'}`,
      `use --kernel-version with one of those, or --kernel-src with a Linux ${series} tree`,
    );
  }
  const key = `debian-${packageVersion.replace(/[^A-Za-z0-9.+-]+/g, '_')}`;
  const srcRoot = cacheDir('src');
  const dir = join(srcRoot, key);
  const done = () => existsSync(join(dir, '.extracted'));
  if (!done()) {
    await withLock(join(srcRoot, `${key}.lock`), `the ${pkg} source`, log, () => {
      if (done()) return; // another run extracted it while we waited
      // Download and extract beside the final place, then rename: a killed run leaves no half tree behind.
      const tmp = mkdtempSync(join(srcRoot, `.extract-${key}-`));
      try {
        const deb = apt.download(pkg, packageVersion!, tmp);
        const tree = join(tmp, 'tree');
        log(`extracting ${pkg} ${packageVersion} into ${dir}`);
        const tarball = `./usr/src/${pkg}.tar.xz`;
        const r = spawnSync(
          'bash',
          ['-c', `set -eo pipefail; mkdir ${shellQuote(tree)}; dpkg-deb --fsys-tarfile ${shellQuote(deb)} | tar -xO ${tarball} | tar -xJ -C ${shellQuote(tree)} --strip-components=1`],
          { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
        );
        if (r.status !== 0) throw new SetupError(`unpacking ${deb} failed: ${r.stderr.trim()}`, 'check the free disk space under the cache, then run again');
        writeFileSync(join(tree, PACKAGE_FILE), `${pkg} ${packageVersion}\n`);
        writeFileSync(join(tree, '.extracted'), '');
        rmSync(dir, { recursive: true, force: true });
        renameSync(tree, dir);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
  return { dir, version: kernelVersionOf(dir), key, origin: { kind: 'debian', package: pkg, packageVersion } };
}

/**
 * Returns the kernel tree to use: `tree` when given, else Debian's
 * linux-source-<series> extracted into the cache.
 */
export async function ensureKernelSource(opts: SourceOptions = {}): Promise<KernelSource> {
  const log = opts.log ?? (() => {});
  if (opts.tree) {
    const tree = resolve(opts.tree);
    if (!existsSync(join(tree, 'Makefile')) || !existsSync(join(tree, 'drivers/iommu'))) {
      throw new SetupError(`${tree} is not a Linux source tree`, 'pass the top of a Linux tree (the folder with the top-level Makefile)');
    }
    const version = kernelVersionOf(tree);
    return { dir: tree, version, key: `tree-${tree.replace(/[^A-Za-z0-9]+/g, '_')}`, origin: { kind: 'tree', path: tree, describe: gitDescribe(tree) } };
  }
  return debianSource(opts.series ?? DEFAULT_KERNEL_SERIES, log);
}

/**
 * `make headers_install` of the tree, cached: returns the folder holding
 * include/linux/iommufd.h and include/linux/vfio.h. A user tree's headers are
 * installed again on every call (the tree may have changed).
 */
export async function ensureKernelHeaders(src: KernelSource, log: (line: string) => void = () => {}): Promise<string> {
  const root = cacheDir('headers');
  const dir = join(root, src.key);
  const done = () => src.origin.kind === 'debian' && existsSync(join(dir, '.installed'));
  if (!done()) {
    await withLock(join(root, `${src.key}.lock`), `the ${src.version} headers`, log, () => {
      if (done()) return;
      ensurePackages(KERNEL_HEADERS_PACKAGES, `installing the ${src.version} kernel headers`, log);
      log(`make headers_install for ${src.version}`);
      const tmp = mkdtempSync(join(root, `.install-${src.key}-`));
      try {
        // O= keeps the shared source tree clean (kbuild writes scripts/ objects there).
        const obj = join(cacheDir('headers-obj'), src.key);
        const r = spawnSync('make', ['-s', '-C', src.dir, `O=${obj}`, 'ARCH=x86_64', `INSTALL_HDR_PATH=${tmp}`, 'headers_install'], {
          stdio: ['ignore', 'ignore', 'pipe'],
          encoding: 'utf8',
        });
        if (r.status !== 0) throw new Error(`make headers_install in ${src.dir} failed:\n${r.stderr}`);
        writeFileSync(join(tmp, '.installed'), '');
        rmSync(dir, { recursive: true, force: true });
        renameSync(tmp, dir);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
  return join(dir, 'include');
}
