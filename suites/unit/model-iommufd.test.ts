// The iommufd reference model, without a kernel. Every expectation here was
// first run in lockstep (kernel and model side by side, out/model-probe/s1.ts
// and s2.ts) and agreed: "confirmed on 6.12.117 in the mock VM".
import { expect } from 'chai';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { ModelProcess, PROT_READ, PROT_WRITE } from '../../lib/model/process.ts';

const R = 4;
const W = 2;
const FIXED = 1;
const RW = R | W;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const MOCK_START = 0x1000000n;
const MOCK_LAST = 0x7fffffffn;
const [EPERM, ENOENT, EIO, ENOMEM, EFAULT, EBUSY, EEXIST, ENODEV, EINVAL, ENOTTY, ENOSPC, EBADE, EOVERFLOW, EBADFD, EMSGSIZE, EOPNOTSUPP, EADDRINUSE] = [
  1, 2, 5, 12, 14, 16, 17, 19, 22, 25, 28, 52, 75, 77, 90, 95, 98,
];

/** Page-aligned but not more, like the VM's mmap results: automatic IOVAs take their alignment from the user VA. */
const BUF = 0x7f00_0000_1000n;

function setup(opts: { ipcLock?: boolean; memlockPages?: bigint } = {}) {
  const process = new ModelProcess();
  process.credentials = { ipcLock: opts.ipcLock ?? true, sysResource: true };
  if (opts.memlockPages !== undefined) process.memlockLimit = opts.memlockPages * 4096n;
  process.memory.map(BUF, 0x400000n, PROT_READ | PROT_WRITE, true);
  return { process, fd: new IommufdModel(process) };
}

describe('model iommufd: objects and IDs', () => {
  // confirmed on 6.12.117 in the mock VM
  it('allocates the lowest free ID from 1 and reuses destroyed ones', () => {
    const { fd } = setup();
    expect(fd.destroy(0).errno).to.equal(ENOENT);
    expect(fd.ioasAlloc({ flags: 1 })).to.deep.equal({ errno: EOPNOTSUPP, ioasId: 0 });
    expect(fd.ioasAlloc().ioasId).to.equal(1);
    expect(fd.ioasAlloc().ioasId).to.equal(2);
    expect(fd.ioasAlloc().ioasId).to.equal(3);
    expect(fd.destroy(2).errno).to.equal(0);
    expect(fd.ioasAlloc().ioasId).to.equal(2);
    expect(fd.destroy(99).errno).to.equal(ENOENT);
  });

  // confirmed on 6.12.117 in the mock VM
  it('MOCK_DOMAIN takes stdev N, idev N+1, hwpt N+2; a second one reuses the auto HWPT; failures free their IDs', () => {
    const { fd } = setup();
    const ioas = fd.ioasAlloc().ioasId;
    const m = fd.testMockDomain({ ptId: ioas });
    expect(m).to.deep.equal({ errno: 0, stdevId: 2, hwptId: 4, idevId: 3 });
    expect(fd.testMockDomain({ ptId: ioas })).to.deep.equal({ errno: 0, stdevId: 5, hwptId: 4, idevId: 6 });
    expect(fd.testMockDomain({ ptId: 99 }).errno).to.equal(ENOENT);
    expect(fd.testMockDomain({ ptId: m.idevId }).errno).to.equal(EINVAL);
    expect(fd.testMockDomainFlags({ ptId: ioas, devFlags: 4 }).errno).to.equal(EINVAL);
    expect(fd.ioasAlloc().ioasId).to.equal(7);
    expect(fd.destroy(ioas).errno).to.equal(EBUSY);
    expect(fd.destroy(m.idevId).errno).to.equal(EBUSY);
    expect(fd.destroy(m.hwptId).errno).to.equal(EBUSY);
  });

  // confirmed on 6.12.117 in the mock VM
  it('the auto domain leaves with its last device: aperture and alignment go too', () => {
    const { fd } = setup();
    const ioas = fd.ioasAlloc().ioasId;
    const m1 = fd.testMockDomain({ ptId: ioas });
    const m2 = fd.testMockDomain({ ptId: ioas });
    expect(fd.destroy(m1.stdevId).errno).to.equal(0);
    expect(fd.ioasIovaRanges({ ioasId: ioas }).ranges).to.deep.equal([{ start: MOCK_START, last: MOCK_LAST }]);
    expect(fd.destroy(m2.stdevId).errno).to.equal(0);
    const r = fd.ioasIovaRanges({ ioasId: ioas });
    expect(r.ranges).to.deep.equal([{ start: 0n, last: U64_MAX }]);
    expect(r.alignment).to.equal(1n);
  });
});

