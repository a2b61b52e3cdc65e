// The host-side pieces of the VM runner that need no QEMU: config checks,
// kernel-log scanning, the guest's fstab, option parsing.
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOptions, UsageError } from '../../lib/cli/args.ts';
import { parseConfig, unmetOptions } from '../../lib/vm/kernel.ts';
import { kernelProblems } from '../../lib/vm/kernel-log.ts';
import { parseProfiles } from '../../lib/vm/profiles.ts';
import { guestFstab, qemuArgs } from '../../lib/vm/qemu.ts';
import { profiles } from '../../lib/vm/profiles.ts';

describe('vm helpers', () => {
  describe('kernel config', () => {
    it('parses set and unset options', () => {
      const c = parseConfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x"\n# comment\n');
      expect([...c]).to.deep.equal([['CONFIG_A', 'y'], ['CONFIG_B', 'n'], ['CONFIG_C', '"x"']]);
    });
    it('reports fragment options the final config lost', () => {
      const dir = mkdtempSync(join(tmpdir(), 'frag-'));
      const frag = join(dir, 'f.config');
      writeFileSync(frag, 'CONFIG_IOMMUFD=y\nCONFIG_IOMMUFD_TEST=y\n# CONFIG_VT is not set\n');
      expect(unmetOptions([frag], 'CONFIG_IOMMUFD=y\n# CONFIG_IOMMUFD_TEST is not set\n')).to.deep.equal([
        'CONFIG_IOMMUFD_TEST: wanted y, got n',
      ]);
      expect(unmetOptions([frag], 'CONFIG_IOMMUFD=y\nCONFIG_IOMMUFD_TEST=y\nCONFIG_VT=y\n')).to.deep.equal(['CONFIG_VT: wanted n, got y']);
    });
  });

  describe('kernel log', () => {
    it('finds WARN, BUG, KASAN, lockdep and panics', () => {
      const log = [
        '[    1.0] ok',
        '[    2.0] WARNING: CPU: 0 PID: 1 at drivers/iommu/iommufd/pages.c:1 foo+0x1/0x2',
        '[    3.0] BUG: kernel NULL pointer dereference, address: 0000000000000000',
        '[    4.0] BUG: KASAN: slab-use-after-free in iopt_unmap+0x1/0x2',
        '[    5.0] WARNING: possible circular locking dependency detected',
        '[    6.0] Kernel panic - not syncing: Fatal exception',
      ].join('\n');
      const kinds = kernelProblems(log).map((p) => p.split(':')[0]);
      expect(kinds).to.include.members(['WARN', 'BUG', 'KASAN', 'lockdep', 'panic']);
    });
    it('counts a report once when the console, a quoting test failure and dmesg all show it', () => {
      const warn = 'WARNING: CPU: 0 PID: 1 at drivers/iommu/iommufd/pages.c:1 foo+0x1/0x2';
      const log = [warn, `     Error: the kernel logged 1 problem(s) during this test:`, `WARN: ${warn}`, `[    4.0] ${warn}`].join('\n');
      expect(kernelProblems(log)).to.have.length(1);
      expect(kernelProblems(`${log}\n[    5.0] ${warn.replace('PID: 1', 'PID: 2')}`)).to.have.length(2);
    });
    it('passes a clean log, including fault-injection notices', () => {
      expect(kernelProblems('[ 1.0] FAULT_INJECTION: forcing a failure.\n[ 1.1] iommufd: ok\n')).to.deep.equal([]);
    });
  });

  describe('guest', () => {
    it('mounts the results folder writable at its host path', () => {
      expect(guestFstab('/x/out/mock')).to.match(/^results \/x\/out\/mock 9p trans=virtio/m);
    });
    it('keeps a tmpfs off /tmp when the clone or the results live there', () => {
      expect(guestFstab('/work/out/mock', ['/work'])).to.match(/^tmpfs \/tmp /m);
      expect(guestFstab('/tmp/clone/out/mock', ['/tmp/clone'])).to.not.match(/^tmpfs \/tmp /m);
      expect(guestFstab('/work/out', ['/tmp/clone'])).to.not.match(/^tmpfs \/tmp /m);
      expect(guestFstab('/work/out')).to.match(/^tmpfs \/run /m);
    });
    it('shares the host root read-only', () => {
      const args = qemuArgs({ image: '/k', profile: profiles.mock, accel: 'tcg', script: '', cwd: '/', resultsDir: '/r', timeoutSeconds: 1 });
      const append = args[args.indexOf('-append') + 1]!.split(' ');
      // Nothing on the command line keeps warnings off the console.
      expect(append).not.to.include('quiet');
      expect(append).to.include('loglevel=5');
      expect(args.join(' ')).to.match(/local,id=root,path=\/,security_model=none,readonly=on/);
      // One 9p tag that every kernel finds: 6.1 strips "/dev/" from root= before looking the tag up.
      expect(args.join(' ')).to.match(/mount_tag=root\b/);
      expect(args.join(' ')).to.match(/ root=root rootfstype=9p /);
      expect(args.join(' ')).to.not.match(/intel-iommu/);
      const viommu = qemuArgs({ image: '/k', profile: profiles.viommu, accel: 'tcg', script: '', cwd: '/', resultsDir: '/r', timeoutSeconds: 1 });
      expect(viommu.join(' ')).to.match(/intel-iommu.*edu/);
    });
    it('tells a TCG guest to trust its timer (check_timer panics under a slow TCG with interrupt remapping), a KVM guest not', () => {
      const append = (accel: 'tcg' | 'kvm') =>
        qemuArgs({ image: '/k', profile: profiles.viommu, accel, script: '', cwd: '/', resultsDir: '/r', timeoutSeconds: 1 }).join(' ').split(' ');
      expect(append('tcg')).to.include('no_timer_check');
      expect(append('kvm')).to.not.include('no_timer_check');
    });
  });

  describe('command line', () => {
    it('parses options and rejects unknown ones and stray words', () => {
      const spec = { out: { type: 'string', help: '' }, grep: { type: 'string', help: '' }, test: { type: 'string', multiple: true, help: '' } } as const;
      expect(parseOptions(['--out', 'x', '--grep=y', '--test', 'a.b.c', '--test=d.e.f'], spec)).to.deep.include({ out: 'x', grep: 'y', test: ['a.b.c', 'd.e.f'] });
      expect(() => parseOptions(['--nope'], {})).to.throw(UsageError, /^unknown option --nope$/);
      expect(() => parseOptions(['--out'], spec)).to.throw(UsageError, /^--out needs a value$/);
      expect(() => parseOptions(['extra', 'junk'], spec)).to.throw(UsageError, /^unexpected argument 'extra'$/);
      expect(parseOptions(['-h'], spec).help).to.equal(true);
    });
    it('parses profiles', () => {
      expect(parseProfiles('all')).to.deep.equal(['mock', 'viommu']);
      expect(parseProfiles('viommu')).to.deep.equal(['viommu']);
      expect(() => parseProfiles('kvm')).to.throw(RangeError, /unknown profile 'kvm'/);
    });
  });
});
