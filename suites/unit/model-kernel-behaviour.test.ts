// The model's rules for kernels that changed after 6.12 (lib/model/kernel-behaviour.ts), each against the
// baseline (6.12) it replaces. Every expectation on the switched side was first seen in lockstep on 7.2.13
// in the mock VM ("confirmed on 7.2.13").
import { expect } from 'chai';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { BASELINE_BEHAVIOUR, type KernelBehaviour } from '../../lib/model/kernel-behaviour.ts';
import { ModelProcess, PROT_READ, PROT_WRITE } from '../../lib/model/process.ts';
import { Type1ContainerModel, Type1GroupModel } from '../../lib/model/type1.ts';
import { type1PlatformFrom } from '../../lib/model/type1-platform.ts';
import * as U from '../../lib/uapi/index.ts';

const [ENOENT, ENOMEM, EINVAL, EOVERFLOW, EOPNOTSUPP] = [2, 12, 22, 75, 95];
const FIXED_RW = 1 | 2 | 4;
const MOCK_START = 0x100_0000n;
const BUF = 0x7f00_0000_1000n;
const HWPT_ALLOC_DIRTY_TRACKING = 2;
const HWPT_DATA_SELFTEST = 0xdead;
const GET_DIRTY_BITMAP_NO_CLEAR = 1;

function model(changes: Partial<KernelBehaviour> = {}) {
  const process = new ModelProcess();
  process.credentials = { ipcLock: true, sysResource: true };
  process.memory.map(BUF, 0x400000n, PROT_READ | PROT_WRITE, true);
  const fd = new IommufdModel(process, undefined, { ...BASELINE_BEHAVIOUR, ...changes });
  const ioasId = fd.ioasAlloc().ioasId;
  const mock = fd.testMockDomain({ ptId: ioasId });
  return { fd, ioasId, mock };
}

/** struct iommu_hwpt_selftest { iotlb, pagetable_type } */
function selftestData(pagetableType: number): Uint8Array {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setUint32(4, pagetableType, true);
  return data;
}

describe('model kernel behaviour: the generic page table mock (mockGenericPt)', () => {
  // confirmed on 7.2.13 in the mock VM
  it('takes struct iommu_hwpt_selftest for a paging HWPT (pagetable_type DEFAULT or HUGE), where 6.12 refused any data', () => {
    const pt = model({ mockGenericPt: true });
    const alloc = (m: typeof pt, data: Uint8Array) => m.fd.hwptAlloc({ devId: m.mock.idevId, ptId: m.ioasId, dataType: HWPT_DATA_SELFTEST, data }).errno;
    expect(alloc(pt, selftestData(0))).to.equal(0);
    expect(alloc(pt, selftestData(1))).to.equal(0);
    expect(alloc(pt, selftestData(2))).to.equal(EOPNOTSUPP);
    expect(alloc(pt, new Uint8Array(12))).to.equal(EINVAL);
    expect(alloc(model(), selftestData(0))).to.equal(EOPNOTSUPP);
  });

  // confirmed on 7.2.13 in the mock VM
  it('MOCK_IOMMUPT_HUGE: PAGE_SIZE | 1 MiB pages and the whole 2^38 aperture; MOCK_FLAGS_DEVICE_HUGE_IOVA is gone', () => {
    const m = model({ mockGenericPt: true });
    const ioas = m.fd.ioasAlloc().ioasId;
    expect(m.fd.hwptAlloc({ devId: m.mock.idevId, ptId: ioas, dataType: HWPT_DATA_SELFTEST, data: selftestData(1) }).errno).to.equal(0);
    const r = m.fd.ioasIovaRanges({ ioasId: ioas });
    expect(r.alignment).to.equal(4096n);
    expect(r.ranges).to.deep.equal([{ start: 0n, last: (1n << 38n) - 1n }]);
    expect(m.fd.testMockDomainFlags({ ptId: m.ioasId, devFlags: 2 }).errno).to.equal(EINVAL);
    expect(model().fd.testMockDomainFlags({ ptId: model().ioasId, devFlags: 2 }).errno).to.equal(0);
  });

  // confirmed on 7.2.13 in the mock VM (the WARN is KF-0001)
  it('refuses a mapping with neither READ nor WRITE (VFIO compat MAP_DMA flags 0) with EINVAL, after pinning nothing for good', () => {
    for (const [changes, errno] of [[{ mockGenericPt: true }, EINVAL], [{}, 0]] as const) {
      const m = model(changes);
      expect(m.fd.vfioIoas({ op: 1, ioasId: m.ioasId }).errno).to.equal(0);
      expect(m.fd.compat.setIommu(3).errno).to.equal(0);
      expect(m.fd.compat.mapDma({ flags: 0, vaddr: BUF, iova: MOCK_START, size: 4096n }).errno).to.equal(errno);
      if (errno) expect(m.fd.process.mmPinnedVm).to.equal(0n);
    }
  });

  // confirmed on 7.2.13 in the mock VM: 4 KiB leaves of two 2 KiB items, every marked bit counted
  it('marks and reports dirty bits per leaf PTE; with dirtyContigLeafShort a two-item leaf reads as its first item', () => {
    const read = (changes: Partial<KernelBehaviour>) => {
      const m = model({ mockGenericPt: true, ...changes });
      expect(m.fd.ioasMap({ ioasId: m.ioasId, flags: FIXED_RW, userVa: BUF, length: 8192n, iova: MOCK_START }).errno).to.equal(0);
      const hwptId = m.fd.hwptAlloc({ devId: m.mock.idevId, ptId: m.ioasId, flags: HWPT_ALLOC_DIRTY_TRACKING }).hwptId;
      expect(m.fd.hwptSetDirtyTracking({ hwptId, enable: true }).errno).to.equal(0);
      // the second 2 KiB of the first page, and 2 KiB past the mapping (counted all the same)
      const bits = new Uint8Array([0b10010]);
      expect(m.fd.testDirty({ hwptId, iova: MOCK_START, length: 10240n, pageSize: 2048n, uptr: BUF, bits }).nrDirty).to.equal(2n);
      const bitmap = new Uint8Array(1);
      expect(m.fd.hwptGetDirtyBitmap({ hwptId, flags: GET_DIRTY_BITMAP_NO_CLEAR, iova: MOCK_START, length: 8192n, pageSize: 2048n, bitmap }).errno).to.equal(0);
      return bitmap[0];
    };
    expect(read({})).to.equal(0b0011);
    expect(read({ dirtyContigLeafShort: true })).to.equal(0b0001);
  });
});

