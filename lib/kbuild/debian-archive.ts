// Debian's linux-source-<series> packages, fetched with apt-get through a
// private apt configuration of the tool's own: its own sources list and its
// own state and cache folders under the tool's cache. The machine's apt
// sources are never changed and nothing is installed: the .deb is downloaded
// and unpacked into the cache. The archive is the one this machine's apt
// sources name; the suites are this release's (bookworm here), its security
// suite, sid and experimental, which carry 6.1, 6.12, 7.2 and 7.3-rc.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from '../sys/credentials.ts';
import { cacheDir } from './cache.ts';
import { withLock } from './lock.ts';
import { SetupError } from './setup-error.ts';

export interface AptSource {
  uri: string;
  suites: string[];
  signedBy?: string;
}

const DEFAULT_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
/** apt-get update again when the private lists are older than this. */
const LISTS_MAX_AGE_MS = 24 * 3600 * 1000;

/** The `deb` entries of one-line (.list) and deb822 (.sources) apt source files. */
export function parseAptSources(text: string, deb822: boolean): AptSource[] {
  const out: AptSource[] = [];
  if (!deb822) {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (!m) continue;
      const signedBy = /signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
      out.push({ uri: m[2]!, suites: [m[3]!], ...(signedBy ? { signedBy } : {}) });
    }
    return out;
  }
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1]!.toLowerCase(), m[2]!.trim());
    }
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    if ((fields.get('enabled') ?? 'yes') === 'no') continue;
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    const signedBy = fields.get('signed-by');
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) {
      out.push({ uri, suites, ...(signedBy && signedBy.startsWith('/') ? { signedBy } : {}) });
    }
  }
  return out;
}

export function machineAptSources(etc = '/etc/apt'): AptSource[] {
  const sources: AptSource[] = [];
  const read = (file: string, deb822: boolean) => {
    if (existsSync(file)) sources.push(...parseAptSources(readFileSync(file, 'utf8'), deb822));
  };
  read(join(etc, 'sources.list'), false);
  const parts = join(etc, 'sources.list.d');
  if (existsSync(parts)) {
    for (const name of readdirSync(parts).sort()) {
      if (name.endsWith('.list')) read(join(parts, name), false);
      else if (name.endsWith('.sources')) read(join(parts, name), true);
    }
  }
  return sources;
}

