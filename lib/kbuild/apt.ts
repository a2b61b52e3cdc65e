// Debian packages the VM needs, installed on demand when running as root
// (as CI does); otherwise a SetupError that names the exact command.
import { spawnSync } from 'node:child_process';
import { isRoot } from '../sys/credentials.ts';
import { SetupError } from './setup-error.ts';

/** What building a guest kernel needs (lib/vm/kernel.ts), and `doctor` checks. */
export const KERNEL_BUILD_PACKAGES = ['make', 'gcc', 'bc', 'flex', 'bison', 'libelf-dev', 'libssl-dev'];
/**
 * What `make headers_install` needs (lib/kbuild/source.ts: the layout check and the kselftest
 * builds read installed headers): gcc for its host programs, and rsync, which the top Makefile's
 * cmd_headers_install copies the headers with (`rsync -mrl --include='*\.h' ...`, 6.1 to 7.x).
 */
export const KERNEL_HEADERS_PACKAGES = ['make', 'gcc', 'rsync'];

export function packageInstalled(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** Installs the missing packages with apt-get (root), or throws a SetupError saying how. */
export function ensurePackages(packages: string[], why: string, log: (line: string) => void = () => {}): void {
  const missing = packages.filter((p) => !packageInstalled(p));
  if (missing.length === 0) return;
  const fix = `apt-get install ${missing.join(' ')}`;
  if (!isRoot()) throw new SetupError(`${why} needs ${missing.join(', ')}, and installing needs root`, `sudo ${fix}`);
  if (spawnSync('sh', ['-c', 'command -v apt-get']).status !== 0) throw new SetupError(`${why} needs ${missing.join(', ')}`, 'install them with your distribution\'s package manager');
  log(`installing ${missing.join(' ')} with apt-get (${why})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (!install()) throw new SetupError(`apt-get could not install ${missing.join(', ')}`, `apt-get update && ${fix}`);
  }
}
