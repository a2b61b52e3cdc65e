// The kernel cache and the Debian-archive pieces that need no network and no
// build: apt sources parsing, the private sources list, the per-entry lock,
// fragment selection, series names, result stamping, the guest's environment.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseAptSources, privateSourcesList } from '../../lib/kbuild/debian-archive.ts';
import { acquireLock, withLock } from '../../lib/kbuild/lock.ts';
import { KERNEL_SERIES, parseKernelSeries } from '../../lib/kbuild/series.ts';
import { gitDescribe } from '../../lib/kbuild/source.ts';
import { childrenCpuSeconds, fragmentsFor, unmetOptions, type GuestKernel } from '../../lib/vm/kernel.ts';
import { freshResultsDir, guestEnvironment } from '../../lib/vm/run-vm.ts';
import { iommufdAbsence } from '../../lib/kernel/features.ts';
import { stampKernel } from '../../lib/vm/stamp-results.ts';

const DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

describe('kernel cache and sources', () => {
  describe('apt sources', () => {
    it('reads deb822 and one-line sources', () => {
      expect(parseAptSources(DEB822, true)).to.deep.equal([
        { uri: 'http://mirror.example/debian', suites: ['bookworm', 'bookworm-updates'], signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg' },
        { uri: 'http://mirror.example/debian-security', suites: ['bookworm-security'], signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg' },
      ]);
      expect(parseAptSources('# x\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main\ndeb-src http://m/debian bookworm main\n', false)).to.deep.equal([
        { uri: 'http://m/debian', suites: ['bookworm'], signedBy: '/k.gpg' },
      ]);
    });

    it('writes a private list of the release, its security suite, sid and experimental from the same archive', () => {
      const list = privateSourcesList(parseAptSources(DEB822, true), 'bookworm');
      const lines = list.split('\n').filter((l) => l.startsWith('deb '));
      expect(lines.map((l) => l.replace(/^deb \[[^\]]*\] /, ''))).to.deep.equal([
        'http://mirror.example/debian bookworm main',
        'http://mirror.example/debian-security bookworm-security main',
        'http://mirror.example/debian sid main',
        'http://mirror.example/debian experimental main',
      ]);
    });

    it('names the missing archive when the machine has none', () => {
      expect(() => privateSourcesList([{ uri: 'http://x/ubuntu', suites: ['noble'] }], 'bookworm')).to.throw(/no Debian archive for bookworm/);
    });
  });

  describe('series', () => {
    it('knows 6.1, 6.12, 7.2 and 7.3 and refuses the rest with the list', () => {
      expect(KERNEL_SERIES).to.deep.equal(['6.1', '6.12', '7.2', '7.3']);
      expect(parseKernelSeries('7.2')).to.equal('7.2');
      expect(() => parseKernelSeries('6.6')).to.throw(RangeError, /use 6\.1, 6\.12, 7\.2, 7\.3/);
    });
  });

  describe('--kernel-version', () => {
    it('is taken by every command that boots a guest or reads a tree (vm, test, audit, kselftest, parity); an unknown one is a usage error (exit 2) naming the known ones', function () {
      this.timeout(60000);
      const bin = new URL('../../bin/iommufd-conformance.js', import.meta.url).pathname;
      for (const command of ['vm', 'test', 'audit', 'parity', 'kselftest']) {
        const r = spawnSync(process.execPath, [bin, command, '--kernel-version', '6.6'], { encoding: 'utf8' });
        expect(r.status, `${command}: ${r.stderr}`).to.equal(2);
        expect(r.stderr).to.include("unknown kernel version '6.6': use 6.1, 6.12, 7.2, 7.3");
        const help = spawnSync(process.execPath, [bin, command, '--help'], { encoding: 'utf8' });
        expect(help.stdout, command).to.include('--kernel-version');
      }
    });
  });

  describe('lock per cache entry', () => {
    it('lets one holder in at a time', async () => {
      const file = join(mkdtempSync(join(tmpdir(), 'lock-')), 'entry.lock');
      const events: string[] = [];
      const first = await acquireLock(file, 'test');
      const second = withLock(file, 'test', () => {}, () => events.push('second in'));
      await new Promise((r) => setTimeout(r, 300));
      events.push('first out');
      await first.release();
      await second;
      expect(events).to.deep.equal(['first out', 'second in']);
    });

    it('is released when the run that holds it is killed', async function () {
      this.timeout(20000);
      const file = join(mkdtempSync(join(tmpdir(), 'lock-')), 'entry.lock');
      // Another run (a Node process) takes the lock and is killed with SIGKILL while holding it.
      const lockModule = new URL('../../lib/kbuild/lock.ts', import.meta.url).href;
      const program = `const m = await import(${JSON.stringify(lockModule)}); await m.acquireLock(${JSON.stringify(file)}, 't'); console.log('held'); setInterval(() => {}, 1000);`;
      const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((r) => holder.stdout.once('data', () => r()));
      let got = false;
      const waiting = withLock(file, 'test', () => {}, () => (got = true));
      await new Promise((r) => setTimeout(r, 200));
      expect(got, 'taken while held').to.equal(false);
      holder.kill('SIGKILL');
      await waiting;
      expect(got).to.equal(true);
    });
  });

  describe('config fragments', () => {
    const tree = (iommufdKconfig: string | null) => {
      const dir = mkdtempSync(join(tmpdir(), 'tree-'));
      if (iommufdKconfig !== null) {
        mkdirSync(join(dir, 'drivers/iommu/iommufd'), { recursive: true });
        writeFileSync(join(dir, 'drivers/iommu/iommufd/Kconfig'), iommufdKconfig);
      }
      return dir;
    };
    const names = (files: string[]) => files.map((f) => basename(f));

    it('picks fragments by what the tree offers', () => {
      expect(names(fragmentsFor('base', tree(null)))).to.deep.equal(['base.config']);
      const slob = tree(null);
      mkdirSync(join(slob, 'mm'));
      writeFileSync(join(slob, 'mm/Kconfig'), 'choice\n\tprompt "Choose SLAB allocator"\nconfig SLAB\nconfig SLUB\nconfig SLOB\nendchoice\n');
      expect(names(fragmentsFor('base', slob))).to.deep.equal(['base.config', 'slub.config']);
      expect(names(fragmentsFor('base', tree('config IOMMUFD_TEST\n\tdepends on DEBUG_KERNEL\n')))).to.deep.equal(['base.config', 'iommufd.config']);
      expect(names(fragmentsFor('debug', tree('config IOMMUFD_TEST\n\tdepends on IOMMU_PT_AMDV1=y || IOMMUFD=IOMMU_PT_AMDV1\n')))).to.deep.equal([
        'base.config',
        'iommufd.config',
        'iommufd-generic-pt.config',
        'debug.config',
      ]);
    });

    it('reads a later fragment line as overriding an earlier one, as merge_config.sh does', () => {
      const dir = mkdtempSync(join(tmpdir(), 'frag-'));
      writeFileSync(join(dir, 'a.config'), '# CONFIG_INET is not set\nCONFIG_UNIX=y\n');
      writeFileSync(join(dir, 'b.config'), 'CONFIG_INET=y\n');
      const frags = [join(dir, 'a.config'), join(dir, 'b.config')];
      expect(unmetOptions(frags, 'CONFIG_INET=y\nCONFIG_UNIX=y\n')).to.deep.equal([]);
      expect(unmetOptions(frags, '# CONFIG_INET is not set\nCONFIG_UNIX=y\n')).to.deep.equal(['CONFIG_INET: wanted y, got n']);
    });

    it('adds INET where 9P_FS depends on it (6.1)', () => {
      const dir = tree(null);
      mkdirSync(join(dir, 'fs/9p'), { recursive: true });
      writeFileSync(join(dir, 'fs/9p/Kconfig'), 'config 9P_FS\n\ttristate "Plan 9"\n\tdepends on INET && NET_9P\n\tselect NETFS_SUPPORT\n');
      expect(names(fragmentsFor('base', dir))).to.deep.equal(['base.config', '9p-inet.config']);
      writeFileSync(join(dir, 'fs/9p/Kconfig'), 'config 9P_FS\n\ttristate "Plan 9"\n\tdepends on NET_9P\n\tselect NETFS_SUPPORT\n');
      expect(names(fragmentsFor('base', dir))).to.deep.equal(['base.config']);
    });

    it('asks for SYSCTL instead of PROC_SYSCTL where /proc/sys is SYSCTL itself (7.3)', () => {
      const dir = tree(null);
      mkdirSync(join(dir, 'fs/proc'), { recursive: true });
      writeFileSync(join(dir, 'fs/proc/Kconfig'), 'config PROC_SYSCTL\n\tbool "Sysctl support (/proc/sys)" if EXPERT\n');
      expect(names(fragmentsFor('base', dir))).to.deep.equal(['base.config']);
      writeFileSync(join(dir, 'fs/proc/Kconfig'), 'config SYSCTL\n\tbool "Sysctl support (/proc/sys)" if EXPERT\n\tdepends on PROC_FS\n');
      expect(names(fragmentsFor('base', dir))).to.deep.equal(['base.config', 'sysctl.config']);
    });

    it('asks for a PVH vmlinux, which QEMU boots without a bzImage', () => {
      const base = readFileSync(fragmentsFor('base', tree(null))[0]!, 'utf8');
      expect(base).to.match(/^CONFIG_PVH=y$/m);
    });

    it('keeps iommufd out of the fragment every kernel gets', () => {
      const base = readFileSync(fragmentsFor('base', tree(null))[0]!, 'utf8');
      expect(base).to.not.match(/^CONFIG_IOMMUFD/m);
      expect(base).to.match(/^CONFIG_VFIO_IOMMU_TYPE1=y$/m);
    });
  });

  describe('build cost', () => {
    it("reads the waited-for children's CPU time from /proc/self/stat", () => {
      // pid (comm) state ppid ... utime stime cutime cstime: a command name with spaces and parentheses.
      const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 1234 567 20 0 11 0 100 0 0';
      expect(childrenCpuSeconds(stat)).to.equal(18.01);
      expect(() => childrenCpuSeconds('garbage')).to.throw(/cutime/);
      const before = childrenCpuSeconds();
      spawnSync('sh', ['-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done']);
      expect(childrenCpuSeconds()).to.be.greaterThan(before);
    });
  });

  describe('results', () => {
    const kernel: GuestKernel = {
      image: '/c/vmlinux',
      config: '/c/config',
      version: '7.2.13',
      origin: { kind: 'debian', package: 'linux-source-7.2', packageVersion: '7.2.13-1' },
      source: 'linux-source-7.2 7.2.13-1',
      flavour: 'base',
      buildSeconds: 0,
      buildCpuSeconds: 0,
      cached: true,
    };

    it('stamps every result file with the package version', () => {
      const dir = mkdtempSync(join(tmpdir(), 'stamp-'));
      writeFileSync(join(dir, 'results.json'), JSON.stringify({ stats: { tests: 1 } }));
      writeFileSync(join(dir, 'timing.json'), JSON.stringify({ suites: [] }));
      writeFileSync(join(dir, 'results.ktap'), 'KTAP version 1\n1..1\nok 1 a\n');
      writeFileSync(join(dir, 'results.tap'), 'TAP version 13\n1..1\nok 1 a\n');
      writeFileSync(join(dir, 'results.xml'), '<?xml version="1.0"?>\n<testsuite/>\n');
      stampKernel(dir, kernel);
      expect(JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'))).to.deep.include({ stats: { tests: 1 } });
      expect(JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')).guestKernel).to.include({ package: 'linux-source-7.2', packageVersion: '7.2.13-1' });
      expect(JSON.parse(readFileSync(join(dir, 'timing.json'), 'utf8')).guestKernel.packageVersion).to.equal('7.2.13-1');
      expect(readFileSync(join(dir, 'results.ktap'), 'utf8')).to.equal('KTAP version 1\n# kernel: linux-source-7.2 7.2.13-1, Linux 7.2.13 (base)\n1..1\nok 1 a\n');
      expect(readFileSync(join(dir, 'results.tap'), 'utf8')).to.match(/^TAP version 13\n# kernel: linux-source-7\.2 7\.2\.13-1/);
      expect(readFileSync(join(dir, 'results.xml'), 'utf8')).to.match(/^<\?xml version="1.0"\?>\n<!-- kernel: linux-source-7\.2 7\.2\.13-1, Linux 7\.2\.13 \(base\) -->\n<testsuite\/>/);
      expect(existsSync(join(dir, 'audit-raw.json'))).to.equal(false);
      // audit-raw.json's own "kernel" (uname -r) stays as it is.
      writeFileSync(join(dir, 'audit-raw.json'), JSON.stringify({ format: 1, kernel: '7.2.13' }));
      stampKernel(dir, kernel);
      const raw = JSON.parse(readFileSync(join(dir, 'audit-raw.json'), 'utf8'));
      expect(raw.kernel).to.equal('7.2.13');
      expect(raw.guestKernel.packageVersion).to.equal('7.2.13-1');
    });
  });

  describe('feature probe on a kernel without iommufd (6.1)', () => {
    it('says the kernel has no iommufd only when no misc device "iommu" is registered', () => {
      const sys = mkdtempSync(join(tmpdir(), 'misc-'));
      expect(iommufdAbsence(2, sys)).to.match(/does not exist and the kernel has no iommufd/);
      mkdirSync(join(sys, 'iommu'));
      expect(iommufdAbsence(2, sys)).to.match(/the kernel registered iommufd .* the device node is missing/);
      expect(iommufdAbsence(13, sys)).to.equal('/dev/iommu cannot be opened (errno 13)');
    });
  });

  describe('results folder', () => {
    it('keeps nothing of the previous run, so a run that dies shows no old pass', () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'out-')), 'mock');
      mkdirSync(join(dir, '.vm'), { recursive: true });
      for (const f of ['results.json', 'results.ktap', 'timing.json', 'results.tap', 'results.xml', 'audit-raw.json', '.vm/exit-code']) writeFileSync(join(dir, f), 'old pass');
      freshResultsDir(dir);
      expect(existsSync(dir)).to.equal(true);
      expect(readdirSync(dir)).to.deep.equal([]);
    });
  });

  describe('guest', () => {
    it('passes every IOMMUFD_CONFORMANCE_* knob of this process to the guest', () => {
      const env = guestEnvironment(
        { IOMMUFD_CONFORMANCE_MODE: 'kernel', IOMMUFD_CONFORMANCE_BACKEND: 'koffi', IOMMUFD_CONFORMANCE_OUT: '/host/out/unit', HOME: '/root', CI: 'true' },
        'mock',
        'linux-source-7.2 7.2.13-1',
      );
      expect(env).to.deep.equal({
        IOMMUFD_CONFORMANCE_MODE: 'kernel',
        IOMMUFD_CONFORMANCE_BACKEND: 'koffi',
        IOMMUFD_CONFORMANCE_IN_VM: '1',
        IOMMUFD_CONFORMANCE_PROFILE: 'mock',
        IOMMUFD_CONFORMANCE_KERNEL: 'linux-source-7.2 7.2.13-1',
        CI: 'true',
      });
    });

    it('describes a tree that is not a git tree', () => {
      expect(gitDescribe(mkdtempSync(join(tmpdir(), 'tree-')))).to.equal('not a git tree');
    });
  });
});
