// The kernel source tree the project builds from: Debian's linux-source
// package by default (installed with apt when missing and running as root),
// or a tree the user names. Extracted once into the cache, keyed by the
// package's version.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePackages } from './apt.ts';
import { cacheDir } from './cache.ts';
import { SetupError } from './setup-error.ts';

export { SetupError };

export const DEBIAN_SOURCE_PACKAGE = 'linux-source-6.12';
const TARBALL = `/usr/src/${DEBIAN_SOURCE_PACKAGE}.tar.xz`;

export interface KernelSource {
  /** Root of the tree (holds the top-level Makefile). */
  dir: string;
  /** VERSION.PATCHLEVEL.SUBLEVEL from the Makefile, e.g. "6.12.117". */
  version: string;
  /** What the cache keys on: the Debian package version, or the tree's path and version. */
  key: string;
  /** The Debian package's version, when the tree is Debian's linux-source (null for a user's tree). */
  packageVersion: string | null;
}

export function kernelVersionOf(dir: string): string {
  const makefile = readFileSync(join(dir, 'Makefile'), 'utf8');
  const get = (name: string) => new RegExp(`^${name}[ \\t]*=[ \\t]*(\\S*)`, 'm').exec(makefile)?.[1] ?? '';
  return `${get('VERSION')}.${get('PATCHLEVEL')}.${get('SUBLEVEL')}${get('EXTRAVERSION')}`;
}

function debianPackageVersion(pkg: string): string | null {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' && existsSync(TARBALL) ? r.stdout.trim() : null;
}

/**
 * Returns the kernel tree to use: `userTree` when given, else Debian's
 * linux-source-6.12 extracted into the cache.
 */
export function ensureKernelSource(userTree?: string, log: (line: string) => void = () => {}): KernelSource {
  if (userTree) {
    if (!existsSync(join(userTree, 'Makefile')) || !existsSync(join(userTree, 'drivers/iommu/iommufd'))) {
      throw new SetupError(`${userTree} is not a Linux source tree with iommufd`, 'pass the top of a Linux >= 6.2 tree');
    }
    const version = kernelVersionOf(userTree);
    return { dir: userTree, version, key: `tree-${version}-${userTree.replace(/[^A-Za-z0-9]+/g, '_')}`, packageVersion: null };
  }
  let pkgVersion = debianPackageVersion(DEBIAN_SOURCE_PACKAGE);
  if (!pkgVersion) {
    ensurePackages([DEBIAN_SOURCE_PACKAGE], 'building the guest kernel', log);
    pkgVersion = debianPackageVersion(DEBIAN_SOURCE_PACKAGE);
    if (!pkgVersion) throw new SetupError(`${DEBIAN_SOURCE_PACKAGE} is not installed`, `apt-get install ${DEBIAN_SOURCE_PACKAGE}`);
  }
  const key = `debian-${pkgVersion.replace(/[^A-Za-z0-9.+-]+/g, '_')}`;
  const srcRoot = cacheDir('src');
  const dir = join(srcRoot, key);
  if (!existsSync(join(dir, '.extracted'))) {
    log(`extracting ${TARBALL} into ${dir}`);
    // Extract beside the final place, then rename: a killed run leaves no half tree behind.
    const tmp = mkdtempSync(join(srcRoot, '.extract-'));
    try {
      execFileSync('tar', ['-xf', TARBALL, '-C', tmp, '--strip-components=1'], { stdio: 'inherit' });
      execFileSync('touch', [join(tmp, '.extracted')]);
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { dir, version: kernelVersionOf(dir), key, packageVersion: pkgVersion };
}

/**
 * `make headers_install` of the tree, cached: returns the folder holding
 * include/linux/iommufd.h and include/linux/vfio.h.
 */
export function ensureKernelHeaders(src: KernelSource, log: (line: string) => void = () => {}): string {
  const dir = join(cacheDir('headers'), src.key);
  if (!existsSync(join(dir, '.installed'))) {
    log(`make headers_install for ${src.version}`);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    try {
      // O= keeps the shared source tree clean (kbuild writes scripts/ objects there).
      const obj = join(cacheDir('headers-obj'), src.key);
      execFileSync('make', ['-s', '-C', src.dir, `O=${obj}`, 'ARCH=x86_64', `INSTALL_HDR_PATH=${tmp}`, 'headers_install'], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      execFileSync('touch', [join(tmp, '.installed')]);
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return join(dir, 'include');
}