describe('model iommufd: IOAS ranges, allow, reserve, options', () => {
  // confirmed on 6.12.117 in the mock VM
  it('IOVA_RANGES writes the needed count and the alignment back with EMSGSIZE', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    expect(fd.testAddReserved({ ioasId: a, start: 0x10000, length: 0x10000 }).errno).to.equal(0);
    expect(fd.testAddReserved({ ioasId: a, start: 0x30000, length: 0x10000 }).errno).to.equal(0);
    expect(fd.ioasIovaRanges({ ioasId: a, capacity: 1 })).to.deep.equal({
      errno: EMSGSIZE,
      numIovas: 3,
      alignment: 1n,
      ranges: [{ start: 0n, last: 0xffffn }],
    });
    expect(fd.ioasIovaRanges({ ioasId: a, reserved: 1 }).errno).to.equal(EOPNOTSUPP);
    expect(fd.ioasIovaRanges({ ioasId: 77 })).to.deep.equal({ errno: ENOENT, numIovas: 16, alignment: 0n, ranges: [] });
  });

  // confirmed on 6.12.117 in the mock VM
  it('ALLOW_IOVAS rejects single-byte and overlapping ranges, accepts adjacent ones, and conflicts with reservations', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    fd.testAddReserved({ ioasId: a, start: 0x10000, length: 0x10000 });
    expect(fd.ioasAllowIovas({ ioasId: a, ranges: [{ start: 5, last: 5 }] }).errno).to.equal(EINVAL);
    expect(fd.ioasAllowIovas({ ioasId: a, ranges: [{ start: 0x100000, last: 0x200000 }, { start: 0x200000, last: 0x300000 }] }).errno).to.equal(EINVAL);
    expect(fd.ioasAllowIovas({ ioasId: a, ranges: [{ start: 0x100000, last: 0x1fffff }, { start: 0x200000, last: 0x300000 }] }).errno).to.equal(0);
    expect(fd.ioasAllowIovas({ ioasId: a, ranges: [{ start: 0x18000, last: 0x20000 }] }).errno).to.equal(EADDRINUSE);
    expect(fd.testAddReserved({ ioasId: a, start: 0x150000, length: 0x1000 }).errno).to.equal(EADDRINUSE);
    expect(fd.testAddReserved({ ioasId: a, start: 0, length: 0 }).errno).to.equal(EINVAL);
    expect(fd.testAddReserved({ ioasId: a, start: U64_MAX - 1n, length: 4 }).errno).to.equal(EOVERFLOW);
  });

  // confirmed on 6.12.117 in the mock VM
  it('IOMMU_OPTION: RLIMIT_MODE is global and needs an empty context; HUGE_PAGES is per IOAS', () => {
    const { fd } = setup();
    expect(fd.option({ optionId: 0, op: 0, val64: 1 })).to.deep.equal({ errno: 0, val64: 1n });
    expect(fd.option({ optionId: 0, op: 1 })).to.deep.equal({ errno: 0, val64: 1n });
    expect(fd.option({ optionId: 0, op: 0, val64: 2 }).errno).to.equal(EINVAL);
    const a = fd.ioasAlloc().ioasId;
    expect(fd.option({ optionId: 0, op: 0, val64: 0 }).errno).to.equal(EBUSY);
    expect(fd.option({ optionId: 0, op: 1, objectId: 1 }).errno).to.equal(EOPNOTSUPP);
    expect(fd.option({ optionId: 5, op: 0 }).errno).to.equal(EOPNOTSUPP);
    expect(fd.option({ optionId: 1, op: 7, objectId: 99 })).to.deep.equal({ errno: ENOENT, val64: 0n });
    expect(fd.option({ optionId: 1, op: 2, objectId: a }).errno).to.equal(EOPNOTSUPP);
    expect(fd.option({ optionId: 1, op: 0, val64: 2, objectId: a }).errno).to.equal(EINVAL);
    expect(fd.option({ optionId: 1, op: 1, objectId: a, val64: 9 })).to.deep.equal({ errno: 0, val64: 1n });
    expect(fd.option({ optionId: 1, op: 0, val64: 0, objectId: a }).errno).to.equal(0);
    expect(fd.ioasIovaRanges({ ioasId: a }).alignment).to.equal(4096n);
  });

  // confirmed on 6.12.117 in the mock VM
  it('VFIO_IOAS: GET needs a compat IOAS, SET takes no reference, destroying it clears it', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    expect(fd.vfioIoas({ op: 0 }).errno).to.equal(ENODEV);
    expect(fd.vfioIoas({ op: 1, ioasId: 99 }).errno).to.equal(ENOENT);
    expect(fd.vfioIoas({ op: 3 }).errno).to.equal(EOPNOTSUPP);
    expect(fd.vfioIoas({ op: 1, ioasId: a }).errno).to.equal(0);
    expect(fd.vfioIoas({ op: 0 })).to.deep.equal({ errno: 0, ioasId: a });
    expect(fd.destroy(a).errno).to.equal(0);
    expect(fd.vfioIoas({ op: 0 }).errno).to.equal(ENODEV);
  });
});

