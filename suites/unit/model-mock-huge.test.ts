// 1 MiB mock IOPTEs (selftest.c MOCK_PFN_HUGE_IOVA) in the model: where the
// platform says the pages are physically contiguous and the IOVA agrees
// with the physical address modulo 1 MiB, a HUGE_IOVA domain's dirty read
// covers the whole IOPTE (mock_test_and_clear_dirty) and records 1 MiB.
import { expect } from 'chai';
import { IommufdModel, HugeIoptesUnknown } from '../../lib/model/iommufd.ts';
import { MOCK_APERTURE_START, MOCK_FLAGS_DEVICE_HUGE_IOVA } from '../../lib/model/mock.ts';
import { ModelProcess } from '../../lib/model/process.ts';

const M = 1n << 20n;
const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 2;

function setup(physical: ((a: bigint) => bigint | null) | null) {
  const proc = new ModelProcess();
  const va = 0x7f00_0000_0000n;
  proc.memory.map(va, 2n * M, 3, true);
  proc.memory.physicalAddress = physical;
  const m = new IommufdModel(proc);
  const ioas = m.ioasAlloc().ioasId;
  const dev = m.testMockDomainFlags({ ptId: ioas, devFlags: MOCK_FLAGS_DEVICE_HUGE_IOVA });
  const hwpt = m.hwptAlloc({ devId: dev.idevId, ptId: ioas, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING });
  expect(hwpt.errno).to.equal(0);
  expect(m.testMockDomainReplace({ stdevId: dev.stdevId, ptId: hwpt.hwptId }).errno).to.equal(0);
  expect(m.ioasMap({ ioasId: ioas, flags: 7, userVa: va, length: 2n * M, iova: MOCK_APERTURE_START }).errno).to.equal(0);
  expect(m.hwptSetDirtyTracking({ hwptId: hwpt.hwptId, enable: true }).errno).to.equal(0);
  // One 2048-byte chunk dirty in the first MiB.
  const bits = new Uint8Array(1024);
  bits[0] = 0b10;
  expect(m.testDirty({ hwptId: hwpt.hwptId, iova: MOCK_APERTURE_START, length: 2n * M, pageSize: 2048n, uptr: va, bits }).nrDirty).to.equal(1n);
  const read = () => {
    const bitmap = new Uint8Array(128);
    expect(m.hwptGetDirtyBitmap({ hwptId: hwpt.hwptId, iova: MOCK_APERTURE_START, length: 2n * M, pageSize: 2048n, bitmap }).errno).to.equal(0);
    return bitmap;
  };
  return { read };
}

describe('model: 1 MiB mock IOPTEs', () => {
  it('records the whole IOPTE where the pages are contiguous and aligned', () => {
    const { read } = setup((a) => 0x4000_0000n + (a - 0x7f00_0000_0000n));
    const bitmap = read();
    expect(bitmap.subarray(0, 64).every((b) => b === 0xff), 'the first MiB: 512 bits').to.equal(true);
    expect(bitmap.subarray(64).every((b) => b === 0), 'the second MiB clean').to.equal(true);
  });

  it('records one chunk where the physical address is not 1 MiB aligned', () => {
    const { read } = setup((a) => 0x4000_1000n + (a - 0x7f00_0000_0000n));
    const bitmap = read();
    expect(bitmap[0]).to.equal(0b10);
    expect(bitmap.subarray(1).every((b) => b === 0)).to.equal(true);
  });

  it('cannot say without physical addresses', () => {
    const { read } = setup(null);
    expect(read).to.throw(HugeIoptesUnknown);
  });
});
