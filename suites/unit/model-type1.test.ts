// The type1 reference model (lib/model/type1.ts) on its own: the scenarios of
// iommufd-semantics.md §7 and the type1 column of §8. Every expectation was
// run on the real kernel first: a probe drove the same operations on
// /dev/vfio/vfio and on the model side by side, 209 checks and no difference
// (out/type1-probe/probe3.ts). The platform below is that VM's
// (QEMU intel-iommu: cap d2008c22260286, ecap f00f4a, 39-bit host address
// width, interrupt remapping on; the edu device's group with the MSI window).
import { expect } from 'chai';
import { ModelProcess, PROT_READ, PROT_WRITE } from '../../lib/model/process.ts';
import { Type1ContainerModel, Type1GroupModel, type Type1Platform } from '../../lib/model/type1.ts';
import { AMD_IO_PGTABLE_PGSIZES_UNKNOWN, AMD_IOMMU_PGSIZES, intelVtdDomain, type1PlatformFrom, userPtrMaxFrom } from '../../lib/model/type1-platform.ts';
import * as U from '../../lib/uapi/index.ts';
import { AMD_IO_PGTABLE_PLATFORM } from '../support/platforms.ts';

const EPERM = 1, ENOENT = 2, EBADF = 9, ENOMEM = 12, EACCES = 13, EFAULT = 14, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOTTY = 25,
  ENOSPC = 28, EBADFD = 77;
const RW = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
const VA = 0x7f00_0000_0000n;
const MB = 0x100000n;
const USER_PTR_MAX_LA57 = (1n << 56n) - 4096n;

const VM_PLATFORM: Type1Platform = type1PlatformFrom({
  reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n',
  intelCap: 'd2008c22260286\n',
  intelEcap: 'f00f4a\n',
  cmdline: 'console=ttyS0 intel_iommu=on',
  dmesg: '[    0.224775] DMAR-IR: Enabled IRQ remapping in xapic mode\n',
  allowUnsafeInterrupts: 'N\n',
  dmaEntryLimit: '65535\n',
});

interface Setup {
  proc: ModelProcess;
  c: Type1ContainerModel;
  g: Type1GroupModel;
}