describe('model iommufd: MAP, COPY, UNMAP without a domain', () => {
  // confirmed on 6.12.117 in the mock VM
  it('checks flags, overflow and permissions before the IOAS, then allocates IOVAs first-fit', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    expect(fd.ioasMap({ ioasId: a, flags: 8 | RW, userVa: BUF, length: 4096, iova: 5 })).to.deep.equal({ errno: EOPNOTSUPP, iova: 5n });
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: BUF, length: 4096, iova: U64_MAX }).errno).to.equal(EOVERFLOW);
    expect(fd.ioasMap({ ioasId: 999, flags: FIXED, userVa: BUF, length: 4096, iova: 7 }).errno).to.equal(EINVAL);
    expect(fd.ioasMap({ ioasId: 999, flags: RW, userVa: BUF, length: 4096 }).errno).to.equal(ENOENT);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: BUF, length: 0 }).errno).to.equal(EINVAL);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: 0xfffffffffffff000n, length: 0x1000 }).errno).to.equal(EOVERFLOW);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: BUF, length: 4096 }).iova).to.equal(0x1000n);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: BUF, length: 8192 }).iova).to.equal(0x2000n);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: BUF + 0x800n, length: 100 }).iova).to.equal(0x4800n);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: BUF + 0x10000n, length: 1 << 20 }).iova).to.equal(0x5000n);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: 0n, length: 0x7fffffffffffffffn }).errno).to.equal(EOVERFLOW);
    // No domain: nothing is pinned, so an unmapped user VA maps fine.
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: 0x10000n, length: 0x3000 })).to.deep.equal({ errno: 0, iova: 0x108000n });
  });

  // confirmed on 6.12.117 in the mock VM
  it('FIXED overlap is EEXIST, unmap of part of an area or of nothing is ENOENT, unmap-all of nothing succeeds', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x4000, iova: 0x100000000n }).errno).to.equal(0);
    expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x4000, iova: 0x100002000n }).errno).to.equal(EEXIST);
    expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x4000, iova: 0xfffffffffffff000n }).errno).to.equal(EOVERFLOW);
    expect(fd.ioasUnmap({ ioasId: a, iova: 0x100001000n, length: 0x1000 })).to.deep.equal({ errno: ENOENT, length: 0x1000n });
    expect(fd.ioasUnmap({ ioasId: a, iova: 0x200000000n, length: 0x1000 }).errno).to.equal(ENOENT);
    expect(fd.ioasUnmap({ ioasId: a, iova: 0x200000000n, length: 0 }).errno).to.equal(EINVAL);
    expect(fd.ioasUnmap({ ioasId: a, iova: 0xfffffffffffff000n, length: 0x2000 }).errno).to.equal(EOVERFLOW);
    expect(fd.ioasUnmap({ ioasId: a, iova: 5, length: U64_MAX }).errno).to.equal(EOVERFLOW);
    expect(fd.ioasUnmap({ ioasId: a, iova: 0, length: U64_MAX })).to.deep.equal({ errno: 0, length: 0x4000n });
    expect(fd.ioasUnmap({ ioasId: a, iova: 0, length: U64_MAX })).to.deep.equal({ errno: 0, length: 0n });
  });

  // confirmed on 6.12.117 in the mock VM
  it('UNMAP is not atomic: areas before a straddling one are gone, and length is not written back', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x2000, iova: 0x10000 });
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x2000, iova: 0x20000 });
    expect(fd.ioasUnmap({ ioasId: a, iova: 0, length: 0x21000 })).to.deep.equal({ errno: ENOENT, length: 0x21000n });
    expect(fd.ioasUnmap({ ioasId: a, iova: 0x10000, length: 0x2000 }).errno).to.equal(ENOENT);
    expect(fd.ioasUnmap({ ioasId: a, iova: 0x20000, length: 0x2000 }).errno).to.equal(0);
  });

  // confirmed on 6.12.117 in the mock VM
  it('COPY takes any covered sub-range, keeps read-only pages read-only, and looks up dst after src', () => {
    const { fd, process } = setup();
    process.memory.map(0x7e00_0000_0000n, 0x4000n, PROT_READ, false);
    const a = fd.ioasAlloc().ioasId;
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x4000, iova: 0x100000000n });
    expect(fd.ioasCopy({ dstIoasId: a, srcIoasId: a, flags: RW, length: 0x1000, srcIova: 0x300000000n }).errno).to.equal(ENOENT);
    expect(fd.ioasCopy({ dstIoasId: a, srcIoasId: a, flags: RW, length: 0x2000, srcIova: 0x100001000n })).to.deep.equal({ errno: 0, dstIova: 0x2000n });
    expect(fd.ioasCopy({ dstIoasId: 99, srcIoasId: a, flags: RW, length: 0x2000, srcIova: 0x100001000n }).errno).to.equal(ENOENT);
    expect(fd.ioasCopy({ dstIoasId: a, srcIoasId: a, flags: 64, length: 0x2000, srcIova: 0x100001000n }).errno).to.equal(EOPNOTSUPP);
    expect(fd.ioasCopy({ dstIoasId: a, srcIoasId: a, flags: FIXED, length: 0x2000, srcIova: 0x100001000n }).errno).to.equal(EINVAL);
    expect(fd.ioasMap({ ioasId: a, flags: R | FIXED, userVa: 0x7e00_0000_0000n, length: 0x4000, iova: 0x700000000n }).errno).to.equal(0);
    expect(fd.ioasCopy({ dstIoasId: a, srcIoasId: a, flags: RW, length: 0x1000, srcIova: 0x700000000n }).errno).to.equal(EPERM);
  });

  // confirmed on 6.12.117 in the mock VM
  it('allowed ranges steer automatic IOVAs only; no room is ENOSPC', () => {
    const { fd } = setup();
    const b = fd.ioasAlloc().ioasId;
    fd.ioasAllowIovas({ ioasId: b, ranges: [{ start: 0x40000, last: 0x4ffff }, { start: 0x50000, last: 0x5ffff }] });
    expect(fd.ioasMap({ ioasId: b, flags: RW, userVa: BUF, length: 0x8000 }).iova).to.equal(0x40000n);
    expect(fd.ioasMap({ ioasId: b, flags: RW, userVa: BUF, length: 0x10000 }).iova).to.equal(0x48000n);
    expect(fd.ioasMap({ ioasId: b, flags: RW, userVa: BUF, length: 0x10000 }).errno).to.equal(ENOSPC);
    expect(fd.ioasMap({ ioasId: b, flags: RW | FIXED, userVa: BUF, length: 0x1000, iova: 0x100000 }).errno).to.equal(0);
    expect(fd.testAddReserved({ ioasId: b, start: 0x40000, length: 0x1000 }).errno).to.equal(EADDRINUSE);
  });
});