describe('model kernel behaviour: other changes', () => {
  // confirmed on 7.2.13 in the mock VM
  it('hwptInvalidateAnyObject: HWPT_INVALIDATE of an IOAS or a paging HWPT is EINVAL, of nothing ENOENT', () => {
    const inv = (fd: IommufdModel, hwptId: number) => fd.hwptInvalidate({ hwptId, dataType: 0xdeadbeef, entryLen: 8, entryNum: 0, entries: null }).errno;
    const m = model({ hwptInvalidateAnyObject: true });
    expect(inv(m.fd, m.ioasId)).to.equal(EINVAL);
    expect(inv(m.fd, m.mock.hwptId)).to.equal(EINVAL);
    expect(inv(m.fd, 999)).to.equal(ENOENT);
    const b = model();
    expect(inv(b.fd, b.ioasId)).to.equal(ENOENT);
  });

  // confirmed on 7.2.13 in the mock VM
  it('hwInfoAtsNotSupported and mockDevicePasid: capabilities 0b1001, out_max_pasid_log2 20 for a PASID mock device', () => {
    const m = model({ hwInfoAtsNotSupported: true, mockDevicePasid: true });
    expect(m.fd.getHwInfo({ devId: m.mock.idevId, dataLen: 0 }).capabilities).to.equal(0b1001n);
    const pasid = m.fd.testMockDomainFlags({ ptId: m.ioasId, devFlags: 4 });
    expect(pasid.errno).to.equal(0);
    expect(m.fd.getHwInfo({ devId: pasid.idevId, dataLen: 0 }).maxPasidLog2).to.equal(20);
    const b = model();
    expect(b.fd.getHwInfo({ devId: b.mock.idevId, dataLen: 0 }).capabilities).to.equal(1n);
    expect(b.fd.testMockDomainFlags({ ptId: b.ioasId, devFlags: 4 }).errno).to.equal(EINVAL);
  });

  // confirmed on 7.2.13 in the mock VM (audit map-dma.size-huge on compat-mock)
  it('userPagesOverflowFirst: a length that is both too big and wraps is EOVERFLOW, not EINVAL', () => {
    const map = (changes: Partial<KernelBehaviour>) => model(changes).fd.ioasMap({ ioasId: 1, flags: FIXED_RW, userVa: BUF, length: 0xffff_ffff_ffff_f000n, iova: MOCK_START }).errno;
    expect(map({ userPagesOverflowFirst: true })).to.equal(EOVERFLOW);
    expect(map({})).to.equal(EINVAL);
  });
});