/** A process with 4 MiB of shared RW memory at VA, a container with the edu group; `type` 0 leaves SET_IOMMU undone. */
function setup(type = U.VFIO_TYPE1v2_IOMMU, platform: Type1Platform = VM_PLATFORM): Setup {
  const proc = new ModelProcess();
  proc.memory.map(VA, 4n * MB, PROT_READ | PROT_WRITE, true);
  const c = new Type1ContainerModel(proc, { userPtrMax: USER_PTR_MAX_LA57 });
  const g = new Type1GroupModel(3, platform);
  expect(g.setContainer(c).errno).to.equal(0);
  if (type !== 0) expect(c.setIommu(type).errno).to.equal(0);
  return { proc, c, g };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('model.type1', () => {
  describe('platform (type1-platform.ts)', () => {
    // confirmed on 6.12.117 in the viommu VM: GET_INFO's iova_pgsizes 0x40201000 and ranges
    // [0, 0xfedfffff], [0xfef00000, 0x7fffffffff] (dmesg: "DMAR: Host address width 39").
    it('derives the VT-d domain: 4K|2M|1G, aperture 2^39-1, no snoop control', () => {
      expect(VM_PLATFORM.pgsizeBitmap).to.equal(0x40201000n);
      expect(VM_PLATFORM.aperture).to.deep.equal({ start: 0n, last: 0x7f_ffff_ffffn });
      expect(VM_PLATFORM.enforceCacheCoherency).to.equal(false);
      expect(VM_PLATFORM.interruptRemapping).to.equal(true);
      expect(VM_PLATFORM.reservedRegions).to.deep.equal([{ start: 0xfee00000n, last: 0xfeefffffn, type: 'msi' }]);
    });
    it('sp_off drops the superpages (domain_update_iommu_superpage)', () => {
      expect(intelVtdDomain('d2008c22260286', 'f00f4a', 'intel_iommu=on,sp_off').pgsizeBitmap).to.equal(0x1000n);
    });
    // confirmed on 6.12.117 in the viommu VM: a bitmap at 0x7ffffffff000 passes access_ok (EFAULT, not EINVAL): la57 is on.
    it('USER_PTR_MAX follows 5-level paging', () => {
      expect(userPtrMaxFrom('flags\t\t: fpu vme la57 rdpid\n')).to.equal(USER_PTR_MAX_LA57);
      expect(userPtrMaxFrom('flags\t\t: fpu vme\n')).to.equal((1n << 47n) - 4096n);
    });
  });

  // confirmed on 6.12.117 in the viommu VM
  describe('container states (container.c)', () => {
    it('answers GET_API_VERSION and CHECK_EXTENSION with no group and no driver', () => {
      const c = new Type1ContainerModel(new ModelProcess());
      expect(c.getApiVersion()).to.deep.equal({ errno: 0, version: 0 });
      const values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1000].map((e) => c.checkExtension(e).value);
      // TYPE1, TYPE1v2, NESTING, UNMAP_ALL; UPDATE_VADDR and DMA_CC_IOMMU need an iommu (NULL here).
      expect(values).to.deep.equal([1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]);
    });
    it('refuses SET_IOMMU without a group, and everything else without a driver (EINVAL)', () => {
      const c = new Type1ContainerModel(new ModelProcess());
      expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(EINVAL);
      expect(c.getInfo().errno).to.equal(EINVAL);
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: MB, size: 4096n }).errno).to.equal(EINVAL);
      expect(c.unmapDma({ iova: MB, size: 4096n })).to.deep.equal({ errno: EINVAL, size: 4096n });
      expect(c.dirtyPages({ flags: 1 }).errno).to.equal(EINVAL);
      expect(c.ioctl(U.VFIO_IOMMU_ENABLE).errno).to.equal(EINVAL);
    });
    it('with a group but no driver: still EINVAL for GET_INFO', () => {
      const { c, g } = setup(0);
      expect(g.getStatus().flags).to.equal(U.VFIO_GROUP_FLAGS_VIABLE | U.VFIO_GROUP_FLAGS_CONTAINER_SET);
      expect(c.getInfo().errno).to.equal(EINVAL);
      expect(c.checkExtension(U.VFIO_UPDATE_VADDR).value).to.equal(0);
    });
    // The reference lists ENODEV for types no driver claims. VFIO_UNMAP_ALL (9) is claimed by
    // type1's check_extension but refused by vfio_iommu_type1_open → EINVAL (the "last error").
    // NESTING (6) opens, then vfio_iommu_type1_attach_group fails in iommu_enable_nesting: the
    // Intel driver has no enable_nesting op → EINVAL (the reference's UNSURE, settled).
    it('SET_IOMMU: ENODEV for unclaimed types, EINVAL for 9 and 6, 0 for TYPE1v2, then EINVAL', () => {
      const { c } = setup(0);
      const results = [2, 5, 7, 8, 10, 11, 9, 6].map((t) => c.setIommu(t).errno);
      expect(results).to.deep.equal([ENODEV, ENODEV, ENODEV, ENODEV, ENODEV, ENODEV, EINVAL, EINVAL]);
      expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
      expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(EINVAL);
      expect(c.setIommu(U.VFIO_TYPE1_IOMMU).errno).to.equal(EINVAL);
    });
    it('with the driver set: UPDATE_VADDR 1, DMA_CC_IOMMU 0 (no snoop control), ENABLE/DISABLE/unknown ENOTTY', () => {
      const { c } = setup();
      expect([1, 3, 4, 6, 9, 10].map((e) => c.checkExtension(e).value)).to.deep.equal([1, 1, 0, 1, 1, 1]);
      expect(c.ioctl(U.VFIO_IOMMU_ENABLE).errno).to.equal(ENOTTY);
      expect(c.ioctl(U.VFIO_IOMMU_DISABLE).errno).to.equal(ENOTTY);
      expect(c.ioctl(0x3b7f).errno).to.equal(ENOTTY);
    });
    it('without interrupt remapping SET_IOMMU is EPERM unless allow_unsafe_interrupts', () => {
      const noIr = { ...VM_PLATFORM, interruptRemapping: false };
      const { c } = setup(0, noIr);
      expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(EPERM);
      expect(c.driverSet).to.equal(false);
      const ok = setup(0, { ...noIr, allowUnsafeInterrupts: true });
      expect(ok.c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
    });
    it('the last group detach (unset or close) releases the driver and every pin', () => {
      const { proc, c, g } = setup();
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: MB, size: 0x10000n }).errno).to.equal(0);
      expect(proc.mmLockedVm).to.equal(16n);
      expect(g.unsetContainer().errno).to.equal(0);
      expect(proc.mmLockedVm).to.equal(0n);
      expect(c.getInfo().errno).to.equal(EINVAL);
      expect(c.checkExtension(U.VFIO_UPDATE_VADDR).value).to.equal(0);
      expect(g.unsetContainer().errno).to.equal(EINVAL);
      // Re-attached and set again: a fresh driver, all entries available.
      expect(g.setContainer(c).errno).to.equal(0);
      expect(c.setIommu(U.VFIO_TYPE1_IOMMU).errno).to.equal(0);
      const avail = c.getInfo().caps;
      expect(avail.ok && avail.caps.find((x) => x.kind === 'dma_avail')).to.include({ avail: 65535 });
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: MB, size: 0x10000n }).errno).to.equal(0);
      expect(g.close().errno).to.equal(0);
      expect(proc.mmLockedVm).to.equal(0n);
      expect(c.driverSet).to.equal(false);
    });
    it('closing the container fd keeps the driver while the group holds it', () => {
      const { proc, c, g } = setup();
      c.mapDma({ flags: RW, vaddr: VA, iova: MB, size: 0x10000n });
      c.close();
      expect(proc.mmLockedVm).to.equal(16n);
      expect(g.getStatus().containerSet).to.equal(true);
      expect(g.unsetContainer().errno).to.equal(0);
      expect(proc.mmLockedVm).to.equal(0n);
    });
    it('group SET_CONTAINER: EINVAL when set, EBADFD for another file, EBADF for a bad fd', () => {
      const { g } = setup(0);
      expect(g.setContainer(new Type1ContainerModel(new ModelProcess())).errno).to.equal(EINVAL);
      const other = new Type1GroupModel(3, VM_PLATFORM);
      expect(other.setContainer('other-file').errno).to.equal(EBADFD);
      expect(other.setContainer('bad-fd').errno).to.equal(EBADF);
    });
  });

  // confirmed on 6.12.117 in the viommu VM (byte for byte, on a buffer prefilled with 0xaa)
  describe('VFIO_IOMMU_GET_INFO (vfio_iommu_type1_get_info)', () => {
    const raw = (c: Type1ContainerModel, argsz: number) => {
      const b = new Uint8Array(160).fill(0xaa);
      new DataView(b.buffer).setUint32(0, argsz, true);
      return { errno: c.getInfoInto(b), b };
    };
    const HEAD = '78000000' + '03000000' + '0010204000000000';
    it('argsz < 16: EINVAL, nothing written', () => {
      const { c } = setup();
      expect(raw(c, 15).errno).to.equal(EINVAL);
      expect(hex(raw(c, 15).b.subarray(4, 8))).to.equal('aaaaaaaa');
    });
    it('16 <= argsz < 24: writes exactly argsz bytes; argsz := 120 (24 + 32 + 16 + 16 + 2*16)', () => {
      const { c } = setup();
      expect(hex(raw(c, 16).b.subarray(0, 20))).to.equal(HEAD + 'aaaaaaaa');
      expect(hex(raw(c, 20).b.subarray(0, 24))).to.equal(HEAD + '00000000' + 'aaaaaaaa');
    });
    it('24 <= argsz < 120: the info struct only, cap_offset 0, flags PGSIZES|CAPS', () => {
      const { c } = setup();
      const { b } = raw(c, 119);
      expect(hex(b.subarray(0, 28))).to.equal(HEAD + '0000000000000000' + 'aaaaaaaa');
    });
    it('argsz >= 120: the user argsz stays, caps MIGRATION → DMA_AVAIL → IOVA_RANGE at 24, 56, 72', () => {
      const { c } = setup();
      const { b } = raw(c, 121);
      expect(hex(b.subarray(0, 124))).to.equal(
        '79000000' + '03000000' + '0010204000000000' + '1800000000000000' +
          '0200010038000000' + '00000000' + '00000000' + '0010000000000000' + '0000001000000000' +
          '0300010048000000' + 'ffff0000' + '00000000' +
          '0100010000000000' + '02000000' + '00000000' + '0000000000000000' + 'ffffdffe00000000' + '0000f0fe00000000' + 'ffffffff7f000000' +
          'aaaaaaaa',
      );
    });
    it('the client-shaped result decodes the chain like VfioContainer.getInfo', () => {
      const { c } = setup();
      const info = c.getInfo();
      expect(info).to.include({ errno: 0, argsz: 4096, flags: 3, iovaPgsizes: 0x40201000n, capOffset: 24 });
      expect(info.caps.ok && info.caps.caps.map((x) => x.kind)).to.deep.equal(['migration', 'dma_avail', 'iova_range']);
      expect(c.getInfo({ argsz: 16 })).to.include({ argsz: 120, capOffset: 0 });
    });
  });

  // confirmed on 6.12.117 in the viommu VM
  describe('VFIO_IOMMU_MAP_DMA (vfio_dma_do_map)', () => {
    const cases: [string, Parameters<Type1ContainerModel['mapDma']>[0], number][] = [
      ['flags 0', { flags: 0, vaddr: VA, iova: MB, size: 4096n }, EINVAL],
      ['unknown flag', { flags: 8 | RW, vaddr: VA, iova: MB, size: 4096n }, EINVAL],
      ['VADDR|READ', { flags: 5, vaddr: VA, iova: MB, size: 4096n }, EINVAL],
      ['VADDR with no dma', { flags: 4, vaddr: VA, iova: MB, size: 4096n }, ENOENT],
      ['argsz 31', { flags: RW, vaddr: VA, iova: MB, size: 4096n, argsz: 31 }, EINVAL],
      ['size 0', { flags: RW, vaddr: VA, iova: MB, size: 0n }, EINVAL],
      ['size 2048', { flags: RW, vaddr: VA, iova: MB, size: 2048n }, EINVAL],
      ['iova + 2048', { flags: RW, vaddr: VA, iova: MB + 2048n, size: 4096n }, EINVAL],
      ['vaddr + 2048', { flags: RW, vaddr: VA + 2048n, iova: MB, size: 4096n }, EINVAL],
      ['iova wraps', { flags: RW, vaddr: VA, iova: 0xffff_ffff_ffff_f000n, size: 0x2000n }, EINVAL],
      ['iova ends at 2^64 (outside the aperture)', { flags: RW, vaddr: VA, iova: 0xffff_ffff_ffff_f000n, size: 0x1000n }, EINVAL],
      ['vaddr wraps', { flags: RW, vaddr: 0xffff_ffff_ffff_f000n, iova: MB, size: 0x2000n }, EINVAL],
      // Passes the wrap check (end exactly 2^64), then the pin finds no VMA.
      ['vaddr ends at 2^64', { flags: RW, vaddr: 0xffff_ffff_ffff_f000n, iova: MB, size: 0x1000n }, EFAULT],
      ['unmapped user VA', { flags: RW, vaddr: 0x10000n, iova: MB, size: 0x1000n }, EFAULT],
      ['MSI window', { flags: RW, vaddr: VA, iova: 0xfee00000n, size: 0x1000n }, EINVAL],
      ['straddling the MSI window', { flags: RW, vaddr: VA, iova: 0xfedff000n, size: 0x2000n }, EINVAL],
      ['below the MSI window', { flags: RW, vaddr: VA, iova: 0xfedff000n, size: 0x1000n }, 0],
      ['above the MSI window', { flags: RW, vaddr: VA, iova: 0xfef00000n, size: 0x1000n }, 0],
      ['last aperture page', { flags: RW, vaddr: VA, iova: (1n << 39n) - 0x1000n, size: 0x1000n }, 0],
      ['past the aperture', { flags: RW, vaddr: VA, iova: 1n << 39n, size: 0x1000n }, EINVAL],
    ];
    for (const [name, args, errno] of cases) {
      it(`${name} → ${errno}`, () => {
        expect(setup().c.mapDma(args).errno).to.equal(errno);
      });
    }
    it('overlap is EEXIST, even when partly outside the valid ranges (overlap checked first)', () => {
      const { c } = setup();
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 0xfedff000n, size: 0x1000n }).errno).to.equal(0);
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 0xfed00000n, size: 0x200000n }).errno).to.equal(EEXIST);
    });
    it('page protections: a write pin needs VM_WRITE, a read pin VM_READ', () => {
      const { proc, c } = setup();
      const RO = 0x7e00_0000_0000n, WO = 0x7e10_0000_0000n, NONE = 0x7e20_0000_0000n;
      proc.memory.map(RO, 0x10000n, PROT_READ, false);
      proc.memory.map(WO, 0x10000n, PROT_WRITE, false);
      proc.memory.map(NONE, 0x10000n, 0, false);
      expect(c.mapDma({ flags: RW, vaddr: RO, iova: 0x3000000n, size: 0x10000n }).errno).to.equal(EFAULT);
      expect(c.mapDma({ flags: 1, vaddr: RO, iova: 0x3000000n, size: 0x10000n }).errno).to.equal(0);
      expect(c.mapDma({ flags: 1, vaddr: WO, iova: 0x4000000n, size: 0x10000n }).errno).to.equal(EFAULT);
      expect(c.mapDma({ flags: 2, vaddr: WO, iova: 0x4000000n, size: 0x10000n }).errno).to.equal(0);
      expect(c.mapDma({ flags: 1, vaddr: NONE, iova: 0x5000000n, size: 0x10000n }).errno).to.equal(EFAULT);
      // A read-only pin of untouched private memory is charged too: FOLL_LONGTERM unshares the zero page.
      expect(proc.mmLockedVm).to.equal(32n);
    });
    it('a fault part way leaves nothing charged and the entry returned', () => {
      const { proc, c } = setup();
      const P = 0x7e30_0000_0000n;
      proc.memory.map(P, 0x4000n, PROT_READ | PROT_WRITE, false);
      expect(c.mapDma({ flags: RW, vaddr: P, iova: MB, size: 0x10000n }).errno).to.equal(EFAULT);
      expect(proc.mmLockedVm).to.equal(0n);
      const caps = c.getInfo().caps;
      expect(caps.ok && caps.caps.find((x) => x.kind === 'dma_avail')).to.include({ avail: 65535 });
    });
  });

  // confirmed on 6.12.117 in the viommu VM: VmLck moves by exactly these pages, VmPin stays 0
  describe('accounting (vfio_pin_pages_remote, __account_locked_vm)', () => {
    it('charges mm->locked_vm per mapping, twice for the same vaddr, never pinned_vm', () => {
      const { proc, c } = setup();
      c.mapDma({ flags: RW, vaddr: VA, iova: MB, size: MB });
      c.mapDma({ flags: RW, vaddr: VA, iova: 16n * MB, size: MB });
      expect(proc.mmLockedVm).to.equal(512n);
      expect(proc.mmPinnedVm).to.equal(0n);
      expect(c.unmapDma({ flags: U.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n })).to.deep.equal({ errno: 0, size: 2n * MB });
      expect(proc.mmLockedVm).to.equal(0n);
    });
    it('RLIMIT_MEMLOCK: CAP_IPC_LOCK skips the limit but still charges; without it ENOMEM, nothing kept', () => {
      const { proc, c } = setup();
      proc.memlockLimit = 0x10000n; // 16 pages
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: MB, size: 0x20000n }).errno).to.equal(0);
      expect(proc.mmLockedVm).to.equal(32n);
      proc.credentials.ipcLock = false;
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 2n * MB, size: 0x8000n }).errno).to.equal(ENOMEM);
      c.unmapDma({ iova: MB, size: 0x20000n });
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 3n * MB, size: 0x8000n }).errno).to.equal(0);
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 4n * MB, size: 0x10000n }).errno).to.equal(ENOMEM);
      expect(proc.mmLockedVm).to.equal(8n);
      // Exactly at the limit is allowed (locked_vm + 1 > limit fails only past it).
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 5n * MB, size: 0x8000n }).errno).to.equal(0);
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 6n * MB, size: 0x1000n }).errno).to.equal(ENOMEM);
      expect(proc.mmLockedVm).to.equal(16n);
    });
    it('the first failing page decides: a fault before the limit is EFAULT, the limit before a fault ENOMEM', () => {
      const { proc, c } = setup();
      const P = 0x7e30_0000_0000n;
      proc.memory.map(P, 0x4000n, PROT_READ | PROT_WRITE, false);
      proc.credentials.ipcLock = false;
      proc.memlockLimit = 0x8000n;
      expect(c.mapDma({ flags: RW, vaddr: P, iova: MB, size: 0x10000n }).errno).to.equal(EFAULT);
      proc.memlockLimit = 0x2000n;
      expect(c.mapDma({ flags: RW, vaddr: P, iova: MB, size: 0x10000n }).errno).to.equal(ENOMEM);
      expect(proc.mmLockedVm).to.equal(0n);
    });
  });

  // confirmed on 6.12.117 in the viommu VM: dma_entry_limit lowered to 2/3 through sysfs
  describe('dma_entry_limit', () => {
    it('ENOSPC once dma_avail is 0, before the IOVA-range check; EEXIST and ENOENT still first', () => {
      const { c } = setup(U.VFIO_TYPE1v2_IOMMU, { ...VM_PLATFORM, dmaEntryLimit: 2 });
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: MB, size: 0x1000n }).errno).to.equal(0);
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 2n * MB, size: 0x1000n }).errno).to.equal(0);
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 3n * MB, size: 0x1000n }).errno).to.equal(ENOSPC);
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 0xfee00000n, size: 0x1000n }).errno).to.equal(ENOSPC);
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: MB, size: 0x1000n }).errno).to.equal(EEXIST);
      expect(c.mapDma({ flags: 4, vaddr: VA, iova: 9n * MB, size: 0x1000n }).errno).to.equal(ENOENT);
      c.unmapDma({ iova: MB, size: 0x1000n });
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 3n * MB, size: 0x1000n }).errno).to.equal(0);
    });
  });

  // confirmed on 6.12.117 in the viommu VM
  describe('VFIO_IOMMU_UNMAP_DMA v2 (vfio_dma_do_unmap)', () => {
    function threeMappings() {
      const s = setup();
      for (const iova of [0x100000n, 0x110000n, 0x200000n]) expect(s.c.mapDma({ flags: RW, vaddr: VA, iova, size: 0x10000n }).errno).to.equal(0);
      return s;
    }
    const errors: [string, Parameters<Type1ContainerModel['unmapDma']>[0]][] = [
      ['bisecting the middle of A', { iova: 0x104000n, size: 0x4000n }],
      ['the head of A', { iova: 0x100000n, size: 0x4000n }],
      ['all of A and the head of B (atomic: A stays)', { iova: 0x100000n, size: 0x14000n }],
      ['unaligned iova', { iova: 0x400800n, size: 0x10000n }],
      ['unaligned size', { iova: 0x400000n, size: 0x10800n }],
      ['size 0', { iova: 0x400000n, size: 0n }],
      ['wrapping', { iova: 0xffff_ffff_ffff_f000n, size: 0x2000n }],
      ['ALL with an iova', { flags: 2, iova: 0x100000n, size: 0n }],
      ['ALL with a size', { flags: 2, iova: 0n, size: 0x1000n }],
      ['an unknown flag', { flags: 8, iova: 0x100000n, size: 0x10000n }],
      ['argsz 23', { iova: 0x100000n, size: 0x10000n, argsz: 23 }],
      ['GET_DIRTY_BITMAP with tracking off', { flags: 1, iova: 0x100000n, size: 0x10000n }],
      ['GET_DIRTY_BITMAP|ALL', { flags: 3, iova: 0n, size: 0n }],
    ];
    for (const [name, args] of errors) {
      it(`${name}: EINVAL, the size not written back, nothing unmapped`, () => {
        const { c, proc } = threeMappings();
        expect(c.unmapDma(args)).to.deep.equal({ errno: EINVAL, size: BigInt(args.size) });
        expect(c.mappings.length).to.equal(3);
        expect(proc.mmLockedVm).to.equal(48n);
      });
    }
    it('nothing in range: 0, size 0; a range ending at exactly 2^64 finds nothing (the reference’s UNSURE)', () => {
      const { c } = threeMappings();
      expect(c.unmapDma({ iova: 0x400000n, size: 0x10000n })).to.deep.equal({ errno: 0, size: 0n });
      expect(c.unmapDma({ iova: 0xffff_ffff_ffff_f000n, size: 0x1000n })).to.deep.equal({ errno: 0, size: 0n });
    });
    it('exactly one mapping, then a superset over mappings and holes', () => {
      const { c, proc } = threeMappings();
      expect(c.unmapDma({ iova: 0x100000n, size: 0x10000n })).to.deep.equal({ errno: 0, size: 0x10000n });
      expect(c.unmapDma({ iova: 0n, size: 0x1000000n })).to.deep.equal({ errno: 0, size: 0x20000n });
      expect(proc.mmLockedVm).to.equal(0n);
    });
  });

  // confirmed on 6.12.117 in the viommu VM
  describe('VFIO_IOMMU_UNMAP_DMA v1 (SET_IOMMU(TYPE1))', () => {
    it('starting inside a mapping: 0 and size 0; covering a start: the whole mapping goes', () => {
      const { c } = setup(U.VFIO_TYPE1_IOMMU);
      c.mapDma({ flags: RW, vaddr: VA, iova: 0x100000n, size: 0x10000n });
      c.mapDma({ flags: RW, vaddr: VA, iova: 0x110000n, size: 0x10000n });
      expect(c.unmapDma({ iova: 0x104000n, size: 0x4000n })).to.deep.equal({ errno: 0, size: 0n });
      expect(c.unmapDma({ iova: 0x108000n, size: 0x10000n })).to.deep.equal({ errno: 0, size: 0n });
      expect(c.unmapDma({ iova: 0x100000n, size: 0x8000n })).to.deep.equal({ errno: 0, size: 0x10000n });
      expect(c.unmapDma({ iova: 0x110000n, size: 0x1000n })).to.deep.equal({ errno: 0, size: 0x10000n });
      c.mapDma({ flags: RW, vaddr: VA, iova: 0x120000n, size: 0x10000n });
      expect(c.unmapDma({ iova: 0x118000n, size: 0x10000n })).to.deep.equal({ errno: 0, size: 0x10000n });
      expect(c.unmapDma({ iova: 0x100800n, size: 0x1000n }).errno).to.equal(EINVAL);
    });
    it('DIRTY_PAGES is v2-only: EACCES', () => {
      expect(setup(U.VFIO_TYPE1_IOMMU).c.dirtyPages({ flags: 1 }).errno).to.equal(EACCES);
    });
  });

  // confirmed on 6.12.117 in the viommu VM
  describe('VFIO_UPDATE_VADDR (UNMAP/MAP with FLAG_VADDR)', () => {
    it('invalidate, re-set, roll back on an already-invalid entry; pins stay', () => {
      const { c, proc } = setup();
      c.mapDma({ flags: RW, vaddr: VA, iova: 0x100000n, size: 0x10000n });
      c.mapDma({ flags: RW, vaddr: VA, iova: 0x110000n, size: 0x10000n });
      expect(c.mapDma({ flags: 4, vaddr: VA, iova: 0x100000n, size: 0x10000n }).errno).to.equal(EINVAL); // not invalidated
      expect(c.unmapDma({ flags: 4, iova: 0x100000n, size: 0x10000n })).to.deep.equal({ errno: 0, size: 0x10000n });
      expect(proc.mmLockedVm).to.equal(32n);
      expect(c.unmapDma({ flags: 4, iova: 0x100000n, size: 0x20000n })).to.deep.equal({ errno: EINVAL, size: 0x20000n });
      expect(c.unmapDma({ flags: 4, iova: 0x110000n, size: 0x10000n })).to.deep.equal({ errno: 0, size: 0x10000n });
      expect(c.mapDma({ flags: 4, vaddr: VA, iova: 0x100000n, size: 0x8000n }).errno).to.equal(EINVAL); // wrong size
      expect(c.mapDma({ flags: RW, vaddr: VA, iova: 0x100000n, size: 0x10000n }).errno).to.equal(EEXIST);
      expect(c.mapDma({ flags: 4, vaddr: VA + MB, iova: 0x100000n, size: 0x10000n }).errno).to.equal(0);
      // ALL|VADDR: A is marked, B is already invalid → A rolled back, EINVAL.
      expect(c.unmapDma({ flags: 6, iova: 0n, size: 0n })).to.deep.equal({ errno: EINVAL, size: 0n });
      expect(c.mappings.map((m) => m.vaddrInvalid)).to.deep.equal([false, true]);
      expect(c.mapDma({ flags: 4, vaddr: VA, iova: 0x110000n, size: 0x10000n }).errno).to.equal(0);
      expect(c.unmapDma({ flags: 2, iova: 0n, size: 0n })).to.deep.equal({ errno: 0, size: 0x20000n });
      expect(proc.mmLockedVm).to.equal(0n);
    });
  });

  // confirmed on 6.12.117 in the viommu VM
  describe('VFIO_IOMMU_DIRTY_PAGES and UNMAP with GET_DIRTY_BITMAP', () => {
    const BM = 0x7e40_0000_0000n, RO = 0x7e50_0000_0000n;
    function tracking() {
      const s = setup();
      s.proc.memory.map(BM, 0x10000n, PROT_READ | PROT_WRITE, false);
      s.proc.memory.map(RO, 0x1000n, PROT_READ, false);
      for (const iova of [0x100000n, 0x200000n, 0x240000n]) s.c.mapDma({ flags: RW, vaddr: VA, iova, size: 0x10000n });
      return s;
    }
    const get = (iova: bigint, size: bigint, pgsize: bigint, bsize: bigint, data: bigint, argsz?: number) => ({
      flags: 4,
      tail: U.vfio_iommu_type1_dirty_bitmap_get.encode({ iova, size, bitmap: { pgsize, size: bsize, data } }),
      ...(argsz !== undefined ? { argsz } : {}),
    });
    it('flags: one at a time (0, 3, 6 and unknown bits EINVAL); START and STOP idempotent', () => {
      const { c } = tracking();
      expect([0, 3, 6, 8].map((f) => c.dirtyPages({ flags: f }).errno)).to.deep.equal([EINVAL, EINVAL, EINVAL, EINVAL]);
      expect(c.dirtyPages({ flags: 1, argsz: 7 }).errno).to.equal(EINVAL);
      expect(c.dirtyPages(get(0x100000n, 0x10000n, 0x1000n, 8n, BM)).errno).to.equal(EINVAL); // tracking off
      expect([2, 1, 1].map((f) => c.dirtyPages({ flags: f }).errno)).to.deep.equal([0, 0, 0]);
      expect(c.dirtyPages(get(0x100000n, 0x10000n, 0x1000n, 8n, BM)).errno).to.equal(0);
    });
    it('GET_BITMAP checks in order', () => {
      const { c } = tracking();
      c.dirtyPages({ flags: 1 });
      const cases: [ReturnType<typeof get>, number][] = [
        [{ flags: 4 } as ReturnType<typeof get>, EINVAL], // no range struct
        [get(0x100000n, 0x10000n, 0x1000n, 8n, BM, 47), EINVAL],
        [get(0xffff_ffff_ffff_f000n, 0x2000n, 0x1000n, 8n, BM), EINVAL],
        [get(0x100000n, 0x10000n, 0x1000n, 8n, USER_PTR_MAX_LA57 - 4n), EINVAL], // access_ok
        [get(0x100000n, 0x10000n, 0x1000n, 8n, 0x7fff_ffff_f000n), EFAULT], // inside USER_PTR_MAX with la57, unmapped
        [get(0x100000n, 0x10000n, 0x1000n, 0n, BM), EINVAL],
        [get(0x100000n, 0x800000n, 0x1000n, 8n, BM), EINVAL],
        [get(0x100000n, 0n, 0x1000n, 8n, BM), EINVAL],
        [get(0x100000n, 0x10000n, 0x2000n, 8n, BM), EINVAL],
        [get(0x100800n, 0x10000n, 0x1000n, 8n, BM), EINVAL],
        [get(0x104000n, 0x4000n, 0x1000n, 8n, BM), EINVAL],
        [get(0x100000n, 0x8000n, 0x1000n, 8n, BM), EINVAL],
        [get(0x100000n, 0x150000n, 0x1000n, 0x100n, BM), 0],
        [get(0x400000n, 0x10000n, 0x1000n, 8n, BM), 0],
        [get(0x100000n, 0x10000n, 0x1000n, 8n, 0x10000n), EFAULT],
        [get(0x100000n, 0x10000n, 0x1000n, 8n, RO), EFAULT],
        // A dma at a bit offset that is not a multiple of 64 merges into (reads) the user's u64 first.
        [get(0x1f0000n, 0x60000n, 0x1000n, 0x100n, RO), EFAULT],
        [get(0x1f0000n, 0x60000n, 0x1000n, 0x100n, BM), 0],
      ];
      expect(cases.map(([args]) => c.dirtyPages(args).errno)).to.deep.equal(cases.map(([, e]) => e));
    });
    it('UNMAP with GET_DIRTY_BITMAP: validation, EFAULT without write-back, then success', () => {
      const { c, proc } = tracking();
      c.dirtyPages({ flags: 1 });
      const t = (pgsize: bigint, size: bigint, data: bigint) => U.vfio_bitmap.encode({ pgsize, size, data });
      const r = (args: Parameters<Type1ContainerModel['unmapDma']>[0]) => c.unmapDma({ flags: 1, ...args });
      expect(r({ iova: 0x100000n, size: 0x10000n, tail: t(0x1000n, 8n, BM), argsz: 47 }).errno).to.equal(EINVAL);
      expect(r({ iova: 0x100000n, size: 0x10000n, tail: t(0x2000n, 8n, BM) }).errno).to.equal(EINVAL);
      expect(r({ iova: 0x100000n, size: 0x10000n, tail: t(0x1000n, 0n, BM) }).errno).to.equal(EINVAL);
      expect(r({ iova: 0x100000n, size: 0x10000n, tail: t(0x1000n, 8n, 0xffff_ffff_ffff_f000n) }).errno).to.equal(EINVAL);
      expect(r({ iova: 0x100000n, size: 0x200000n, tail: t(0x1000n, 0x100n, 0x10000n) })).to.deep.equal({ errno: EFAULT, size: 0x200000n });
      expect(r({ iova: 0x100000n, size: 0x200000n, tail: t(0x1000n, 0x100n, RO) }).errno).to.equal(EFAULT);
      expect(c.unmapDma({ flags: 5, iova: 0x100000n, size: 0x10000n, tail: t(0x1000n, 8n, BM) }).errno).to.equal(EINVAL);
      expect(proc.mmLockedVm).to.equal(48n);
      expect(r({ iova: 0x100000n, size: 0x10000n, tail: t(0x1000n, 8n, BM) })).to.deep.equal({ errno: 0, size: 0x10000n });
      c.dirtyPages({ flags: 2 });
      expect(r({ iova: 0x200000n, size: 0x10000n, tail: t(0x1000n, 8n, BM) }).errno).to.equal(EINVAL);
    });
  });
});

