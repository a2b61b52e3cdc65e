// `audit --host --device BDF` without a VM or a device: the address check, the
// host checks on a fake sysfs (each refusal says what to do and writes nothing),
// the command line's refusals, the comparison of a host run with the guest
// suite's, and a host raw file through the report (compat-mock skipped, the
// host's facts shown).
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHostDevice, cellDifferences, HostDeviceError, openAndClose, readHostFacts } from '../../lib/audit/host-device.ts';
import { buildAudit, HOST_AUDIT_SCOPE, validateRaw } from '../../lib/audit/report.ts';
import { renderHtml } from '../../lib/audit/render-html.ts';
import { renderMarkdown } from '../../lib/audit/render-markdown.ts';
import type { AuditRaw } from '../../lib/audit/types.ts';
import { DEVICE_ENV, namedDevice, NO_DEVICE_UNDER_TEST, parseBdf, vfioDeviceUnderTest } from '../../lib/kernel/device-choice.ts';
import { runHostAudit } from '../../lib/cli/audit-host.ts';
import { main } from '../../lib/cli/main.ts';
import { catalogue, knownForCatalogue, knownJson, ran, step, viommuRaw, writeRunFolder } from './fixtures/audit-raw.fixture.ts';
import { PUBLISHED_AUDIT_DIR } from '../../lib/audit/published.ts';

const BDF = '0000:03:00.0';
const tempDirs: string[] = [];

interface FakeDevice {
  bdf: string;
  driver?: string | null;
  group?: number | null;
  unit?: string | null;
}

/** A sysfs and /dev with these devices; the first is the one under audit. */
function fakeHost(devices: FakeDevice[], opts: { intelUnits?: string[]; vfioNodes?: number[] } = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'audit-host-sysfs-'));
  tempDirs.push(root);
  const pci = join(root, 'sys/bus/pci/devices');
  mkdirSync(pci, { recursive: true });
  for (const d of devices) {
    const dir = join(root, 'sys/devices/pci0000:00', d.bdf);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'vendor'), '0x8086\n');
    writeFileSync(join(dir, 'device'), '0x10d3\n');
    writeFileSync(join(dir, 'class'), '0x020000\n');
    symlinkSync(dir, join(pci, d.bdf));
    const driver = d.driver === undefined ? 'vfio-pci' : d.driver;
    if (driver) {
      mkdirSync(join(root, 'sys/bus/pci/drivers', driver), { recursive: true });
      symlinkSync(join(root, 'sys/bus/pci/drivers', driver), join(dir, 'driver'));
    }
    const group = d.group === undefined ? 7 : d.group;
    if (group !== null) {
      const gdir = join(root, 'sys/kernel/iommu_groups', String(group));
      mkdirSync(join(gdir, 'devices'), { recursive: true });
      symlinkSync(gdir, join(dir, 'iommu_group'));
      symlinkSync(dir, join(gdir, 'devices', d.bdf));
    }
    const unit = d.unit === undefined ? 'dmar1' : d.unit;
    if (unit) {
      mkdirSync(join(root, 'sys/devices/virtual/iommu', unit), { recursive: true });
      symlinkSync(join(root, 'sys/devices/virtual/iommu', unit), join(dir, 'iommu'));
    }
  }
  mkdirSync(join(root, 'sys/class/iommu'), { recursive: true });
  for (const u of opts.intelUnits ?? ['dmar1']) {
    mkdirSync(join(root, 'sys/class/iommu', u, 'intel-iommu'), { recursive: true });
    writeFileSync(join(root, 'sys/class/iommu', u, 'intel-iommu/cap'), 'd2008c40660462\n');
    writeFileSync(join(root, 'sys/class/iommu', u, 'intel-iommu/ecap'), 'f050da\n');
  }
  mkdirSync(join(root, 'dev/vfio'), { recursive: true });
  for (const n of opts.vfioNodes ?? [7]) writeFileSync(join(root, 'dev/vfio', String(n)), '');
  return root;
}

/** Every path under `root` (symlinks not followed: sysfs's loop back), to show a check changed nothing. */
function tree(root: string, at = ''): string[] {
  return readdirSync(join(root, at), { withFileTypes: true }).flatMap((e) => {
    const path = join(at, e.name);
    return e.isDirectory() ? [path, ...tree(root, path)] : [path];
  });
}