describe('model kernel behaviour: type1 range checks (Type1ModelOptions.wrapOverflow)', () => {
  // From 7.2.13's vfio_dma_do_map / vfio_dma_do_unmap (check_add_overflow, EOVERFLOW), against 6.12's EINVAL.
  it('a MAP_DMA or UNMAP_DMA whose range wraps is EOVERFLOW, before the protection check; 6.12 said EINVAL', () => {
    // The viommu profile's VT-d, as tests/unit/model-type1.test.ts reads it.
    const platform = type1PlatformFrom({
      reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n',
      intelCap: 'd2008c22260286\n',
      intelEcap: 'f00f4a\n',
      cmdline: 'console=ttyS0 intel_iommu=on',
      dmesg: '[    0.224775] DMAR-IR: Enabled IRQ remapping in xapic mode\n',
      allowUnsafeInterrupts: 'N\n',
      dmaEntryLimit: '65535\n',
    });
    const run = (wrapOverflow: boolean) => {
      const process = new ModelProcess();
      process.memory.map(BUF, 0x400000n, PROT_READ | PROT_WRITE, true);
      const c = new Type1ContainerModel(process, { wrapOverflow });
      const g = new Type1GroupModel(3, platform);
      expect(g.setContainer(c).errno).to.equal(0);
      expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
      const top = 0xffff_ffff_ffff_f000n;
      return [
        c.mapDma({ flags: 3, vaddr: BUF, iova: top, size: 0x2000n }).errno,
        c.mapDma({ flags: 0, vaddr: BUF, iova: top, size: 0x2000n }).errno,
        c.unmapDma({ iova: top, size: 0x2000n }).errno,
        c.mapDma({ flags: 3, vaddr: BUF, iova: 0x10000n, size: 0n }).errno,
      ];
    };
    expect(run(true)).to.deep.equal([EOVERFLOW, EOVERFLOW, EOVERFLOW, EINVAL]);
    expect(run(false)).to.deep.equal([EINVAL, EINVAL, EINVAL, EINVAL]);
  });

  // Seen on 7.2.13 (viommu profile, audit set-iommu.type-nesting and check-extension.6-type1-nesting).
  it('nesting: false (VFIO_TYPE1_NESTING_IOMMU removed): CHECK_EXTENSION 0 with or without a driver, SET_IOMMU ENODEV', () => {
    const platform = type1PlatformFrom({
      reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n', intelCap: 'd2008c22260286\n', intelEcap: 'f00f4a\n',
      cmdline: 'console=ttyS0 intel_iommu=on', dmesg: 'DMAR-IR: Enabled IRQ remapping in xapic mode\n', allowUnsafeInterrupts: 'N\n', dmaEntryLimit: '65535\n',
    });
    for (const [nesting, claimed, setErrno] of [[false, 0, 19], [true, 1, 22]] as const) {
      const c = new Type1ContainerModel(new ModelProcess(), { nesting });
      expect(c.checkExtension(U.VFIO_TYPE1_NESTING_IOMMU).value).to.equal(claimed);
      const g = new Type1GroupModel(3, platform);
      expect(g.setContainer(c).errno).to.equal(0);
      expect(c.setIommu(U.VFIO_TYPE1_NESTING_IOMMU).errno).to.equal(setErrno);
      expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
      expect(c.checkExtension(U.VFIO_TYPE1_NESTING_IOMMU).value).to.equal(claimed);
    }
  });
});

