// Debian packages the VM needs, installed on demand when running as root
// (as CI does); otherwise a SetupError that names the exact command.
import { spawnSync } from 'node:child_process';
import { isRoot } from '../sys/credentials.ts';
import { SetupError } from './setup-error.ts';

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