export function releaseCodename(): string {
  const osRelease = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
  return /^VERSION_CODENAME=(\S+)/m.exec(osRelease)?.[1]?.replace(/"/g, '') ?? 'bookworm';
}

/**
 * The private sources list: the release, its security suite, sid and
 * experimental, from the Debian archive the machine's sources already name.
 */
export function privateSourcesList(sources: AptSource[], codename: string): string {
  const debian = sources.find((s) => s.suites.some((x) => x === codename || x === 'sid' || x === 'unstable') && !s.suites.some((x) => x.endsWith('-security')));
  if (!debian) {
    throw new SetupError(
      `this machine's apt sources name no Debian archive for ${codename} (read /etc/apt/sources.list and sources.list.d/)`,
      `add a Debian archive for ${codename} to the apt sources, or pass --kernel-src with a Linux tree`,
    );
  }
  const security = sources.find((s) => s.suites.includes(`${codename}-security`));
  const key = (s: AptSource | undefined) => `signed-by=${s?.signedBy ?? DEFAULT_KEYRING}`;
  const securityUri = security?.uri ?? `${debian.uri.replace(/\/+$/, '')}-security`;
  return [
    `# written by iommufd-conformance: its own apt sources, used only with -o Dir::Etc::sourcelist`,
    `deb [${key(debian)}] ${debian.uri} ${codename} main`,
    `deb [${key(security ?? debian)}] ${securityUri} ${codename}-security main`,
    `deb [${key(debian)}] ${debian.uri} sid main`,
    `deb [${key(debian)}] ${debian.uri} experimental main`,
    '',
  ].join('\n');
}

export class PrivateApt {
  readonly root: string;
  readonly sourcesList: string;

  constructor(readonly log: (line: string) => void = () => {}) {
    this.root = cacheDir('apt');
    this.sourcesList = join(this.root, 'sources.list');
  }

  /** apt options that point every apt path that matters at our own folders. */
  options(): string[] {
    const o = [
      `Dir::Etc::sourcelist=${this.sourcesList}`,
      'Dir::Etc::sourceparts=/nonexistent',
      `Dir::State::lists=${join(this.root, 'lists')}`,
      `Dir::Cache=${join(this.root, 'cache')}`,
      // The machine's pins are about its own packages, not about which kernel we test.
      'Dir::Etc::preferences=/nonexistent',
      'Dir::Etc::preferencesparts=/nonexistent',
      // As root apt downloads as _apt, who cannot enter our cache folder (0700 in $HOME).
      ...(isRoot() ? ['APT::Sandbox::User=root'] : []),
    ];
    return o.flatMap((x) => ['-o', x]);
  }

  private apt(tool: 'apt-get' | 'apt-cache', args: string[], cwd?: string) {
    return spawnSync(tool, [...this.options(), ...args], { encoding: 'utf8', cwd, env: { ...process.env, LC_ALL: 'C' } });
  }

  /** Writes the sources list and runs `apt-get update` when the lists are missing, stale or for other sources. */
  async update(): Promise<void> {
    if (spawnSync('sh', ['-c', 'command -v apt-get && command -v dpkg-deb']).status !== 0) {
      throw new SetupError('apt-get and dpkg-deb are needed to fetch Debian\'s linux-source packages', 'run on Debian or Ubuntu, or pass --kernel-src with a Linux tree');
    }
    await withLock(join(this.root, 'apt.lock'), 'the private apt lists', this.log, () => {
      const wanted = privateSourcesList(machineAptSources(), releaseCodename());
      const stamp = join(this.root, 'updated');
      const fresh = existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted && Date.now() - statSync(stamp).mtimeMs < LISTS_MAX_AGE_MS;
      if (fresh) return;
      writeFileSync(this.sourcesList, wanted);
      for (const d of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(this.root, d), { recursive: true });
      this.log(`apt-get update with the tool's own sources list (${this.sourcesList})`);
      const r = this.apt('apt-get', ['update', '-qq']);
      if (r.status !== 0 || /^(E:|Err:)/m.test(r.stderr)) {
        const haveLists = existsSync(stamp);
        const why = `apt-get update failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
        if (!haveLists) throw new SetupError(why, `check the network and the archive in ${this.sourcesList}, or pass --kernel-src with a Linux tree`);
        this.log(`${why}; using the lists of the last update`);
        return;
      }
      writeFileSync(stamp, wanted);
    });
  }

  /** The version apt would pick for `pkg`, or null when the archive does not carry it. */
  candidate(pkg: string): string | null {
    const r = this.apt('apt-cache', ['policy', pkg]);
    const v = /^\s*Candidate:\s*(\S+)/m.exec(r.stdout)?.[1];
    return v && v !== '(none)' ? v : null;
  }

  /** Package names starting with `prefix` that the private lists carry. */
  packageNames(prefix: string): string[] {
    return this.apt('apt-cache', ['pkgnames', prefix]).stdout.split('\n').filter(Boolean).sort();
  }

  /** `apt-get download pkg=version` into `dir`; returns the .deb's path. */
  download(pkg: string, version: string, dir: string): string {
    this.log(`apt-get download ${pkg}=${version}`);
    const r = this.apt('apt-get', ['download', '-qq', `${pkg}=${version}`], dir);
    const deb = readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (r.status !== 0 || !deb) throw new SetupError(`apt-get download ${pkg}=${version} failed: ${r.stderr.trim()}`, 'check the network, then run again');
    return join(dir, deb);
  }
}