describe('model kernel behaviour: type1 on kernels before 6.6 and 6.2 (capsAligned, zeroPage)', () => {
  const platform = () =>
    type1PlatformFrom({
      reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n', intelCap: 'd2008c22260286\n', intelEcap: 'f00f4a\n',
      cmdline: 'console=ttyS0 intel_iommu=on', dmesg: 'DMAR-IR: Enabled IRQ remapping in xapic mode\n', allowUnsafeInterrupts: 'N\n', dmaEntryLimit: '65535\n',
    });
  const container = (options: ConstructorParameters<typeof Type1ContainerModel>[1], shared = false) => {
    const process = new ModelProcess();
    process.credentials = { ipcLock: false, sysResource: true };
    process.memory.map(BUF, 0x10000n, PROT_READ | PROT_WRITE, shared);
    const c = new Type1ContainerModel(process, options);
    expect(new Type1GroupModel(3, platform()).setContainer(c).errno).to.equal(0);
    expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
    return { c, process };
  };

  // Seen on 6.1.192 (viommu profile, audit get-info.*): argsz 116 where 6.12 says 120.
  it('capsAligned: false packs the capability chain (dma_avail 12 bytes): argsz 4 less, iova_range at 4 mod 8', () => {
    const got = (capsAligned: boolean) => {
      const { c } = container({ capsAligned });
      const info = c.getInfo();
      expect(info.errno).to.equal(0);
      expect(info.caps.ok).to.equal(true);
      // A 24-byte argsz holds no capability: the kernel answers with the argsz it needs.
      return { argsz: c.getInfo({ argsz: 24 }).argsz, offsets: info.caps.ok ? info.caps.caps.map((cap) => `${cap.kind}@${cap.offset}`) : [] };
    };
    expect(got(true)).to.deep.equal({ argsz: 120, offsets: ['migration@24', 'dma_avail@56', 'iova_range@72'] });
    expect(got(false)).to.deep.equal({ argsz: 116, offsets: ['migration@24', 'dma_avail@56', 'iova_range@68'] });
  });

  // Seen on 6.1.192 (viommu profile, accounting): VmLck 0 for a read-only MAP_DMA of never-written memory.
  it('zeroPage: a read-only pin of a private page the platform shows as the zero page is neither charged nor limited', () => {
    const zeroPage = (address: bigint) => address >= BUF && address < BUF + 0x8000n; // the first 8 pages never written
    const { c, process } = container({ zeroPage });
    process.memlockLimit = 4n * 4096n;
    expect(c.mapDma({ flags: U.VFIO_DMA_MAP_FLAG_READ, vaddr: BUF, iova: 0x100000n, size: 0x8000n }).errno).to.equal(0);
    expect(process.mmLockedVm).to.equal(0n);
    // A write pin breaks COW: real pages, charged and limited.
    expect(c.mapDma({ flags: 3, vaddr: BUF, iova: 0x200000n, size: 0x8000n }).errno).to.equal(ENOMEM);
    expect(process.mmLockedVm).to.equal(0n);
    // Read-only over pages that are not the zero page: charged.
    expect(c.mapDma({ flags: U.VFIO_DMA_MAP_FLAG_READ, vaddr: BUF + 0x8000n, iova: 0x300000n, size: 0x4000n }).errno).to.equal(0);
    expect(process.mmLockedVm).to.equal(4n);
    // Shared memory is never the zero page, whatever the reader says.
    const shared = container({ zeroPage: () => true }, true);
    expect(shared.c.mapDma({ flags: U.VFIO_DMA_MAP_FLAG_READ, vaddr: BUF, iova: 0x100000n, size: 0x4000n }).errno).to.equal(0);
    expect(shared.process.mmLockedVm).to.equal(4n);
  });
});