describe('model iommufd: mock domains', () => {
  // confirmed on 6.12.117 in the mock VM
  it('a mock domain brings its aperture and 2048-byte alignment', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    fd.testMockDomain({ ptId: a });
    expect(fd.ioasIovaRanges({ ioasId: a })).to.deep.equal({ errno: 0, numIovas: 1, alignment: 2048n, ranges: [{ start: MOCK_START, last: MOCK_LAST }] });
    expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x1000, iova: 0x1000 }).errno).to.equal(EINVAL);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: BUF, length: 0x800 }).errno).to.equal(0);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: BUF, length: 0x801 }).errno).to.equal(EINVAL);
    expect(fd.ioasMap({ ioasId: a, flags: RW, userVa: BUF + 0x400n, length: 0x800 }).errno).to.equal(EINVAL);
    // Reserved is checked before overlap.
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x10000, iova: 0x7fff0000n });
    expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x10000, iova: 0x7fffc000n }).errno).to.equal(EINVAL);
  });

  // confirmed on 6.12.117 in the mock VM
  it('attach fails EADDRINUSE for areas outside the aperture or misaligned, and EFAULT for dead user memory', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x1000, iova: 0x1000 });
    expect(fd.testMockDomain({ ptId: a }).errno).to.equal(EADDRINUSE);
    expect(fd.ioasAlloc().ioasId).to.equal(2);
    fd.ioasUnmap({ ioasId: a, iova: 0, length: U64_MAX });
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x100, iova: 0x2000000 });
    expect(fd.testMockDomain({ ptId: a }).errno).to.equal(EADDRINUSE);
    fd.ioasUnmap({ ioasId: a, iova: 0, length: U64_MAX });
    fd.ioasAllowIovas({ ioasId: a, ranges: [{ start: 0x1000, last: 0x2000000 }] });
    expect(fd.testMockDomain({ ptId: a }).errno).to.equal(EADDRINUSE);
    fd.ioasAllowIovas({ ioasId: a, ranges: [] });
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: 0x6000_0000_0000n, length: 0x3000, iova: 0x2000000 });
    expect(fd.testMockDomain({ ptId: a }).errno).to.equal(EFAULT);
  });

  // confirmed on 6.12.117 in the mock VM
  it('MD_CHECK_MAP and MD_CHECK_REFS see pins: one per MAP, none extra for COPY', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    const m = fd.testMockDomain({ ptId: a });
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x10000, iova: 0x40000000n });
    expect(fd.testCheckMap({ hwptId: m.hwptId, iova: 0x40000000n, length: 0x10000, uptr: BUF }).errno).to.equal(0);
    expect(fd.testCheckMap({ hwptId: m.hwptId, iova: 0x40000000n, length: 0x1000, uptr: BUF + 0x1000n }).errno).to.equal(EINVAL);
    expect(fd.testCheckMap({ hwptId: a, iova: 0x40000000n, length: 0x1000, uptr: BUF }).errno).to.equal(ENOENT);
    expect(fd.testCheckRefs({ length: 0x10000, uptr: BUF, refs: 1 }).errno).to.equal(0);
    expect(fd.testCheckRefs({ length: 0x1000, uptr: BUF + 1n, refs: 1 }).errno).to.equal(EINVAL);
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x1000, iova: 0x60000000n });
    expect(fd.testCheckRefs({ length: 0x1000, uptr: BUF, refs: 2 }).errno).to.equal(0);
    fd.ioasCopy({ dstIoasId: a, srcIoasId: a, flags: RW | FIXED, length: 0x1000, srcIova: 0x40000000n, dstIova: 0x61000000n });
    expect(fd.testCheckRefs({ length: 0x1000, uptr: BUF, refs: 2 }).errno).to.equal(0);
    expect(fd.testCheckRefs({ length: 0x1000, uptr: BUF, refs: 3 }).errno).to.equal(EIO);
    fd.destroy(m.stdevId);
    expect(fd.testCheckRefs({ length: 0x10000, uptr: BUF, refs: 0 }).errno).to.equal(0);
  });

  // confirmed on 6.12.117 in the mock VM
  it('with a domain, an unmapped VA or a read-only VA mapped WRITEABLE fails EFAULT; HUGE_PAGES=0 is refused', () => {
    const { fd, process } = setup();
    process.memory.map(0x7e00_0000_0000n, 0x4000n, PROT_READ, false);
    const a = fd.ioasAlloc().ioasId;
    fd.testMockDomainFlags({ ptId: a, devFlags: 2 });
    expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: 0x6000_0000_0000n, length: 0x3000, iova: 0x2000000 }).errno).to.equal(EFAULT);
    expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: 0x7e00_0000_0000n, length: 0x4000, iova: 0x2000000 }).errno).to.equal(EFAULT);
    expect(fd.ioasMap({ ioasId: a, flags: R | FIXED, userVa: 0x7e00_0000_0000n, length: 0x4000, iova: 0x2000000 }).errno).to.equal(0);
    expect(fd.option({ optionId: 1, op: 0, val64: 0, objectId: a }).errno).to.equal(EINVAL);
  });
});

