// Builds the guest kernel: `make tinyconfig` plus the fragments in
// fixtures/kernel/, out of tree, cached by source version, fragments and
// compiler. A cached kernel costs nothing; a fresh one prints its progress.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePackages } from '../kbuild/apt.ts';
import { cacheDir } from '../kbuild/cache.ts';
import { ensureKernelSource, SetupError, type KernelSource } from '../kbuild/source.ts';

export type KernelFlavour = 'base' | 'debug';

export interface GuestKernel {
  bzImage: string;
  /** The .config the image was built with (null for a user-given bzImage). */
  config: string | null;
  version: string;
  /** The kernel source's Debian package version (null for a user's tree or bzImage). */
  packageVersion: string | null;
  /** Seconds spent building in this run (0 when cached or given). */
  buildSeconds: number;
  cached: boolean;
}

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures/kernel');

export function fragmentsFor(flavour: KernelFlavour): string[] {
  return flavour === 'debug' ? [join(FIXTURES, 'base.config'), join(FIXTURES, 'debug.config')] : [join(FIXTURES, 'base.config')];
}

function compilerId(): string {
  const r = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new SetupError('no C compiler (gcc) to build the guest kernel', 'apt-get install gcc make bc flex bison libelf-dev libssl-dev');
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
  ensurePackages(['make', 'gcc', 'bc', 'flex', 'bison', 'libelf-dev', 'libssl-dev'], 'building the guest kernel', log);
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
  const unmet: string[] = [];
  for (const fragment of fragments) {
    for (const [name, wanted] of parseConfig(readFileSync(fragment, 'utf8'))) {
      const got = final.get(name) ?? 'n';
      if (got !== wanted) unmet.push(`${name}: wanted ${wanted}, got ${got}`);
    }
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
  /** A Linux tree to build instead of Debian's linux-source. */
  sourceDir?: string;
  /** A ready bzImage: no build at all. */
  bzImage?: string;
  log?: (line: string) => void;
}

/**
 * Where a build of this source, flavour, compiler and config lives in the cache: `id` (the folder's name
 * under kernel/, also what `iommufd-conformance cache-key` prints for a CI cache) and the folder.
 */
export function guestKernelCacheEntry(opts: { flavour: KernelFlavour; sourceDir?: string; log?: (line: string) => void }): { id: string; dir: string; src: KernelSource; fragments: string[] } {
  const src: KernelSource = ensureKernelSource(opts.sourceDir, opts.log);
  const fragments = fragmentsFor(opts.flavour);
  const key = createHash('sha256')
    .update(src.key)
    .update(opts.flavour)
    .update(compilerId())
    .update(fragments.map((f) => readFileSync(f, 'utf8')).join('\n'))
    .digest('hex')
    .slice(0, 16);
  const id = `${src.version}-${opts.flavour}-${key}`;
  // Named, not created: `cache-key` must leave no empty entry behind.
  return { id, dir: join(cacheDir('kernel'), id), src, fragments };
}

export async function ensureGuestKernel(opts: BuildOptions = {}): Promise<GuestKernel> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (opts.bzImage) {
    if (!existsSync(opts.bzImage)) throw new SetupError(`kernel image ${opts.bzImage} does not exist`, 'pass the path of a bzImage built with fixtures/kernel/base.config');
    return { bzImage: resolve(opts.bzImage), config: null, version: 'user-supplied', packageVersion: null, buildSeconds: 0, cached: true };
  }
  const flavour = opts.flavour ?? 'base';
  const { src, fragments, dir } = guestKernelCacheEntry({ flavour, sourceDir: opts.sourceDir, log });
  mkdirSync(dir, { recursive: true });
  const image = join(dir, 'bzImage');
  const config = join(dir, 'config');
  if (existsSync(image) && existsSync(config)) {
    return { bzImage: image, config, version: src.version, packageVersion: src.packageVersion, buildSeconds: 0, cached: true };
  }
  checkBuildTools(log);
  checkDiskSpace(dir);
  const build = join(dir, 'build');
  mkdirSync(build, { recursive: true });
  const started = Date.now();
  log(`building guest kernel ${src.version} (${flavour}) in ${build}`);
  run('make', ['-s', `O=${build}`, 'tinyconfig'], src.dir);
  run(join(src.dir, 'scripts/kconfig/merge_config.sh'), ['-m', '-O', build, join(build, '.config'), ...fragments], src.dir);
  run('make', ['-s', `O=${build}`, 'olddefconfig'], src.dir);
  const unmet = unmetOptions(fragments, readFileSync(join(build, '.config'), 'utf8'));
  if (unmet.length > 0) throw new Error(`kernel config lost options from fixtures/kernel (a dependency is missing):\n  ${unmet.join('\n  ')}`);
  const countFile = join(cacheDir('kernel'), `objects-${flavour}.txt`);
  const expected = existsSync(countFile) ? Number(readFileSync(countFile, 'utf8')) : 0;
  const jobs = String(availableParallelism() + 1);
  const objects = await makeWithProgress([`O=${build}`, `-j${jobs}`, 'bzImage'], src.dir, expected, log);
  writeFileSync(countFile, String(objects));
  // Copy then rename, so a half-written image never looks cached.
  copyFileSync(join(build, 'arch/x86/boot/bzImage'), `${image}.tmp`);
  copyFileSync(join(build, '.config'), config);
  renameSync(`${image}.tmp`, image);
  const buildSeconds = (Date.now() - started) / 1000;
  log(`kernel built in ${buildSeconds.toFixed(0)} s (${(statSync(image).size / 1e6).toFixed(1)} MB)`);
  return { bzImage: image, config, version: src.version, packageVersion: src.packageVersion, buildSeconds, cached: false };
}