function refusal(root: string, opts: { euid?: number; bdf?: string } = {}): string {
  const before = tree(root);
  let err: unknown = null;
  try {
    checkHostDevice(opts.bdf ?? BDF, { root, euid: opts.euid ?? 0, openGroup: openAndClose });
  } catch (e) {
    err = e;
  }
  expect(err, 'the check refuses').to.be.instanceOf(HostDeviceError);
  expect(tree(root), 'the check wrote nothing').to.deep.equal(before);
  return (err as Error).message;
}

describe('audit --host', () => {
  after(() => {
    for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  describe('the device address', () => {
    it('takes DOMAIN:BUS:SLOT.FUNCTION as sysfs writes it', () => {
      expect(parseBdf('0000:03:00.0')).to.equal('0000:03:00.0');
      expect(parseBdf(' 0000:AF:1f.7 ')).to.equal('0000:af:1f.7');
    });

    for (const bad of ['03:00.0', '0000:03:00', '0000:03:20.0', '0000:03:00.8', '0000:3:00.0', 'eth0', '', '0000:03:00.0/../..']) {
      it(`refuses ${JSON.stringify(bad)} with a RangeError`, () => {
        expect(() => parseBdf(bad)).to.throw(RangeError, /not a PCI address: give DOMAIN:BUS:SLOT.FUNCTION/);
      });
    }

    it('reads IOMMUFD_CONFORMANCE_DEVICE, and refuses a malformed one', () => {
      expect(namedDevice({})).to.equal(null);
      expect(namedDevice({ [DEVICE_ENV]: '0000:00:03.0' })).to.equal('0000:00:03.0');
      expect(() => namedDevice({ [DEVICE_ENV]: '00:03.0' })).to.throw(RangeError, /IOMMUFD_CONFORMANCE_DEVICE: '00:03.0' is not a PCI address/);
    });

    // Every suite with a device (smoke, fuzz, vfio_cdev, findings, accounting.vfio) and the audit take it here.
    it('gives every suite the device the same way: no device at all is a skip, a named device not bound is not', () => {
      expect(vfioDeviceUnderTest(null)).to.deep.equal({ why: NO_DEVICE_UNDER_TEST, none: true });
      expect(NO_DEVICE_UNDER_TEST).to.include(DEVICE_ENV).and.include('1234:11e8');
      // A named device is never bound here: one that is not vfio-pci's (here: no such device) is an error, not a skip.
      expect(vfioDeviceUnderTest({ bdf: '0000:7f:1f.7', named: true })).to.deep.equal({ why: '0000:7f:1f.7 (IOMMUFD_CONFORMANCE_DEVICE) is not bound to vfio-pci (driver: none); bind it first', none: false });
    });
  });

  describe('the host checks (fake sysfs)', () => {
    it('accepts a vfio-pci device in a viable group behind a VT-d unit whose /dev/vfio/N opens', () => {
      const root = fakeHost([{ bdf: BDF }, { bdf: '0000:00:1c.0', driver: 'pcieport' }, { bdf: '0000:03:00.1', driver: null }]);
      const d = checkHostDevice(BDF, { root, euid: 0, openGroup: openAndClose });
      expect(d).to.deep.equal({
        bdf: BDF,
        groupId: 7,
        iommuUnit: 'dmar1',
        groupDevices: [
          { bdf: '0000:00:1c.0', driver: 'pcieport' },
          { bdf: '0000:03:00.0', driver: 'vfio-pci' },
          { bdf: '0000:03:00.1', driver: null },
        ],
      });
    });

    it('refuses a non-root user, and names the device problem too', () => {
      const msg = refusal(fakeHost([{ bdf: BDF, driver: 'e1000e' }]), { euid: 1000 });
      expect(msg).to.match(/- not root/).and.to.match(/- 0000:03:00\.0 is bound to e1000e/);
    });

    it('refuses a device that does not exist', () => {
      expect(refusal(fakeHost([{ bdf: BDF }]), { bdf: '0000:04:00.0' })).to.match(/no PCI device 0000:04:00\.0 .*does not exist/);
    });

    it('refuses a device bound to another driver, and says how to bind it (never binding it)', () => {
      const msg = refusal(fakeHost([{ bdf: BDF, driver: 'e1000e' }]));
      expect(msg).to.include('bound to e1000e, not to vfio-pci').and.include('does not bind or unbind devices');
      expect(msg).to.include(`echo vfio-pci > /sys/bus/pci/devices/${BDF}/driver_override`);
      expect(msg).to.include(`echo ${BDF} > /sys/bus/pci/devices/${BDF}/driver/unbind`);
      expect(msg).to.include(`echo ${BDF} > /sys/bus/pci/drivers_probe`);
      expect(msg).to.include(`driverctl set-override ${BDF} vfio-pci`);
    });

    it('refuses a device with no driver (nothing to unbind)', () => {
      const msg = refusal(fakeHost([{ bdf: BDF, driver: null }]));
      expect(msg).to.include('bound to no driver').and.include('driver_override').and.not.include('/unbind');
    });

    it('refuses a device with no IOMMU group', () => {
      expect(refusal(fakeHost([{ bdf: BDF, group: null }]))).to.match(/has no IOMMU group.*intel_iommu=on/);
    });

    it('refuses a group that another driver holds, naming each device', () => {
      const msg = refusal(fakeHost([{ bdf: BDF }, { bdf: '0000:03:00.1', driver: 'snd_hda_intel' }]));
      expect(msg).to.include('IOMMU group 7 is not viable: 0000:03:00.1 is bound to snd_hda_intel');
      expect(msg).to.include('echo vfio-pci > /sys/bus/pci/devices/0000:03:00.1/driver_override');
    });

    it('refuses a device behind an IOMMU the model does not know', () => {
      expect(refusal(fakeHost([{ bdf: BDF, unit: 'ivhd0' }], { intelUnits: [] }))).to.include('behind ivhd0, of no IOMMU driver the model knows');
    });

    it('refuses when /dev/vfio/N is not there', () => {
      expect(refusal(fakeHost([{ bdf: BDF }], { vfioNodes: [] }))).to.include('dev/vfio/7 does not exist although 0000:03:00.0 is bound to vfio-pci');
    });

    it("refuses when the group does not open, with the opener's reason", () => {
      const root = fakeHost([{ bdf: BDF }]);
      expect(() => checkHostDevice(BDF, { root, euid: 0, openGroup: () => 'cannot open /dev/vfio/7: errno 16 (EBUSY: another process has the group open)' }))
        .to.throw(HostDeviceError, /EBUSY/);
    });

    it("labels the run with the host's kernel, device and platform", () => {
      const root = fakeHost([{ bdf: BDF }]);
      mkdirSync(join(root, 'proc/sys/kernel'), { recursive: true });
      writeFileSync(join(root, 'proc/sys/kernel/osrelease'), '6.12.57+deb13-amd64\n');
      writeFileSync(join(root, 'proc/version'), 'Linux version 6.12.57+deb13-amd64 (debian-kernel@lists.debian.org)\n');
      writeFileSync(join(root, 'proc/cmdline'), 'intel_iommu=on\n');
      writeFileSync(join(root, 'proc/cpuinfo'), 'processor\t: 0\nmodel name\t: Test CPU @ 3GHz\n');
      const device = checkHostDevice(BDF, { root, euid: 0, openGroup: openAndClose });
      const platform = { pgsizeBitmap: 0x40201000n, aperture: { start: 0n, last: (1n << 48n) - 1n }, reservedRegions: [{ start: 0xfee00000n, last: 0xfeefffffn, type: 'msi' }], enforceCacheCoherency: true, interruptRemapping: true, allowUnsafeInterrupts: false, iommufdAllowUnsafeInterrupts: false, dmaEntryLimit: 65535 };
      const facts = readHostFacts(device, platform, root);
      expect(facts).to.deep.include({ kernel: '6.12.57+deb13-amd64', procVersion: 'Linux version 6.12.57+deb13-amd64 (debian-kernel@lists.debian.org)', cmdline: 'intel_iommu=on', cpu: 'Test CPU @ 3GHz', machine: null });
      expect(facts.device).to.deep.equal({ bdf: BDF, id: '8086:10d3', class: '0x020000', iommuGroup: 7, groupDevices: ['0000:03:00.0 (vfio-pci)'] });
      expect(facts.iommu).to.deep.equal({ unit: 'dmar1', cap: 'd2008c40660462', ecap: 'f050da', interruptRemapping: true, allowUnsafeInterrupts: false, pgsizeBitmap: '0x40201000', aperture: '0x0-0xffffffffffff', reservedRegions: ['0xfee00000-0xfeefffff msi'] });
    });
  });

  describe('the command line', () => {
    const quiet = <T>(fn: () => Promise<T>): Promise<T> => {
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = (() => true) as typeof process.stderr.write;
      return fn().finally(() => {
        process.stderr.write = write;
      });
    };

    it('is a usage error (exit 2) without --device, with --device alone, with a malformed address, with VM-only options', async () => {
      expect(await quiet(() => main(['audit', '--host']))).to.equal(2);
      expect(await quiet(() => main(['audit', '--device', BDF]))).to.equal(2);
      expect(await quiet(() => main(['audit', '--host', '--device', '3:0.0']))).to.equal(2);
      expect(await quiet(() => main(['audit', '--host', '--device', BDF, '--raw', '/tmp']))).to.equal(2);
      expect(await quiet(() => main(['audit', '--host', '--device', BDF, '--publish']))).to.equal(2);
    });

    it('says in --help that it never binds or unbinds a device', async () => {
      const chunks: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((c: string) => chunks.push(c) > 0) as typeof process.stdout.write;
      try {
        expect(await main(['audit', '--help'])).to.equal(0);
      } finally {
        process.stdout.write = write;
      }
      expect(chunks.join('')).to.include('--device BDF').and.include('never\nbinds or unbinds a device');
    });

    it('refuses a host that cannot run it with exit 3, writing nothing to --out', async () => {
      const root = fakeHost([{ bdf: BDF, driver: 'e1000e' }]);
      const out = join(root, 'out');
      const lines: string[] = [];
      expect(await runHostAudit({ device: BDF, out, checks: { root, euid: 0, openGroup: openAndClose }, write: (l) => lines.push(l) })).to.equal(3);
      expect(lines.join('\n')).to.include('bound to e1000e').and.include('nothing was run or written');
      expect(existsSync(out)).to.equal(false);
    });

    it('throws a RangeError for a malformed address before looking at the host', async () => {
      let err: unknown = null;
      await runHostAudit({ device: '0000:03:00', out: '/nonexistent', write: () => {} }).catch((e) => (err = e));
      expect(err).to.be.instanceOf(RangeError).with.property('message').that.matches(/not a PCI address/);
      expect(existsSync('/nonexistent')).to.equal(false);
    });
  });

  describe('the same cells as the guest suite', () => {
    const backends = ['type1', 'compat-device', 'native'] as const;
    const all = () => true;

    it('finds no difference between equal raw files, and counts the cells compared', () => {
      const r = cellDifferences(viommuRaw(), viommuRaw(), backends, all);
      expect(r.differences).to.deep.equal([]);
      expect(r.compared).to.equal(Object.keys(catalogue()).length * backends.length);
    });

    it('names a cell whose kernel steps differ, and a backend whose availability differs', () => {
      const cat = catalogue();
      const host = viommuRaw(cat);
      host.scenarios.find((s) => s.id === 'map-dma.flags-zero')!.results.type1 = ran([step('VFIO_IOMMU_MAP_DMA', 'EPERM')]);
      host.backends.native = { available: false, reason: 'no cdev', skipped: true };
      const r = cellDifferences(viommuRaw(catalogue()), host, backends, all);
      expect(r.differences).to.have.length(2);
      expect(r.differences[0]).to.match(/^backend native: /);
      expect(r.differences[1]).to.match(/^map-dma\.flags-zero on type1: suite ran: .*; host ran: 1 step\(s\), last VFIO_IOMMU_MAP_DMA EPERM \(the steps differ\)$/);
    });

    it('compares only the cells the suite ran', () => {
      const host = viommuRaw();
      host.scenarios[0]!.results.type1 = { status: 'not-applicable', reason: 'x' };
      const r = cellDifferences(viommuRaw(), host, backends, (b, id) => !(b === 'type1' && id === host.scenarios[0]!.id));
      expect(r.differences).to.deep.equal([]);
      expect(r.compared).to.equal(Object.keys(catalogue()).length * backends.length - 1);
    });
  });

  describe('a host raw file in the report', () => {
    const hostRaw = (): AuditRaw => ({
      ...viommuRaw(),
      host: {
        kernel: '6.12.117',
        procVersion: 'Linux version 6.12.117',
        cmdline: 'intel_iommu=on',
        machine: null,
        cpu: null,
        device: { bdf: '0000:00:03.0', id: '1234:11e8', class: '0x00ff00', iommuGroup: 3, groupDevices: ['0000:00:03.0 (vfio-pci)'] },
        iommu: { unit: 'dmar0', cap: 'c', ecap: 'e', interruptRemapping: true, allowUnsafeInterrupts: false, pgsizeBitmap: '0x40201000', aperture: '0x0-0xffffffffff', reservedRegions: ['0xfee00000-0xfeefffff msi'] },
      },
    });

    it('reports compat-mock skipped (not missing) and passes on the device half alone', () => {
      const raw = validateRaw(JSON.parse(JSON.stringify(hostRaw())), 'host');
      const a = buildAudit([{ path: '/fixture/host/audit-raw.json', raw }], knownForCatalogue());
      expect(a.backends['compat-mock']).to.deep.equal({ profile: 'mock', state: 'skipped', reason: HOST_AUDIT_SCOPE });
      expect(a.verdict.failures).to.deep.equal([]);
      expect(a.host?.device.bdf).to.equal('0000:00:03.0');
    });

    it('without host facts, the same lone raw file still fails for the missing mock profile', () => {
      const a = buildAudit([{ path: '/fixture/viommu/audit-raw.json', raw: viommuRaw() }], knownForCatalogue());
      expect(a.backends['compat-mock'].state).to.equal('missing');
      expect(a.verdict.ok).to.equal(false);
    });

    it('shows the device, the kernel and the platform at the top of audit.md and audit.html', () => {
      const a = buildAudit([{ path: '/fixture/host/audit-raw.json', raw: hostRaw() }], knownForCatalogue());
      const md = renderMarkdown(a);
      // mdText escapes Markdown's punctuation.
      expect(md).to.include('**Host audit**').and.include('- device: 0000:00:03.0 \\(PCI 1234:11e8').and.include('- /proc/version: Linux version 6.12.117');
      expect(md).to.include('interrupt remapping on');
      expect(renderHtml(a)).to.include('<section id="host">').and.include('0000:00:03.0 (PCI 1234:11e8');
    });

    it('is rendered again by audit --raw, and never published', async function () {
      this.timeout(120_000);
      const dir = writeRunFolder([hostRaw()]);
      tempDirs.push(dir);
      const known = join(dir, 'known.json');
      writeFileSync(known, knownJson(knownForCatalogue()));
      const published = readFileSync(join(PUBLISHED_AUDIT_DIR, 'audit.md'), 'utf8');
      const chunks: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((c: string) => chunks.push(c) > 0) as typeof process.stdout.write;
      let code: number;
      try {
        code = await main(['audit', '--raw', join(dir, 'viommu'), '--known', known, '--publish', '--out', join(dir, 'out')]);
      } finally {
        process.stdout.write = write;
      }
      const out = chunks.join('');
      expect(out).to.include('audit: NOT published: a host audit (audit --host, 0000:00:03.0 on 6.12.117)');
      expect(out).to.include('compat-mock skipped');
      expect(code, out).to.equal(0);
      expect(readFileSync(join(dir, 'out/audit/audit.md'), 'utf8')).to.include('**Host audit**');
      expect(readFileSync(join(PUBLISHED_AUDIT_DIR, 'audit.md'), 'utf8')).to.equal(published);
    });

    it('refuses a malformed host record', () => {
      const bad = { ...hostRaw(), host: { kernel: 1 } };
      expect(() => validateRaw(JSON.parse(JSON.stringify(bad)), 'x')).to.throw(/"host" \(audit --host\) must be/);
    });
  });
});