describe('model iommufd: accounting', () => {
  // confirmed on 6.12.117 in the mock VM (VmPin/VmLck deltas read from /proc/self/status, CAP_IPC_LOCK dropped)
  for (const mode of [0n, 1n]) {
    it(`charges ${mode ? 'mm->locked_vm (VmLck)' : "the uid's locked_vm"} and VmPin, and refuses past RLIMIT_MEMLOCK (mode ${mode})`, () => {
      const { fd, process } = setup({ ipcLock: false, memlockPages: 64n });
      fd.option({ optionId: 0, op: 0, val64: mode });
      const a = fd.ioasAlloc().ioasId;
      fd.testMockDomain({ ptId: a });
      expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 32 * 4096, iova: 0x1000000 }).errno).to.equal(0);
      expect(process.mmPinnedVm).to.equal(32n);
      expect(mode ? process.mmLockedVm : process.userLockedVm).to.equal(32n);
      expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF + 0x20000n, length: 32 * 4096, iova: 0x1100000 }).errno).to.equal(0);
      expect(fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF + 0x40000n, length: 4096, iova: 0x1200000 }).errno).to.equal(ENOMEM);
      expect(process.mmPinnedVm).to.equal(64n);
      fd.close();
      expect(process.mmPinnedVm).to.equal(0n);
      expect(process.mmLockedVm + process.userLockedVm).to.equal(0n);
    });
  }
});