describe('model kernel behaviour: GET_DIRTY_BITMAP of length 0 (dirtyBitmapZeroLength)', () => {
  // Found by the fuzzer on 7.2.13 (seed 2): kernel EOPNOTSUPP where the 6.12 model said EINVAL.
  const read = (m: ReturnType<typeof model>, hwptId: number, iova: bigint) =>
    m.fd.hwptGetDirtyBitmap({ hwptId, iova, length: 0n, pageSize: 2048n, bitmap: new Uint8Array(8) }).errno;
  it('6.12: EINVAL before anything else', () => {
    const m = model();
    const hwptId = m.fd.hwptAlloc({ devId: m.mock.idevId, ptId: m.ioasId }).hwptId;
    expect(read(m, hwptId, 0n)).to.equal(EINVAL);
  });
  it('7.x: length - 1 wraps: at IOVA 0 the whole space (EOPNOTSUPP without dirty tracking), elsewhere EOVERFLOW', () => {
    const m = model({ dirtyBitmapZeroLength: true });
    const hwptId = m.fd.hwptAlloc({ devId: m.mock.idevId, ptId: m.ioasId }).hwptId;
    expect(read(m, hwptId, 0n)).to.equal(EOPNOTSUPP);
    expect(read(m, hwptId, 0x1000n)).to.equal(EOVERFLOW);
  });
  // KF-0004, confirmed on 7.2.13 in the mock VM (suites/vm/mock/findings.test.ts)
  it('7.x, with dirty tracking: 0 and nothing read where no area covers IOVA 0 (every mock but MOCK_IOMMUPT_HUGE)', () => {
    const m = model({ dirtyBitmapZeroLength: true, mockGenericPt: true });
    expect(m.fd.ioasMap({ ioasId: m.ioasId, flags: FIXED_RW, userVa: BUF, length: 0x1000n, iova: MOCK_START }).errno).to.equal(0);
    const hwptId = m.fd.hwptAlloc({ devId: m.mock.idevId, ptId: m.ioasId, flags: HWPT_ALLOC_DIRTY_TRACKING }).hwptId;
    expect(m.fd.hwptSetDirtyTracking({ hwptId, enable: true }).errno).to.equal(0);
    expect(m.fd.testDirty({ hwptId, iova: MOCK_START, length: 0x1000n, pageSize: 0x1000n, uptr: BUF, bits: new Uint8Array([1]) }).errno).to.equal(0);
    const bitmap = new Uint8Array(8);
    expect(m.fd.hwptGetDirtyBitmap({ hwptId, iova: 0n, length: 0n, pageSize: 0x1000n, bitmap }).errno).to.equal(0);
    expect([...bitmap]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]);
    // the dirty bit is still there for a read that covers it
    expect(m.fd.hwptGetDirtyBitmap({ hwptId, iova: MOCK_START, length: 0x1000n, pageSize: 0x1000n, bitmap }).errno).to.equal(0);
    expect(bitmap[0]).to.equal(1);
  });
  it('7.x, with dirty tracking and areas from IOVA 0: their bits as if the bitmap had no end; past the buffer the model cannot answer', () => {
    const m = model({ dirtyBitmapZeroLength: true, mockGenericPt: true });
    const ioas = m.fd.ioasAlloc().ioasId;
    const hwptId = m.fd.hwptAlloc({ devId: m.mock.idevId, ptId: ioas, flags: HWPT_ALLOC_DIRTY_TRACKING, dataType: HWPT_DATA_SELFTEST, data: selftestData(1) }).hwptId;
    expect(m.fd.ioasMap({ ioasId: ioas, flags: FIXED_RW, userVa: BUF, length: 0x10000n, iova: 0n }).errno).to.equal(0);
    expect(m.fd.hwptSetDirtyTracking({ hwptId, enable: true }).errno).to.equal(0);
    // page 15 of 16
    expect(m.fd.testDirty({ hwptId, iova: 0n, length: 0x10000n, pageSize: 0x1000n, uptr: BUF, bits: new Uint8Array([0, 0x80]) }).errno).to.equal(0);
    const two = new Uint8Array(2);
    expect(m.fd.hwptGetDirtyBitmap({ hwptId, flags: GET_DIRTY_BITMAP_NO_CLEAR, iova: 0n, length: 0n, pageSize: 0x1000n, bitmap: two }).errno).to.equal(0);
    expect([...two]).to.deep.equal([0, 0x80]);
    expect(() => m.fd.hwptGetDirtyBitmap({ hwptId, iova: 0n, length: 0n, pageSize: 0x1000n, bitmap: new Uint8Array(1) })).to.throw(/length 0 reporting past the bitmap buffer/);
  });
});

describe('model kernel behaviour: a paging HWPT with a fault queue (hwptPagingFault)', () => {
  // Found by the fuzzer on 7.2.13 (seed 3): kernel ENOENT where the 6.12 model said EOPNOTSUPP.
  const FAULT_ID_VALID = 1 << 2;
  const alloc = (m: ReturnType<typeof model>, flags: number, faultId: number) => m.fd.hwptAlloc({ devId: m.mock.idevId, ptId: m.ioasId, flags, faultId }).errno;
  it('6.12: EOPNOTSUPP, whatever the fault ID', () => {
    const m = model();
    const { faultId } = m.fd.faultQueueAlloc();
    expect(alloc(m, FAULT_ID_VALID, faultId)).to.equal(EOPNOTSUPP);
    expect(alloc(m, FAULT_ID_VALID, 0x7fff_fff0)).to.equal(EOPNOTSUPP);
  });
  it('7.x: the fault is looked up after the domain is made (ENOENT, the HWPT undone); with NEST_PARENT EOPNOTSUPP', () => {
    const m = model({ hwptPagingFault: true });
    expect(alloc(m, FAULT_ID_VALID, 0x7fff_fff0)).to.equal(ENOENT);
    const { faultId } = m.fd.faultQueueAlloc();
    expect(alloc(m, FAULT_ID_VALID, faultId)).to.equal(0);
    expect(alloc(m, FAULT_ID_VALID | 1, faultId)).to.equal(EOPNOTSUPP);
    expect(m.fd.destroy(faultId).errno).to.equal(16); // EBUSY: the HWPT and the fd hold it
  });
});
