// Builds a kernel tree's own selftests, tools/testing/selftests/iommu and
// .../vfio, with the tree's own Makefiles (lib.mk's OUTPUT=, KHDR_INCLUDES=
// and USERCFLAGS= hooks) against that tree's installed uAPI headers, plus the
// shims the tree needs (lib/kselftest/shims.ts). Cached under the kernel
// cache, keyed by the tree's key (as the kernel build and its headers are),
// the shims and the compiler; built into a temporary folder and renamed into
// place, so a failed build leaves nothing behind.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePackages } from '../kbuild/apt.ts';
import { cacheDir } from '../kbuild/cache.ts';
import { shimsNeeded, type Shim } from './shims.ts';

export type KselftestSuite = 'iommu' | 'vfio';

export interface BuiltSuite {
  suite: KselftestSuite;
  /** Folder holding the binaries. */
  dir: string;
  /** The test programs, in the Makefile's order (TEST_GEN_PROGS). */
  programs: string[];
  shims: Shim[];
  cached: boolean;
}

export function suiteDir(treeDir: string, suite: KselftestSuite): string {
  return join(treeDir, 'tools/testing/selftests', suite);
}

/** Whether the tree has this suite (6.12 has no tools/testing/selftests/vfio). */
export function treeHasSuite(treeDir: string, suite: KselftestSuite): boolean {
  return existsSync(join(suiteDir(treeDir, suite), 'Makefile'));
}

/** TEST_GEN_PROGS of the suite's Makefile, in order. */
export function testPrograms(makefile: string): string[] {
  return [...makefile.matchAll(/^TEST_GEN_PROGS\s*\+?:?=\s*(\S+)\s*$/gm)].map((m) => m[1]!);
}

/** The Debian packages the suite links against, read from its Makefiles (-lcap: libcap-dev, -luuid: uuid-dev). */
export function libraryPackages(treeDir: string, suite: KselftestSuite): string[] {
  const dir = suiteDir(treeDir, suite);
  const text = ['Makefile', 'lib/libvfio.mk'].map((f) => join(dir, f)).filter(existsSync).map((f) => readFileSync(f, 'utf8')).join('\n');
  return [...(/-lcap\b/.test(text) ? ['libcap-dev'] : []), ...(/-luuid\b/.test(text) ? ['uuid-dev'] : [])];
}

function compilerVersion(): string {
  const r = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0]! : 'gcc missing';
}

export function buildSuite(opts: { treeDir: string; treeKey: string; includeDir: string; suite: KselftestSuite; log?: (line: string) => void }): BuiltSuite {
  const { treeDir, includeDir, suite } = opts;
  const log = opts.log ?? (() => {});
  const source = suiteDir(treeDir, suite);
  ensurePackages(libraryPackages(treeDir, suite), `building the kernel's ${suite} selftests`, log);
  const shims = shimsNeeded(treeDir, includeDir, suite);
  const programs = testPrograms(readFileSync(join(source, 'Makefile'), 'utf8'));
  const key = createHash('sha256')
    .update([opts.treeKey, includeDir, compilerVersion(), ...shims.map((s) => `${s.name} ${s.flags.join(' ')} ${s.header ?? ''}`)].join('\n'))
    .digest('hex')
    .slice(0, 12);
  const root = cacheDir('kselftest');
  const dir = join(root, `${opts.treeKey}-${suite}-${key}`);
  // A user tree may have changed: rebuilt every time, like its headers.
  const reusable = opts.treeKey.startsWith('debian-') && existsSync(join(dir, '.built'));
  if (reusable) return { suite, dir, programs, shims, cached: true };
  const tmp = mkdtempSync(join(root, `.build-${suite}-`));
  try {
    const userFlags = shims.flatMap((s) => s.flags);
    for (const s of shims.filter((x) => x.header)) {
      const header = join(tmp, `shim-${s.name}.h`);
      writeFileSync(header, `/* ${s.why} */\n${s.header}`);
      userFlags.push('-include', header);
    }
    for (const s of shims) log(`kselftest ${suite}: shim ${s.name}: ${s.why}`);
    const out = join(tmp, 'out');
    mkdirSync(out);
    const r = spawnSync(
      'make',
      ['-s', '-C', source, `OUTPUT=${out}`, `KHDR_INCLUDES=-isystem ${includeDir}`, `USERCFLAGS=${userFlags.join(' ')}`, `-j2`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (r.status !== 0) throw new Error(`building ${source} against ${includeDir} failed:\n${r.stdout}\n${r.stderr}`);
    for (const p of programs) if (!existsSync(join(out, p))) throw new Error(`building ${source} made no ${p}`);
    // The shim headers stay with the binaries: the build they explain.
    spawnSync('sh', ['-c', `mv ${tmp}/shim-*.h ${out}/ 2>/dev/null; true`]);
    writeFileSync(join(out, '.built'), `${shims.map((s) => s.name).join(' ')}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(out, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { suite, dir, programs, shims, cached: false };
}