describe('model iommufd: HWPT, dirty tracking, invalidation', () => {
  // confirmed on 6.12.117 in the mock VM
  it('HWPT_ALLOC: a bad pt is EINVAL, dirty needs a capable device, nested needs a NEST_PARENT and 4 bytes of data', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    const m = fd.testMockDomain({ ptId: a });
    const nd = fd.testMockDomainFlags({ ptId: a, devFlags: 1 });
    expect(fd.hwptAlloc({ devId: m.idevId, ptId: 99 }).errno).to.equal(EINVAL);
    expect(fd.hwptAlloc({ devId: a, ptId: a }).errno).to.equal(ENOENT);
    expect(fd.hwptAlloc({ devId: m.idevId, ptId: a, flags: 4 }).errno).to.equal(EOPNOTSUPP);
    expect(fd.hwptAlloc({ devId: nd.idevId, ptId: a, flags: 2 }).errno).to.equal(EOPNOTSUPP);
    const h = fd.hwptAlloc({ devId: m.idevId, ptId: a });
    expect(h).to.deep.equal({ errno: 0, hwptId: 7 });
    const hp = fd.hwptAlloc({ devId: m.idevId, ptId: a, flags: 1 });
    expect(fd.hwptAlloc({ devId: m.idevId, ptId: h.hwptId, dataType: 0xdead, data: new Uint8Array(4) }).errno).to.equal(EINVAL);
    expect(fd.hwptAlloc({ devId: m.idevId, ptId: hp.hwptId, dataType: 0xdead, data: new Uint8Array(8) }).errno).to.equal(EINVAL);
    const n = fd.hwptAlloc({ devId: m.idevId, ptId: hp.hwptId, dataType: 0xdead, data: new Uint8Array([0xef, 0xbe, 0xad, 0x0b]) });
    expect(n.errno).to.equal(0);
    expect(fd.testCheckIotlb({ hwptId: n.hwptId, iotlbId: 2, iotlb: 0xbadbeef }).errno).to.equal(0);
    expect(fd.destroy(hp.hwptId).errno).to.equal(EBUSY);
    expect(fd.destroy(h.hwptId).errno).to.equal(0);
    const inv = new Uint8Array(16);
    new DataView(inv.buffer).setUint32(4, 3, true);
    new DataView(inv.buffer).setUint32(8, 2, true); // second entry: unknown flag
    expect(fd.hwptInvalidate({ hwptId: n.hwptId, dataType: 0xdeadbeef, entryLen: 8, entryNum: 2, entries: inv })).to.deep.equal({ errno: EOPNOTSUPP, entryNum: 1 });
    expect(fd.testCheckIotlb({ hwptId: n.hwptId, iotlbId: 3, iotlb: 0 }).errno).to.equal(0);
  });

  // confirmed on 6.12.117 in the mock VM
  it('dirty bits set by the selftest come back in the bitmap once, unless NO_CLEAR', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    const m = fd.testMockDomain({ ptId: a });
    const hd = fd.hwptAlloc({ devId: m.idevId, ptId: a, flags: 2 }).hwptId;
    expect(fd.hwptSetDirtyTracking({ hwptId: m.hwptId, enable: true }).errno).to.equal(EOPNOTSUPP);
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x10000, iova: 0x2000000 });
    const bits = new Uint8Array([0xff, 0x0f]);
    expect(fd.testDirty({ hwptId: hd, iova: 0x2000000, length: 0x10000, pageSize: 0x800, uptr: BUF, bits }).errno).to.equal(EINVAL);
    fd.hwptSetDirtyTracking({ hwptId: hd, enable: true });
    expect(fd.testDirty({ hwptId: hd, iova: 0x2000000, length: 0x10000, pageSize: 0x800, uptr: BUF, bits })).to.deep.equal({ errno: 0, nrDirty: 12n });
    const first = new Uint8Array(8);
    expect(fd.hwptGetDirtyBitmap({ hwptId: hd, iova: 0x2000000, length: 0x20000, pageSize: 0x800, flags: 1, bitmap: first }).errno).to.equal(0);
    expect([...first.subarray(0, 2)]).to.deep.equal([0xff, 0x0f]);
    const byPage = new Uint8Array(8);
    fd.hwptGetDirtyBitmap({ hwptId: hd, iova: 0x2000000, length: 0x20000, pageSize: 0x1000, bitmap: byPage });
    expect([...byPage.subarray(0, 1)]).to.deep.equal([0x3f]);
    const again = new Uint8Array(8);
    fd.hwptGetDirtyBitmap({ hwptId: hd, iova: 0x2000000, length: 0x20000, pageSize: 0x800, bitmap: again });
    expect([...again]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(fd.hwptGetDirtyBitmap({ hwptId: hd, iova: 0x2000400, length: 0x20000, pageSize: 0x800, bitmap: again }).errno).to.equal(EINVAL);
  });
});

