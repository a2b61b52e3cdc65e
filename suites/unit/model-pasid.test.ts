// The model's PASID attach/replace/detach (KernelBehaviour.pasid: device.c's
// pasid paths, selftest.c's mock set_dev_pasid) and IOMMU_IOAS_CHANGE_PROCESS
// (KernelBehaviour.ioasChangeProcess: ioas.c:iommufd_ioas_change_process),
// each rule from 7.2.13's source and the same sequence confirmed in lockstep
// in the mock VM (iommufd_device_pasid.*.pasid_attach,
// change_process.*.basic, iommufd_dirty_tracking.*.pasid_set_dirty_tracking).
import { expect } from 'chai';
import { IoasObject, IommufdModel } from '../../lib/model/iommufd.ts';
import { BASELINE_BEHAVIOUR, type KernelBehaviour } from '../../lib/model/kernel-behaviour.ts';
import { ModelProcess, PROT_READ, PROT_WRITE } from '../../lib/model/process.ts';
import * as U from '../../lib/uapi/index.ts';

const [ENOENT, ENOMEM, EBUSY, EINVAL, EOPNOTSUPP] = [2, 12, 16, 22, 95];
const BUF = 0x7f00_0000_0000n;
const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
const SEVENTWO: Partial<KernelBehaviour> = { mockGenericPt: true, mockDevicePasid: true, pasid: true, ioasChangeProcess: true };

function model(changes: Partial<KernelBehaviour> = SEVENTWO, ipcLock = true) {
  const process = new ModelProcess();
  process.credentials = { ipcLock, sysResource: true };
  process.memory.map(BUF, 0x40_0000n, PROT_READ | PROT_WRITE, true);
  return { fd: new IommufdModel(process, undefined, { ...BASELINE_BEHAVIOUR, ...changes }), process };
}

const nestedData = () => U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT });

describe('model: PASID attach/replace/detach on mock devices (KernelBehaviour.pasid)', () => {
  function fixture(pasidCapable: boolean) {
    const { fd } = model();
    const ioasId = fd.ioasAlloc().ioasId;
    const dev = fd.testMockDomainFlags({ ptId: ioasId, devFlags: U.MOCK_FLAGS_DEVICE_PASID });
    expect(dev.errno).to.equal(0);
    const plain = pasidCapable ? null : fd.testMockDomainFlags({ ptId: ioasId, devFlags: 0 });
    const parent = fd.hwptAlloc({ devId: dev.idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).hwptId;
    const nested = [0, 1].map(() => fd.hwptAlloc({ devId: dev.idevId, ptId: parent, flags: U.IOMMU_HWPT_ALLOC_PASID, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data: nestedData() }));
    for (const n of nested) expect(n.errno).to.equal(0);
    const s2 = fd.hwptAlloc({ devId: dev.idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_PASID });
    expect(s2.errno).to.equal(0);
    const attach = (pasid: number, ptId: number, stdevId = dev.stdevId) => fd.testPasidAttach({ stdevId, pasid, ptId }).errno;
    const replace = (pasid: number, ptId: number) => fd.testPasidReplace({ stdevId: dev.stdevId, pasid, ptId }).errno;
    const detach = (pasid: number) => fd.testPasidDetach({ stdevId: dev.stdevId, pasid }).errno;
    const check = (pasid: number, hwptId: number) => fd.testPasidCheckHwpt({ stdevId: dev.stdevId, pasid, hwptId }).errno;
    return { fd, ioasId, dev, plain, parent, nested: nested.map((n) => n.hwptId), s2: s2.hwptId, attach, replace, detach, check };
  }

  for (const pasidCapable of [false, true]) {
    it(`follows iommufd_device_pasid.${pasidCapable ? 'has_pasid' : 'no_pasid'}.pasid_attach (without its vIOMMU and IOPF steps)`, () => {
      const t = fixture(pasidCapable);
      const { fd, dev } = t;
      expect(t.detach(100)).to.equal(0); // nothing attached: no error
      // iommufd_hwpt_pasid_compat: the RID's HWPT is not PASID-compatible
      expect(fd.testMockDomainReplace({ stdevId: dev.stdevId, ptId: t.parent }).errno).to.equal(0);
      expect(t.attach(100, t.s2)).to.equal(EINVAL);
      expect(fd.testMockDomainReplace({ stdevId: dev.stdevId, ptId: t.s2 }).errno).to.equal(0);
      expect(t.attach(100, t.nested[0]!)).to.equal(0);
      // ... and a PASID attached keeps the RID on PASID-compatible HWPTs
      expect(fd.testMockDomainReplace({ stdevId: dev.stdevId, ptId: t.parent }).errno).to.equal(EINVAL);
      expect(t.detach(100)).to.equal(0);
      expect(t.check(100, 0)).to.equal(0);
      if (t.plain) {
        expect(fd.testMockDomainReplace({ stdevId: t.plain.stdevId, ptId: t.nested[0]! }).errno).to.equal(0);
        expect(fd.testMockDomainReplace({ stdevId: t.plain.stdevId, ptId: t.ioasId }).errno).to.equal(0);
        expect(t.attach(100, t.parent, t.plain.stdevId)).to.equal(EINVAL);
        expect(t.attach(100, t.s2, t.plain.stdevId)).to.equal(EINVAL);
      }
      expect(t.attach(100, t.parent)).to.equal(EINVAL);
      // an IOAS: the auto domains (never PASID-compatible) and a new one all refuse, and the new one leaves no trace
      const next = fd.ioasAlloc().ioasId;
      fd.destroy(next);
      expect(t.attach(100, t.ioasId)).to.equal(EINVAL);
      expect(fd.ioasAlloc().ioasId).to.equal(next);
      expect(t.attach(100, t.s2)).to.equal(0);
      expect(t.check(100, t.s2)).to.equal(0);
      expect(t.check(100, t.nested[0]!)).to.equal(EINVAL);
      expect(t.attach(100, t.nested[0]!)).to.equal(EBUSY);
      expect(t.attach(100, t.s2)).to.equal(EBUSY);
      expect(t.detach(100)).to.equal(0);
      // replace
      expect(t.replace(200, t.s2)).to.equal(EINVAL);
      expect(t.attach(200, t.s2)).to.equal(0);
      expect(t.replace(200, t.ioasId)).to.equal(EINVAL);
      expect(t.check(200, t.s2)).to.equal(0);
      expect(t.replace(200, t.nested[0]!)).to.equal(0);
      expect(t.replace(200, t.nested[1]!)).to.equal(0);
      expect(t.check(200, t.nested[1]!)).to.equal(0);
      // the old HWPT's reference went with the replace: it can be destroyed
      expect(fd.destroy(t.nested[0]!).errno).to.equal(0);
      expect(fd.destroy(t.nested[1]!).errno).to.equal(EBUSY);
      expect(t.detach(200)).to.equal(0);
      // IOMMU_TEST_PASID_RESERVED: every second non-blocking set_dev_pasid of PASID 1024 fails
      expect(t.attach(1024, t.s2)).to.equal(0);
      expect(t.replace(1024, t.nested[1]!)).to.equal(ENOMEM);
      expect(t.check(1024, t.s2)).to.equal(0);
      expect(t.detach(1024)).to.equal(0);
      expect(t.attach(1024, t.s2)).to.equal(0); // the detach (blocked domain) cleared it
      expect(t.detach(1024)).to.equal(0);
      // PASID 0 is the RID
      expect(t.check(0, t.s2)).to.equal(0);
      // objects and lookups
      expect(fd.testPasidAttach({ stdevId: t.s2, pasid: 5, ptId: t.s2 }).errno).to.equal(ENOENT);
      expect(t.check(5, t.ioasId)).to.equal(EINVAL);
      expect(t.check(5, 9999)).to.equal(ENOENT);
      expect(t.attach(1 << 20, t.s2)).to.equal(EINVAL); // max_pasids of the mock: 1 << MOCK_PASID_WIDTH
      expect(fd.testMockDomainReplace({ stdevId: dev.stdevId, ptId: t.ioasId }).errno).to.equal(0);
      expect(fd.close().errno).to.equal(0);
      expect(fd.objects.isEmpty).to.equal(true);
    });
  }

  it('a device without PASIDs takes a PASID-compatible HWPT at a PASID when its RID is on one (iommu_attach_device_pasid skips it)', () => {
    const t = fixture(false);
    expect(t.fd.testMockDomainReplace({ stdevId: t.plain!.stdevId, ptId: t.s2 }).errno).to.equal(0);
    expect(t.attach(7, t.s2, t.plain!.stdevId)).to.equal(0);
    expect(t.fd.testPasidDetach({ stdevId: t.plain!.stdevId, pasid: 7 }).errno).to.equal(0);
  });

  it('6.12: no IOMMU_HWPT_ALLOC_PASID, no PASID test ops in the semantic model beyond the switch', () => {
    const { fd } = model({});
    const ioasId = fd.ioasAlloc().ioasId;
    const dev = fd.testMockDomain({ ptId: ioasId });
    expect(fd.hwptAlloc({ devId: dev.idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_PASID }).errno).to.equal(EOPNOTSUPP);
  });

  it('pasid_set_dirty_tracking: a dirty-tracking PASID-compatible HWPT at a PASID; a RID on a non-compatible auto domain refuses it', () => {
    const { fd } = model();
    const ioasId = fd.ioasAlloc().ioasId;
    const base = fd.testMockDomain({ ptId: ioasId });
    const hwptId = fd.hwptAlloc({ devId: base.idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_PASID | U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING }).hwptId;
    const dev = fd.testMockDomainFlags({ ptId: hwptId, devFlags: U.MOCK_FLAGS_DEVICE_PASID });
    expect(fd.testPasidAttach({ stdevId: dev.stdevId, pasid: 100, ptId: hwptId }).errno).to.equal(0);
    expect(fd.hwptSetDirtyTracking({ hwptId, enable: true }).errno).to.equal(0);
    expect(fd.testPasidDetach({ stdevId: dev.stdevId, pasid: 100 }).errno).to.equal(0);
    expect(fd.destroy(dev.stdevId).errno).to.equal(0);
    const ioas2 = fd.ioasAlloc().ioasId;
    const noDirty = fd.testMockDomainFlags({ ptId: ioas2, devFlags: U.MOCK_FLAGS_DEVICE_PASID | U.MOCK_FLAGS_DEVICE_NO_DIRTY });
    expect(fd.testPasidAttach({ stdevId: noDirty.stdevId, pasid: 100, ptId: hwptId }).errno).to.equal(EINVAL);
  });
});

describe('model: IOMMU_IOAS_CHANGE_PROCESS (KernelBehaviour.ioasChangeProcess)', () => {
  /** A mapped page whose iopt_pages is made a file's (IOMMU_IOAS_MAP_FILE's model is the mapfile slice's). */
  function mapAsFile(fd: IommufdModel, ioasId: number): bigint {
    const r = fd.ioasMap({ ioasId, flags: RW, userVa: BUF, length: 4096n });
    expect(r.errno).to.equal(0);
    const ioas = fd.objects.get<IoasObject>(ioasId, 'ioas')!;
    for (const area of ioas.iopt.areas) area.pages.type = 'file';
    return r.iova;
  }

  for (const [name, mm] of [['account_user', false], ['account_mm', true]] as const) {
    it(`${name}: refused (EINVAL, nothing moves) with a user mapping; moves VmPin${mm ? ' and VmLck' : ''} to the calling process`, () => {
      const { fd, process } = model(SEVENTWO, false);
      if (mm) expect(fd.option({ optionId: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 1 }).errno).to.equal(0);
      const ioasId = fd.ioasAlloc().ioasId;
      fd.testMockDomain({ ptId: ioasId });
      const user = fd.ioasMap({ ioasId, flags: RW, userVa: BUF, length: 4096n });
      expect(fd.ioasChangeProcess().errno).to.equal(EINVAL);
      expect(fd.ioasUnmap({ ioasId, iova: user.iova, length: 4096n }).errno).to.equal(0);
      mapAsFile(fd, ioasId);
      expect(fd.ioasChangeProcess().errno).to.equal(0);
      expect(process.mmPinnedVm).to.equal(1n);
      const child = process.fork();
      expect(fd.asProcess(child, () => fd.ioasChangeProcess()).errno).to.equal(0);
      expect([process.mmPinnedVm, process.mmLockedVm]).to.deep.equal([0n, 0n]);
      expect([child.mmPinnedVm, child.mmLockedVm]).to.deep.equal([1n, mm ? 1n : 0n]);
      // later unpins charge the new process
      expect(fd.close().errno).to.equal(0);
      expect([child.mmPinnedVm, child.mmLockedVm]).to.deep.equal([0n, 0n]);
    });
  }

  it('the caller over its RLIMIT_MEMLOCK: ENOMEM and nothing moves', () => {
    const { fd, process } = model(SEVENTWO, false);
    const ioasId = fd.ioasAlloc().ioasId;
    fd.testMockDomain({ ptId: ioasId });
    mapAsFile(fd, ioasId);
    const child = process.fork();
    child.memlockLimit = 0n;
    expect(fd.asProcess(child, () => fd.ioasChangeProcess()).errno).to.equal(ENOMEM);
    expect([process.mmPinnedVm, child.mmPinnedVm]).to.deep.equal([1n, 0n]);
  });

  it('__reserved is EOPNOTSUPP; absent on 6.12 (no row: ENOTTY through the table)', () => {
    expect(model().fd.ioasChangeProcess({ reserved: 1 }).errno).to.equal(EOPNOTSUPP);
  });
});
