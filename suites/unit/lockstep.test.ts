// The lockstep layer at the system-call boundary, on a stand-in for the
// kernel (the model itself, behind a SysCore, with its own fd numbers and
// its own VmPin): typed client calls and raw bytes are compared byte for
// byte; a model with one size rule flipped is caught on a raw short struct;
// a call the model cannot answer fails unless its reason is listed; a kernel
// that pins one page more is caught on the very call.
import { expect } from 'chai';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';
import { preserveLockstepStats } from '../support/lockstep-stats.ts';
import { IommuFd } from '../../lib/kernel/index.ts';
import { DivergenceError, describeStats, differences, LockstepProcess, lockstepStats, ModelSysCore, UncheckedCallError } from '../../lib/lockstep/index.ts';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { BASELINE_BEHAVIOUR } from '../../lib/model/kernel-behaviour.ts';
import { IOMMUFD_IOCTL_TABLE } from '../../lib/model/iommufd/main.ts';
import { ModelProcess } from '../../lib/model/process.ts';
import { ModelSyscalls, type ModelPlatform } from '../../lib/model/syscalls.ts';
import { Type1ContainerModel, Type1GroupModel } from '../../lib/model/type1.ts';
import { PGSIZE_BITS_UNKNOWN } from '../../lib/model/type1-platform.ts';
import { AMD_IO_PGTABLE_PLATFORM } from '../support/platforms.ts';
import { VfioContainer, VfioGroup } from '../../lib/kernel/vfio.ts';
import { MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../lib/sys/index.ts';
import * as U from '../../lib/uapi/index.ts';

/** A LockstepProcess whose "kernel" is the model on its own process, numbering its fds from 20000. */
function withStandInKernel(platform: ModelPlatform = {}, kernelSys?: (s: ModelSyscalls) => void) {
  const kproc = new ModelProcess();
  const ksys = new ModelSyscalls(kproc, {}, 20_000);
  kernelSys?.(ksys);
  const kernel = new ModelSysCore(ksys, { unknownFaults: true });
  const proc = new LockstepProcess('lockstep', platform, { kernel, readAccounting: () => ({ pin: kproc.mmPinnedVm, lck: kproc.mmLockedVm }) });
  proc.model.credentials = { ...kproc.credentials };
  proc.model.memlockLimit = kproc.memlockLimit;
  return { proc, kproc, ksys, fd: IommuFd.open(proc.sys).iommufd! };
}

describe('lockstep', () => {
  preserveLockstepStats();
  // The session reads its limits and capabilities, and addresses, through the addon.
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  it('compares typed calls byte for byte and pairs the fds a call makes', () => {
    const { fd, proc } = withStandInKernel();
    const ioas = fd.ioasAlloc();
    expect(ioas).to.deep.include({ errno: 0 });
    expect(fd.ioasUnmap({ ioasId: ioas.ioasId, iova: 0x1000n, length: 0x1000n }).errno).to.equal(2);
    const access = fd.testCreateAccess({ ioasId: ioas.ioasId });
    expect(access.accessFd).to.be.at.least(20_000);
    expect(proc.fdMap.get(access.accessFd)).to.be.within(10_000, 19_999);
    // The access fd goes in as the kernel's number; the model gets its own.
    expect(fd.testAccessRw({ accessFd: access.accessFd, iova: 0x1000n, length: 0n, uptr: 0n }).errno).to.equal(22);
    expect(fd.closeAccess(access.accessFd).errno).to.equal(0);
    expect(fd.ioasIovaRanges({ ioasId: ioas.ioasId }).ranges).to.have.length(1);
  });

  it('runs a fault fd\'s read and write in lockstep: the records read, the responses taken, a differing write caught', () => {
    const { fd, proc } = withStandInKernel();
    const ioasId = fd.ioasAlloc().ioasId;
    const dev = fd.testMockDomainFlags({ ptId: ioasId, devFlags: 0 });
    const parent = fd.hwptAlloc({ devId: dev.idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).hwptId;
    const fault = fd.faultQueueAlloc();
    const nested = fd.hwptAlloc({ devId: dev.idevId, ptId: parent, flags: U.IOMMU_HWPT_FAULT_ID_VALID, faultId: fault.faultId, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data: new Uint8Array(4) });
    expect(fd.testMockDomainReplace({ stdevId: dev.stdevId, ptId: nested.hwptId }).errno).to.equal(0);
    expect(fd.testTriggerIopf({ devId: dev.idevId, pasid: 0, grpid: 1, perm: 1, addr: 0x1000n }).errno).to.equal(0);
    const rec = new Uint8Array(U.iommu_hwpt_pgfault.sizeof);
    expect(fd.readEventq(fault.faultFd, rec.subarray(0, 39))).to.deep.equal({ errno: 29, bytes: 0 });
    expect(fd.readEventq(fault.faultFd, rec).bytes).to.equal(rec.length);
    const cookie = U.iommu_hwpt_pgfault.decode(rec).cookie;
    expect(fd.writeEventq(fault.faultFd, U.iommu_hwpt_page_response.encode({ cookie, code: 0 })).bytes).to.equal(8);
    // The model told that an unknown cookie is taken: the kernel's EINVAL is a divergence on the write.
    const writeFile = proc.modelSys.files.get(proc.fdMap.get(fd.fd)!)!;
    if (writeFile.kind !== 'iommufd') throw new Error('not the iommufd');
    writeFile.ctx.writeFile = () => 8;
    expect(() => fd.writeEventq(fault.faultFd, U.iommu_hwpt_page_response.encode({ cookie, code: 0 }))).to.throw(DivergenceError, /write\(\d+, 8\)/);
  });

  it('catches a model with one size rule flipped on a raw short struct, with errno names and decoded fields', () => {
    // The model takes IOMMU_IOAS_ALLOC's minimum size as 8 (offsetofend(flags)) where main.c has offsetofend(out_ioas_id) = 12.
    const { proc, fd } = withStandInKernel();
    proc.modelSys.iommufdTable = IOMMUFD_IOCTL_TABLE.with('IOMMU_IOAS_ALLOC', { minSize: 8 });
    const short = U.iommu_ioas_alloc.encode({}, { length: 8 });
    let caught: unknown;
    try {
      fd.ioctl(U.IOMMU_IOAS_ALLOC, short);
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(DivergenceError);
    const report = (caught as DivergenceError).report;
    expect(report).to.match(/lockstep divergence in IOMMU_IOAS_ALLOC on fd \d+ with \{"size":8,"flags":0,"out_ioas_id":0\}/);
    expect(report).to.match(/return\s+"EINVAL \(22\)"\s+"0"/);
  });

  it('compares a longer struct: a zero tail is accepted, a non-zero one is E2BIG, on both', () => {
    const { fd } = withStandInKernel();
    const before = lockstepStats().ops.IOMMU_IOAS_ALLOC?.checked ?? 0;
    const zero = U.iommu_ioas_alloc.encode({}, { tail: [0, 0, 0, 0] });
    expect(fd.ioctl(U.IOMMU_IOAS_ALLOC, zero).errno).to.equal(0);
    expect(U.iommu_ioas_alloc.read(zero, 'out_ioas_id')).to.equal(1);
    const nonZero = U.iommu_ioas_alloc.encode({}, { tail: [0, 0, 0, 1] });
    expect(fd.ioctl(U.IOMMU_IOAS_ALLOC, nonZero).errno).to.equal(7); // E2BIG
    expect(fd.ioctl(U.IOMMU_DESTROY, null).errno).to.equal(14); // EFAULT: get_user of the size
    expect(fd.ioctl(U._IO(U.IOMMUFD_TYPE, U.IOMMUFD_CMD_BASE + 24), U.iommu_destroy.encode({})).errno).to.equal(25); // ENOTTY: an empty slot (7.x fills 0x80..0x94)
    expect(lockstepStats().ops.IOMMU_IOAS_ALLOC!.checked).to.equal(before + 2);
  });

  it('fails a call the model cannot answer unless its reason is listed', () => {
    const { fd } = withStandInKernel();
    const ioas = fd.ioasAlloc();
    // allowed_iovas points to memory no one told the model about: the stand-in kernel faults, the model cannot say.
    const cmd = U.iommu_ioas_iova_ranges.encode({ ioas_id: ioas.ioasId, num_iovas: 1, allowed_iovas: 0x7fff_0000_0000n });
    expect(() => fd.ioctl(U.IOMMU_IOAS_IOVA_RANGES, cmd)).to.throw(UncheckedCallError, /user pointer to memory the model was not told about/);
    // A file the model has no platform for is refused at open.
    const noType1 = withStandInKernel({}, (k) => Object.assign(k.platform, { type1: (p: ModelProcess) => new Type1ContainerModel(p) }));
    expect(() => noType1.proc.sys.open('/dev/vfio/vfio', 2)).to.throw(UncheckedCallError, /open of a file the model does not know/);
  });

  it('compares GET_INFO without the iova_pgsizes bits the model cannot tell, counts them, and still catches a known bit', () => {
    // The model's AMD-Vi platform leaves 2^52.. unknown (type1-platform.ts AMD_IO_PGTABLE_PGSIZES_UNKNOWN); the
    // stand-in kernel has 6.1's constant, ((~0xFFFUL) & ~(2ULL << 38)), which claims them all.
    const amd = AMD_IO_PGTABLE_PLATFORM;
    const run = (kernelBitmap: bigint) => {
      const kernelAmd = { ...amd, pgsizeBitmap: kernelBitmap, pgsizeBitsUnknown: 0n };
      const type1 = (p: ModelProcess) => new Type1ContainerModel(p);
      const { proc } = withStandInKernel({ type1, group: (id) => new Type1GroupModel(id, amd) }, (k) =>
        Object.assign(k.platform, { type1, group: (id: number) => new Type1GroupModel(id, kernelAmd) }));
      const { container } = VfioContainer.open(proc.sys);
      const { group } = VfioGroup.open(7, proc.sys);
      expect(group!.setContainer(container!.fd).errno).to.equal(0);
      expect(container!.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
      return container!.getInfo();
    };
    const before = lockstepStats().partly?.[PGSIZE_BITS_UNKNOWN] ?? 0;
    expect(run(0xffffff7ffffff000n).iovaPgsizes).to.equal(0xffffff7ffffff000n);
    expect(lockstepStats().partly?.[PGSIZE_BITS_UNKNOWN]).to.equal(before + 1);
    expect(describeStats()).to.include(`checked but for bits the model cannot tell: ${PGSIZE_BITS_UNKNOWN}`);
    // 512 GiB (bit 39) is known: a kernel that claims it differs from the model.
    expect(() => run(0xffffffffffffff000n & ((1n << 64n) - 1n))).to.throw(DivergenceError, /VFIO_IOMMU_GET_INFO/);
  });

  it('pairs an fd a call makes and does not return (KF-0005\'s DMABUF_GET), and catches a model that expects it returned', () => {
    const leaky = { ...BASELINE_BEHAVIOUR, mockGenericPt: true, ioasMapFile: true, testDmabuf: true, dmabufGetFdUnreported: true };
    const kernelLeaks = (k: ModelSyscalls) => Object.assign(k.platform, { iommufd: (p: ModelProcess) => new IommufdModel(p, undefined, leaky) });
    const { fd, proc, ksys } = withStandInKernel({ iommufd: (p) => new IommufdModel(p, undefined, leaky) }, kernelLeaks);
    const ioasId = fd.ioasAlloc().ioasId;
    const made = ksys.fdMark();
    expect(fd.testDmabufGet({ length: 4096 })).to.deep.equal({ errno: 0, dmabufFd: 0 });
    const [kernelFd] = ksys.fdsInstalledSince(made);
    expect(proc.fdMap.get(kernelFd!), 'the kernel\'s unreported fd, paired with the model\'s').to.be.within(10_000, 19_999);
    expect(fd.ioasMapFile({ ioasId, flags: U.IOMMU_IOAS_MAP_READABLE, fd: kernelFd!, start: 0, length: 4096 }).errno).to.equal(0);
    // A model that has the op return the fd: the value differs (0 against a number), though each made one fd.
    const strict = withStandInKernel({ iommufd: (p) => new IommufdModel(p, undefined, { ...leaky, dmabufGetFdUnreported: false }) }, kernelLeaks);
    expect(() => strict.fd.testDmabufGet({ length: 4096 })).to.throw(DivergenceError, /DMABUF_GET[\s\S]*return\s+"0"\s+"1\d{4}"/);
  });

  it('catches a kernel that pins one page more than the model on the very call that did it', () => {
    class OnePageShort extends IommufdModel {
      override ioasMap(args: Parameters<IommufdModel['ioasMap']>[0]): ReturnType<IommufdModel['ioasMap']> {
        const r = super.ioasMap(args);
        if (r.errno === 0) this.process.mmPinnedVm -= 1n;
        return r;
      }
    }
    const { proc, kproc, fd } = withStandInKernel({ iommufd: (p) => new OnePageShort(p) });
    for (const p of [proc.model, kproc]) p.credentials = { ipcLock: false, sysResource: true };
    const m = proc.mmap(4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    kproc.memory.map(m.address, BigInt(m.length), PROT_READ | PROT_WRITE, true);
    const ioas = fd.ioasAlloc();
    expect(fd.testMockDomain({ ptId: ioas.ioasId }).errno).to.equal(0);
    expect(() => fd.ioasMap({ ioasId: ioas.ioasId, flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, userVa: m.address, length: 4 * 4096 }))
      .to.throw(DivergenceError, /divergence in IOMMU_IOAS_MAP[\s\S]*VmPin \(pages, since the session began\)\s+4\s+3/);
    proc.munmap(m);
  });

  it('compares nested fields and names their paths', () => {
    expect(differences({ errno: 0, ranges: [{ start: 1n, last: 2n }] }, { errno: 0, ranges: [{ start: 1n, last: 3n }] })).to.deep.equal([
      { path: 'ranges[0].last', kernel: 2n, model: 3n },
    ]);
    expect(differences({ n: 5 }, { n: 5n })).to.deep.equal([]);
  });

  it('prints the checked share and the unchecked calls per reason', () => {
    const { fd, proc } = withStandInKernel();
    proc.desync(fd, 'hugetlb buffer under 1 MiB mock IOPTEs');
    fd.ioasAlloc();
    expect(describeStats()).to.match(/% of \d+ calls checked against the model \(unchecked: .*hugetlb buffer under 1 MiB mock IOPTEs \d+/);
    expect(() => proc.desync(fd, 'a reason no one listed')).to.throw(UncheckedCallError);
  });

  it('labels model-only runs as such', () => {
    const proc = new LockstepProcess('model', {});
    const fd = IommuFd.open(proc.sys).iommufd!;
    expect(fd.ioasAlloc().errno).to.equal(0);
    expect(describeStats()).to.match(/MODEL ONLY \(no kernel: not a conformance result\)/);
  });
});