describe('model iommufd: accesses', () => {
  // confirmed on 6.12.117 in the mock VM
  it('pins through an access, shares exact ranges, is released by unmap, and holds its IOAS', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    expect(fd.testCreateAccess({ ioasId: a, flags: 2 }).errno).to.equal(EOPNOTSUPP);
    expect(fd.testCreateAccess({ ioasId: 99, flags: 1 }).errno).to.equal(ENOENT);
    expect(fd.ioasAlloc().ioasId).to.equal(2); // the failed access's ID was freed
    const acc = fd.testCreateAccess({ ioasId: a, flags: 1 });
    expect(acc.errno).to.equal(0);
    expect(fd.ioasIovaRanges({ ioasId: a }).alignment).to.equal(4096n);
    expect(fd.destroy(a).errno).to.equal(EBUSY);
    fd.ioasMap({ ioasId: a, flags: RW | FIXED, userVa: BUF, length: 0x10000, iova: 0x100000 });
    const p = fd.testAccessPages({ accessFd: acc.accessFd, iova: 0x101000, length: 0x2000, uptr: BUF + 0x1000n });
    expect(p).to.deep.equal({ errno: 0, accessPagesId: 0 });
    expect(fd.testAccessPages({ accessFd: acc.accessFd, iova: 0x101000, length: 0x2000, uptr: BUF + 0x1000n }).accessPagesId).to.equal(1);
    expect(fd.testCheckRefs({ length: 0x2000, uptr: BUF + 0x1000n, refs: 1 }).errno).to.equal(0);
    expect(fd.testAccessPages({ accessFd: acc.accessFd, iova: 0x101000, length: 0x1000, uptr: BUF }).errno).to.equal(EBADE);
    expect(fd.testAccessPages({ accessFd: 12345, iova: 0x101000, length: 0x1000, uptr: 0 }).errno).to.equal(EBADFD);
    expect(fd.testAccessPages({ accessFd: acc.accessFd, iova: 0x10f000, length: 0x2000, uptr: 0 }).errno).to.equal(ENOENT);
    expect(fd.testAccessPages({ accessFd: acc.accessFd, iova: 0x101800, length: 0x1000, uptr: 0 }).errno).to.equal(EINVAL);
    expect(fd.testDestroyAccessPages({ accessFd: acc.accessFd, accessPagesId: 77 }).errno).to.equal(ENOENT);
    expect(fd.ioasUnmap({ ioasId: a, iova: 0x100000, length: 0x10000 }).errno).to.equal(0);
    expect(fd.testCheckRefs({ length: 0x3000, uptr: BUF, refs: 0 }).errno).to.equal(0);
    expect(fd.testDestroyAccessPages({ accessFd: acc.accessFd, accessPagesId: 0 }).errno).to.equal(ENOENT);
    expect(fd.closeAccess(acc.accessFd).errno).to.equal(0);
    expect(fd.destroy(a).errno).to.equal(0);
  });
});

