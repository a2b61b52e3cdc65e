// The platform facts of the amd and virtio profiles (lib/model/type1-platform.ts):
// what the model derives from the texts a guest shows (kernel log, /proc/cmdline,
// sysfs), taken from QEMU 7.2 guests on 6.12.117 (the log lines below are theirs).
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AMD_IO_PGTABLE_PGSIZES_UNKNOWN, AMD_IOMMU_PGSIZES, amdHptVasize, amdViDomain, interruptRemappingFrom, iommuUnitOfGroup, type1PlatformFrom, virtioIommuDomain } from '../../lib/model/type1-platform.ts';
import { fragmentsFor } from '../../lib/vm/kernel.ts';
import { kernelFragmentsOf, parseProfiles } from '../../lib/vm/profiles.ts';

const AMD_DMESG = '[    0.849965] AMD-Vi: Extended features (0x29d3, 0x0): PreF PPR GT IA GA HE\n[    0.850077] AMD-Vi: Interrupt remapping enabled\n';
const VIRTIO_DMESG = '[    0.826754] virtio_iommu virtio0: input address: 64 bits\n[    0.826817] virtio_iommu virtio0: page mask: 0xfffffffffffff000\n';
const U64_MAX = (1n << 64n) - 1n;
const common = { allowUnsafeInterrupts: 'N\n', dmaEntryLimit: '65535\n', reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n' };

describe('platform facts: AMD-Vi', () => {
  it('gives a v1 table every size from 4 KiB to 2^51 but 512 GiB, and the whole 64-bit aperture', () => {
    const d = amdViDomain('console=ttyS0');
    expect(d.pgsizeBitmap).to.equal(AMD_IOMMU_PGSIZES);
    expect(d.pgsizeBitmap & (1n << 39n)).to.equal(0n);
    expect(d.pgsizeBitmap & 0xfffn).to.equal(0n);
    expect(d.pgsizeBitmap >> 52n).to.equal(0n);
    expect(d.aperture).to.deep.equal({ start: 0n, last: U64_MAX });
    expect(d.enforceCacheCoherency).to.equal(true);
  });
  it('leaves the sizes of 2^52 and above unknown on io-pgtable: 6.1 claims them, 6.12 does not, and only GET_INFO shows it', () => {
    // 6.1 amd_iommu_types.h:280 ((~0xFFFUL) & ~(2ULL << 38)) against 6.12's GENMASK_ULL(51, 12) ^ SZ_512G:
    // the same below 2^52, apart above; the 6.1 amd guest's GET_INFO gave 0xffffff7ffffff000.
    const sixOne = ~0xfffn & ~(2n << 38n) & U64_MAX;
    const d = amdViDomain('console=ttyS0');
    expect(d.pgsizeBitsUnknown).to.equal(AMD_IO_PGTABLE_PGSIZES_UNKNOWN);
    expect(AMD_IO_PGTABLE_PGSIZES_UNKNOWN).to.equal(0xfff0000000000000n);
    expect(sixOne & ~AMD_IO_PGTABLE_PGSIZES_UNKNOWN).to.equal(d.pgsizeBitmap);
    expect(sixOne).to.equal(0xffffff7ffffff000n);
    // An option that picks the bitmap, and 7.x's generic_pt table sized by the logged EFR, leave nothing unknown.
    expect(amdViDomain('amd_iommu=nohugepages').pgsizeBitsUnknown).to.equal(undefined);
    expect(type1PlatformFrom({ ...common, driver: 'amd-iommu', cmdline: '', dmesg: AMD_DMESG }).pgsizeBitsUnknown).to.equal(AMD_IO_PGTABLE_PGSIZES_UNKNOWN);
  });
  it('narrows the page sizes by amd_iommu=, the last option winning', () => {
    expect(amdViDomain('amd_iommu=nohugepages').pgsizeBitmap).to.equal(0x1000n);
    expect(amdViDomain('amd_iommu=nohugepages,v2_pgsizes_only').pgsizeBitmap).to.equal(0x40201000n);
  });
  it('ignores an option the kernel logged as unknown (6.1 has no nohugepages)', () => {
    const log = "[    0.000000] AMD-Vi: Unknown option - 'nohugepages,pgtbl_v1'\n";
    const d = amdViDomain('amd_iommu=nohugepages,pgtbl_v1', { dmesg: log });
    expect(d.pgsizeBitmap).to.equal(AMD_IOMMU_PGSIZES);
    expect(d.pgsizeBitsUnknown).to.equal(AMD_IO_PGTABLE_PGSIZES_UNKNOWN);
    // Known where the kernel logged nothing of it.
    expect(amdViDomain('amd_iommu=nohugepages,pgtbl_v1', { dmesg: '' }).pgsizeBitmap).to.equal(0x1000n);
  });
  it('refuses to guess the aperture of a v2 table', () => {
    expect(() => amdViDomain('amd_iommu=pgtbl_v2')).to.throw(/not derived/);
  });
  it('reads MSI isolation from "AMD-Vi: Interrupt remapping enabled"', () => {
    const p = type1PlatformFrom({ ...common, driver: 'amd-iommu', cmdline: '', dmesg: AMD_DMESG });
    expect(p.interruptRemapping).to.equal(true);
    expect(interruptRemappingFrom('AMD-Vi: Using strict mode due to virtualization\n')).to.equal(false);
    // /proc/interrupts of the amd guest: the IOMMU's own event MSI (00:03.0) is plain, every device's remapped.
    const interrupts = ' 24:  1  PCI-MSI-0000:00:03.0    0-edge      AMD-Vi\n 25:  9  IR-PCI-MSIX-0000:00:01.0    0-edge      virtio0-config\n';
    expect(() => interruptRemappingFrom('', interrupts)).to.throw(/mixes/);
    expect(interruptRemappingFrom('', interrupts, ['0000:00:03.0'])).to.equal(true);
  });
});

// 7.x builds AMD-Vi's v1 table on generic_pt, sized by amd_iommu_hpt_vasize (amdViDomain's comment). QEMU 7.2's
// IVHD carries no EFR ("Using global IVHD EFR:0x0", as on 6.12.117's boot), so HATS is 0: a 48-bit table.
const AMD_EFR_LINE = '[    0.234474] AMD-Vi: Using global IVHD EFR:0x0, EFR2:0x0\n';
const hatsEfr = (hats: number) => `AMD-Vi: Using global IVHD EFR:${`0x${(BigInt(hats) << 10n).toString(16)}`}, EFR2:0x0\n`;
const vasizeIvinfo = (bits: number) => (bits << 15) | 1;

describe('platform facts: AMD-Vi on the generic page table (7.x)', () => {
  it('takes amd_iommu_hpt_vasize from the IVHD EFR at boot and IVinfo: min(VASIZE or 64, (HATS + 3) * 9 + 21)', () => {
    expect(amdHptVasize(AMD_EFR_LINE, 0)).to.equal(48);
    expect(amdHptVasize(hatsEfr(1), 0)).to.equal(57);
    expect(amdHptVasize(hatsEfr(2), 0)).to.equal(64);
    expect(amdHptVasize(hatsEfr(2), vasizeIvinfo(48))).to.equal(48);
    expect(amdHptVasize(hatsEfr(1), vasizeIvinfo(64))).to.equal(57);
    expect(() => amdHptVasize(hatsEfr(3), 0)).to.throw(/amd_iommu_hatdis/);
    expect(() => amdHptVasize(AMD_DMESG, 0)).to.throw(/Using global IVHD EFR/);
    expect(() => amdHptVasize(AMD_EFR_LINE, undefined)).to.throw(/IVRS/);
  });
  it('gives a 48-bit table: aperture 2^48 - 1, every size from 4 KiB to 2^46 but 512 GiB (no level-4 leaf, no whole-table size)', () => {
    const d = amdViDomain('', { genericPt: true, dmesg: AMD_EFR_LINE, ivinfo: 0 });
    expect(d.aperture).to.deep.equal({ start: 0n, last: (1n << 48n) - 1n });
    expect(d.pgsizeBitmap).to.equal(0x7f7ffffff000n);
    expect(d.enforceCacheCoherency).to.equal(true);
  });
  it('gives the 64-bit table 6.12 gives where HATS and VASIZE allow 64 bits', () => {
    const d = amdViDomain('', { genericPt: true, dmesg: hatsEfr(2), ivinfo: 0 });
    expect(d.aperture).to.deep.equal({ start: 0n, last: U64_MAX });
    expect(d.pgsizeBitmap).to.equal(AMD_IOMMU_PGSIZES);
  });
  it('narrows by amd_iommu= as 6.12 does, and a 57-bit table keeps its level-4 sizes up to 2^51', () => {
    expect(amdViDomain('amd_iommu=nohugepages', { genericPt: true, dmesg: AMD_EFR_LINE, ivinfo: 0 }).pgsizeBitmap).to.equal(0x1000n);
    expect(amdViDomain('amd_iommu=v2_pgsizes_only', { genericPt: true, dmesg: AMD_EFR_LINE, ivinfo: 0 }).pgsizeBitmap).to.equal(0x40201000n);
    expect(amdViDomain('', { genericPt: true, dmesg: hatsEfr(1), ivinfo: 0 }).pgsizeBitmap).to.equal(AMD_IOMMU_PGSIZES);
    expect(amdViDomain('', { genericPt: true, dmesg: hatsEfr(1), ivinfo: 0 }).pgsizeBitsUnknown).to.equal(undefined);
  });
  it('is chosen by the generic page table probe, not by anything else the guest shows', () => {
    const sources = { ...common, driver: 'amd-iommu' as const, cmdline: '', dmesg: AMD_EFR_LINE + AMD_DMESG, amdIvinfo: 0 };
    expect(type1PlatformFrom(sources).aperture.last).to.equal(U64_MAX);
    expect(type1PlatformFrom({ ...sources, probes: { genericPt: true } }).aperture.last).to.equal((1n << 48n) - 1n);
  });
});

describe('platform facts: virtio-iommu', () => {
  it("takes the page mask and input width of viommu_probe's log", () => {
    const d = virtioIommuDomain(VIRTIO_DMESG);
    expect(d.pgsizeBitmap).to.equal(0xfffffffffffff000n);
    expect(d.aperture).to.deep.equal({ start: 0n, last: U64_MAX });
    expect(virtioIommuDomain(VIRTIO_DMESG.replace('64 bits', '48 bits')).aperture.last).to.equal((1n << 48n) - 1n);
    expect(d.enforceCacheCoherency).to.equal(false);
  });
  it('has no MSI isolation, and says so when the log lacks its lines', () => {
    expect(type1PlatformFrom({ ...common, driver: 'virtio-iommu', cmdline: '', dmesg: VIRTIO_DMESG }).interruptRemapping).to.equal(false);
    expect(() => virtioIommuDomain('')).to.throw(/page mask/);
  });
});

describe('platform facts: the unit serving a group', () => {
  let sys: string;
  beforeEach(() => {
    sys = mkdtempSync(join(tmpdir(), 'iommu-sysfs-'));
  });
  afterEach(() => rmSync(sys, { recursive: true, force: true }));

  function group(unit: string) {
    mkdirSync(join(sys, 'class/iommu', unit), { recursive: true });
    mkdirSync(join(sys, 'kernel/iommu_groups/3/devices/0000:00:04.0'), { recursive: true });
    symlinkSync(join(sys, 'class/iommu', unit), join(sys, 'kernel/iommu_groups/3/devices/0000:00:04.0/iommu'));
  }
  it('knows intel-iommu and amd-iommu by their attribute group', () => {
    group('ivhd0');
    mkdirSync(join(sys, 'class/iommu/ivhd0/amd-iommu'));
    expect(iommuUnitOfGroup(3, sys)).to.deep.equal({ unit: 'ivhd0', driver: 'amd-iommu' });
  });
  it('knows virtio-iommu by the driver of its parent device', () => {
    group('0000:00:03.0');
    mkdirSync(join(sys, 'devices/virtio0'), { recursive: true });
    mkdirSync(join(sys, 'bus/virtio/drivers/virtio_iommu'), { recursive: true });
    symlinkSync(join(sys, 'bus/virtio/drivers/virtio_iommu'), join(sys, 'devices/virtio0/driver'));
    symlinkSync(join(sys, 'devices/virtio0'), join(sys, 'class/iommu/0000:00:03.0/device'));
    expect(iommuUnitOfGroup(3, sys)).to.deep.equal({ unit: '0000:00:03.0', driver: 'virtio-iommu' });
  });
  it('names a unit of an unknown driver', () => {
    group('smmu0');
    expect(() => iommuUnitOfGroup(3, sys)).to.throw(/smmu0/);
  });
});

describe('platform profiles', () => {
  it('are not in "all", and ask their kernel for platform-iommus.config', () => {
    expect(parseProfiles('all')).to.deep.equal(['mock', 'viommu']);
    expect(parseProfiles('amd,virtio')).to.deep.equal(['amd', 'virtio']);
    expect(kernelFragmentsOf(['mock', 'viommu'])).to.deep.equal([]);
    expect(kernelFragmentsOf(['viommu', 'amd', 'virtio'])).to.deep.equal(['platform-iommus.config']);
  });
  it('put the extra fragment last, so it overrides a default one', () => {
    const tree = mkdtempSync(join(tmpdir(), 'tree-'));
    try {
      const names = fragmentsFor('base', tree, ['platform-iommus.config']).map((f) => f.split('/').pop());
      expect(names).to.deep.equal(['base.config', 'platform-iommus.config']);
      expect(() => fragmentsFor('base', tree, ['nope.config'])).to.throw(/nope.config/);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