// KF-0006 (docs/findings/KF-0006.md), seen on 6.12.117 in the amd and virtio-unsafe guests: a mapping whose
// last byte is IOVA 2^64 - 1 (AMD-Vi's v1 aperture reaches it) is removed but stays charged, to the mm that
// made it; 7.2.13 gives it back. Both as Type1ModelOptions.unmapEndWrapLeaks says.
describe('model.type1: KF-0006, a mapping that ends at IOVA 2^64', () => {
  const AMD_PLATFORM = AMD_IO_PGTABLE_PLATFORM;
  const TOP = (1n << 64n) - 0x10000n;
  function topMapping(unmapEndWrapLeaks: boolean) {
    const proc = new ModelProcess();
    proc.memory.map(VA, 4n * MB, PROT_READ | PROT_WRITE, true);
    const c = new Type1ContainerModel(proc, { userPtrMax: USER_PTR_MAX_LA57, unmapEndWrapLeaks });
    const g = new Type1GroupModel(3, AMD_PLATFORM);
    expect(g.setContainer(c).errno).to.equal(0);
    expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
    return { proc, c, g };
  }
  it('GET_INFO leaves iova_pgsizes bits 2^52.. unknown (written as 0) unless another domain\'s known 0 clears them', () => {
    const { c } = topMapping(true);
    const info = c.getInfo();
    expect(info.iovaPgsizes).to.equal(AMD_IOMMU_PGSIZES);
    expect(info.iovaPgsizesUnknown).to.equal(AMD_IO_PGTABLE_PGSIZES_UNKNOWN);
    // A VT-d group in the same container (its own domain, 4K|2M|1G): the AND is known.
    const vtd = new Type1GroupModel(4, VM_PLATFORM);
    expect(vtd.setContainer(c).errno).to.equal(0);
    expect(c.getInfo()).to.include({ iovaPgsizes: 0x40201000n });
    expect(c.getInfo().iovaPgsizesUnknown).to.equal(undefined);
  });
  it('6.12: UNMAP_DMA of its range finds nothing (0, size 0); UNMAP_ALL removes it after a lower mapping, and its 16 pages stay charged', () => {
    const { proc, c } = topMapping(true);
    expect(c.mapDma({ flags: RW, vaddr: VA, iova: TOP, size: 0x10000n }).errno).to.equal(0);
    expect(c.mapDma({ flags: RW, vaddr: VA, iova: TOP - 0x10000n, size: 0x10000n }).errno).to.equal(0);
    expect(proc.mmLockedVm).to.equal(32n);
    // vfio_dma_do_unmap's `dma->iova >= iova + size` wraps to 0; UNMAP_ALL's walk starts at the lower one.
    expect(c.unmapDma({ iova: TOP, size: 0x10000n })).to.deep.equal({ errno: 0, size: 0n });
    expect(c.unmapDma({ flags: U.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n })).to.deep.equal({ errno: 0, size: 0x20000n });
    expect(c.mappings).to.deep.equal([]);
    expect(proc.mmLockedVm).to.equal(16n);
  });
  it('6.12: alone, not even UNMAP_ALL finds it (seen in the amd guest); the group leaving removes it, its pages stay charged', () => {
    const { proc, c, g } = topMapping(true);
    expect(c.mapDma({ flags: RW, vaddr: VA, iova: TOP, size: 0x10000n }).errno).to.equal(0);
    // vfio_find_dma_first_node's `start < dma->iova + dma->size` wraps to 0 for it.
    expect(c.unmapDma({ flags: U.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n })).to.deep.equal({ errno: 0, size: 0n });
    expect(c.mappings.map((m) => m.iova)).to.deep.equal([TOP]);
    expect(g.unsetContainer().errno).to.equal(0);
    expect(c.mappings).to.deep.equal([]);
    expect(proc.mmLockedVm).to.equal(16n);
  });
  it('6.12: closing the container leaks it too (vfio_iommu_unmap_unpin_all -> vfio_remove_dma)', () => {
    const { proc, c, g } = topMapping(true);
    expect(c.mapDma({ flags: RW, vaddr: VA, iova: TOP, size: 0x10000n }).errno).to.equal(0);
    g.close();
    c.close();
    expect(proc.mmLockedVm).to.equal(16n);
  });
  it('7.2: UNMAP_DMA of its range removes it, and the pages come back', () => {
    const { proc, c } = topMapping(false);
    expect(c.mapDma({ flags: RW, vaddr: VA, iova: TOP, size: 0x10000n }).errno).to.equal(0);
    expect(c.unmapDma({ iova: TOP, size: 0x10000n })).to.deep.equal({ errno: 0, size: 0x10000n });
    expect(proc.mmLockedVm).to.equal(0n);
  });
  it('charges the mm of the process that mapped (a forked child), and leaks there', () => {
    const { proc, c, g } = topMapping(true);
    const child = proc.fork();
    expect(c.asProcess(child, () => c.mapDma({ flags: RW, vaddr: VA, iova: TOP, size: 0x10000n })).errno).to.equal(0);
    expect([proc.mmLockedVm, child.mmLockedVm]).to.deep.equal([0n, 16n]);
    expect(c.unmapDma({ iova: TOP, size: 0x10000n }).size).to.equal(0n);
    g.close();
    c.close();
    expect([proc.mmLockedVm, child.mmLockedVm]).to.deep.equal([0n, 16n]);
    const { c: c2 } = topMapping(false);
    const child2 = new ModelProcess({ memory: proc.memory, pagePins: new Map() });
    expect(c2.asProcess(child2, () => c2.mapDma({ flags: RW, vaddr: VA, iova: TOP - 0x10000n, size: 0x10000n })).errno).to.equal(0);
    expect(c2.unmapDma({ iova: TOP - 0x10000n, size: 0x10000n }).errno).to.equal(0);
    expect(child2.mmLockedVm).to.equal(0n);
  });
});