describe('model VFIO compat on an iommufd fd', () => {
  // confirmed on 6.12.117 in the mock VM (reference §8 rows 1-7, 13-15, 18-20, 23-31, 49-55)
  it('needs a compat IOAS, not SET_IOMMU; DIRTY_PAGES is ENOTTY', () => {
    const { fd } = setup();
    const c = fd.compat;
    expect(c.getApiVersion()).to.deep.equal({ errno: 0, version: 0 });
    expect([1, 2, 3, 5, 6, 7, 8, 9, 10, 1000].map((e) => c.checkExtension(e).value)).to.deep.equal([1, 0, 1, 0, 0, 0, 0, 1, 0, 0]);
    expect(c.checkExtension(4).errno).to.equal(ENODEV);
    expect(c.setIommu(3).errno).to.equal(ENODEV);
    expect(c.setIommu(2).errno).to.equal(EINVAL);
    expect(c.mapDma({ flags: 3, vaddr: BUF, iova: 0x100000, size: 0x1000 }).errno).to.equal(ENODEV);
    expect(c.dirtyPages({ flags: 1 }).errno).to.equal(ENOTTY);
    fd.vfioIoas({ op: 1, ioasId: fd.ioasAlloc().ioasId });
    expect(c.checkExtension(4).value).to.equal(1);
    expect(c.mapDma({ flags: 0, vaddr: BUF, iova: 0x100000, size: 0x1000 }).errno).to.equal(0);
    expect(c.mapDma({ flags: 4, vaddr: BUF, iova: 0x200000, size: 0x1000 }).errno).to.equal(EINVAL);
    expect(c.mapDma({ flags: 3, vaddr: BUF, iova: 0xfffffffffffff000n, size: 0x2000 }).errno).to.equal(EOVERFLOW);
  });

  // confirmed on 6.12.117 in the mock VM
  it('GET_INFO sets argsz to the full size, writes caps as far as argsz allows, cap_offset only when all fit', () => {
    const { fd } = setup();
    fd.vfioIoas({ op: 1, ioasId: fd.ioasAlloc().ioasId });
    expect(fd.compat.getInfo({ argsz: 15 }).errno).to.equal(EINVAL);
    const small = fd.compat.getInfo({ argsz: 40, bufferSize: 4096 });
    expect(small).to.include({ errno: 0, argsz: 72, flags: 3, capOffset: 0 });
    expect(small.iovaPgsizes).to.equal(0xfffffffffffff000n);
    expect([...small.bytes.subarray(24, 36)]).to.deep.equal([3, 0, 1, 0, 40, 0, 0, 0, 255, 255, 255, 255]);
    const full = fd.compat.getInfo({});
    expect(full).to.include({ argsz: 72, capOffset: 24 });
    expect(full.caps.ok && full.caps.caps.map((cap) => cap.kind)).to.deep.equal(['dma_avail', 'iova_range']);
  });

  // confirmed on 6.12.117 in the mock VM
  it('UNMAP_DMA: v2 bisect is ENOENT, nothing mapped is 0; TYPE1 splits areas exactly', () => {
    const { fd } = setup();
    const a = fd.ioasAlloc().ioasId;
    fd.vfioIoas({ op: 1, ioasId: a });
    const c = fd.compat;
    c.mapDma({ flags: 3, vaddr: BUF, iova: 0x200000, size: 0x4000 });
    expect(c.unmapDma({ iova: 0x201000, size: 0x1000 })).to.deep.equal({ errno: ENOENT, size: 0n });
    expect(c.unmapDma({ iova: 0x900001, size: 0x11 })).to.deep.equal({ errno: 0, size: 0n });
    expect(c.unmapDma({ iova: 0x900000, size: 0 })).to.deep.equal({ errno: EINVAL, size: 0n });
    expect(c.unmapDma({ flags: 1, iova: 0x200000, size: 0x4000 })).to.deep.equal({ errno: EINVAL, size: 0x4000n });
    expect(c.unmapDma({ flags: 2, iova: 0, size: 0 })).to.deep.equal({ errno: 0, size: 0x4000n });
    fd.testMockDomain({ ptId: a });
    expect(c.checkExtension(4).value).to.equal(0);
    expect(c.setIommu(1).errno).to.equal(0);
    expect(c.getInfo({}).iovaPgsizes).to.equal(0x1000n);
    c.mapDma({ flags: 3, vaddr: BUF, iova: 0x1000000, size: 0x10000 });
    expect(c.unmapDma({ iova: 0x1004000, size: 0x2000 })).to.deep.equal({ errno: 0, size: 0x2000n });
    expect(c.unmapDma({ iova: 0x1008800, size: 0x800 })).to.deep.equal({ errno: EINVAL, size: 0x800n });
    expect(c.unmapDma({ iova: 0x1000000, size: 0x20000 })).to.deep.equal({ errno: 0, size: 0xe000n });
  });
});
