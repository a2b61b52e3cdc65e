// The model's IOMMU_IOAS_MAP_FILE (memfd and dma-buf areas) and the
// selftest's dma-bufs, without a kernel: the rules of 7.2.13's
// drivers/iommu/iommufd/ioas.c (iommufd_ioas_map_file), io_pagetable.c
// (iopt_map_file_pages), pages.c (iopt_alloc_file_pages,
// iopt_alloc_dmabuf_pages, iopt_revoke_notify, memfd pinning through
// mm/gup.c:memfd_pin_folios) and selftest.c (iommufd_test_dmabuf_get,
// _revoke), each also run against the kernel in lockstep by the mirror
// (suites/vm/mock/selftest: iommufd_mock_domain.one_domain_file*,
// iommufd_ioas.*.dmabuf_*, basic_fail_nth.map_file_domain).
import { expect } from 'chai';
import { IommuFd } from '../../lib/kernel/index.ts';
import { LockstepProcess } from '../../lib/lockstep/index.ts';
import { IommufdModel, type MapFileTarget } from '../../lib/model/iommufd.ts';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { MAP_SHARED } from '../../lib/sys/index.ts';
import { preserveLockstepStats } from '../support/lockstep-stats.ts';
import { skipBecause } from '../support/skip.ts';
import { BASELINE_BEHAVIOUR } from '../../lib/model/kernel-behaviour.ts';
import { ModelProcess, PROT_READ, PROT_WRITE, ShmemFile } from '../../lib/model/process.ts';

const R = 4;
const W = 2;
const FIXED = 1;
const RW = R | W;
const PAGE = 4096n;
const [EBADF, ENODEV, EINVAL, EOVERFLOW, EOPNOTSUPP] = [9, 19, 22, 75, 95];
const BEHAVIOUR = { ...BASELINE_BEHAVIOUR, mockGenericPt: true, ioasMapFile: true, testDmabuf: true };
const MAPPED_AT = 0x7f00_0010_0000n;

function setup(opts: { ipcLock?: boolean } = {}) {
  const process = new ModelProcess();
  process.credentials = { ipcLock: opts.ipcLock ?? true, sysResource: true };
  const fd = new IommufdModel(process, undefined, BEHAVIOUR);
  const ioasId = fd.ioasAlloc().ioasId;
  return { process, fd, ioasId };
}

/** memfd_mmap(): a memfd of `size` bytes mapped MAP_SHARED at MAPPED_AT. */
function memfd(process: ModelProcess, size: bigint): { file: ShmemFile; target: MapFileTarget } {
  const file = new ShmemFile(process.memory, false);
  file.truncate(size);
  process.memory.map(MAPPED_AT, size, PROT_READ | PROT_WRITE, true, { file, offset: 0n });
  return { file, target: { kind: 'memfd', file } };
}

describe('model IOMMU_IOAS_MAP_FILE: memfds', () => {
  it('checks as IOMMU_IOAS_MAP does, then a zero length (EINVAL) and a wrapping range (EOVERFLOW), then the fd (EBADF)', () => {
    const { process, fd, ioasId } = setup();
    const { target } = memfd(process, 4n * PAGE);
    expect(fd.ioasMapFile({ ioasId, flags: 8 | RW, file: target, start: 0, length: PAGE }).errno).to.equal(EOPNOTSUPP);
    expect(fd.ioasMapFile({ ioasId, flags: FIXED, file: target, start: 0, length: PAGE }).errno).to.equal(EINVAL);
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 0 }).errno).to.equal(EINVAL);
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0xffff_ffff_ffff_f000n, length: 2n * PAGE }).errno).to.equal(EOVERFLOW);
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: null, start: 0, length: PAGE }).errno).to.equal(EBADF);
  });

  it('without a domain pins nothing, even past the end of the file (memfd_pin_folios runs only with a domain or an access)', () => {
    const { process, fd, ioasId } = setup();
    const { target } = memfd(process, 2n * PAGE);
    const r = fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 8n * PAGE });
    expect(r.errno).to.equal(0);
    expect(process.mmPinnedVm).to.equal(0n);
  });

  it('with a mock domain pins the file pages the mapping shares, charged like user pages; past the end is EINVAL', () => {
    const { process, fd, ioasId } = setup();
    const { file, target } = memfd(process, 4n * PAGE);
    const md = fd.testMockDomain({ ptId: ioasId });
    expect(md.errno).to.equal(0);
    const r = fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 4n * PAGE });
    expect(r.errno).to.equal(0);
    expect(process.mmPinnedVm, 'VmPin').to.equal(4n);
    // The domain holds the very pages the shared mapping shows (MD_CHECK_MAP, MD_CHECK_REFS).
    expect(fd.testCheckMap({ hwptId: md.hwptId, iova: r.iova, length: 4n * PAGE, uptr: MAPPED_AT }).errno).to.equal(0);
    expect(fd.testCheckRefs({ uptr: MAPPED_AT, length: 4n * PAGE, refs: 1 }).errno).to.equal(0);
    // "if (end >= i_size_read(file_inode(memfd))) return -EINVAL"
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 5n * PAGE }).errno).to.equal(EINVAL);
    file.truncate(0n);
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: PAGE }).errno).to.equal(EINVAL);
    expect(fd.ioasUnmap({ ioasId, iova: r.iova, length: 4n * PAGE }).errno).to.equal(0);
    expect(process.mmPinnedVm).to.equal(0n);
  });

  it('a file memfd_pin_folios does not take (neither shmem nor hugetlbfs) maps lazily and fails to pin with EINVAL', () => {
    const { fd, ioasId } = setup();
    // Inside the mock aperture, so that attaching the domain gets as far as pinning.
    expect(fd.ioasMapFile({ ioasId, flags: FIXED | RW, file: { kind: 'other' }, start: 0, length: PAGE, iova: 0x100_0000n }).errno).to.equal(0);
    expect(fd.testMockDomain({ ptId: ioasId }).errno).to.equal(EINVAL);
  });

  it('keeps the file offset\'s alignment for an automatic IOVA (iopt_alloc_area_pages: start_byte + pages->start)', () => {
    const { process, fd, ioasId } = setup();
    const { target } = memfd(process, 64n * PAGE);
    const r = fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 16n * PAGE, length: 16n * PAGE });
    expect(r.errno).to.equal(0);
    expect(r.iova % (16n * PAGE)).to.equal(0n);
  });
});

describe('model IOMMU_IOAS_MAP_FILE: the selftest\'s dma-bufs', () => {
  const dmabuf = (fd: IommufdModel, length: number) => {
    const r = fd.testDmabufGet({ length });
    expect(r.errno).to.equal(0);
    return { kind: 'dmabuf' as const, dmabuf: r.dmabuf! };
  };

  it('DMABUF_GET takes 1 .. 512 pages, rounded up to a page', () => {
    const { fd } = setup();
    expect(fd.testDmabufGet({ length: 0 }).errno).to.equal(EINVAL);
    expect(fd.testDmabufGet({ length: 512 * 4096 + 1 }).errno).to.equal(EINVAL);
    expect(fd.testDmabufGet({ length: 1 }).dmabuf!.size).to.equal(PAGE);
  });

  it('maps only inside the dma-buf, neither pinned nor charged', () => {
    const { process, fd, ioasId } = setup({ ipcLock: false });
    const target = dmabuf(fd, 4 * 4096);
    fd.testMockDomain({ ptId: ioasId });
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 0 }).errno).to.equal(EINVAL);
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 4n * PAGE, length: 4n * PAGE }).errno).to.equal(EINVAL);
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 4n * PAGE + 1n }).errno).to.equal(EINVAL);
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 4n * PAGE }).errno).to.equal(0);
    expect(process.mmPinnedVm).to.equal(0n);
    expect(process.userLockedVm).to.equal(0n);
  });

  it('revoke unmaps every attachment for good; a revoked dma-buf refuses a new map (ENODEV) until un-revoked', () => {
    const { fd, ioasId } = setup();
    const target = dmabuf(fd, 4 * 4096);
    const md = fd.testMockDomain({ ptId: ioasId });
    const first = fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 4n * PAGE });
    expect(first.errno).to.equal(0);
    const ioas = fd.getIoas(ioasId)!;
    const area = ioas.iopt.areas.iterFirst(first.iova, first.iova)!;
    expect(area.pages.pinned.size, 'mapped before the revoke').to.equal(4);
    expect(fd.testDmabufRevoke({ file: target, revoked: 1 }).errno).to.equal(0);
    expect(area.pages.pinned.size, 'mapped after the revoke').to.equal(0);
    // A domain attached now maps nothing of the revoked area, and succeeds.
    expect(fd.hwptAlloc({ devId: md.idevId, ptId: ioasId }).errno).to.equal(0);
    expect(fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 4n * PAGE }).errno).to.equal(ENODEV);
    // Un-revoking invalidates the attachments again (dma_buf_invalidate_mappings): the old area stays revoked.
    expect(fd.testDmabufRevoke({ file: target, revoked: 0 }).errno).to.equal(0);
    const second = fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 4n * PAGE });
    expect(second.errno).to.equal(0);
    expect(area.pages.pinned.size).to.equal(0);
    expect(fd.ioasUnmap({ ioasId, iova: first.iova, length: 4n * PAGE }).errno).to.equal(0);
    expect(fd.ioasMapFile({ ioasId, flags: FIXED | RW, file: target, start: 0, length: 4n * PAGE, iova: first.iova }).errno).to.equal(0);
  });

  it('DMABUF_REVOKE needs a dma-buf: EBADF without a file, EINVAL for another file', () => {
    const { process, fd } = setup();
    expect(fd.testDmabufRevoke({ file: null, revoked: 1 }).errno).to.equal(EBADF);
    expect(fd.testDmabufRevoke({ file: memfd(process, PAGE).target, revoked: 1 }).errno).to.equal(EINVAL);
  });

  it('an access cannot pin a dma-buf area (iopt_area_add_access: EINVAL)', () => {
    const { fd, ioasId } = setup();
    const target = dmabuf(fd, 4 * 4096);
    const r = fd.ioasMapFile({ ioasId, flags: RW, file: target, start: 0, length: 4n * PAGE });
    const access = fd.testCreateAccess({ ioasId, flags: 1 });
    expect(fd.testAccessPages({ accessFd: access.accessFd, iova: r.iova, length: PAGE, uptr: 0 }).errno).to.equal(EINVAL);
  });
});

describe('model IOMMU_IOAS_MAP_FILE through a session (model-only mode)', () => {
  preserveLockstepStats();
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  it('pairs a real memfd with the model\'s file: its mapping and MAP_FILE share pages; DMABUF_GET\'s fd is the model\'s', () => {
    const proc = new LockstepProcess('model', { iommufd: (p) => new IommufdModel(p, undefined, BEHAVIOUR) });
    const fd = IommuFd.open(proc.sys).iommufd!;
    const ioasId = fd.ioasAlloc().ioasId;
    const md = fd.testMockDomain({ ptId: ioasId });
    expect(md.errno).to.equal(0);
    const mfd = proc.memfdCreate('buffer', 0);
    expect(mfd).to.be.greaterThan(0);
    expect(proc.ftruncate(mfd, 4 * 4096)).to.equal(0);
    const buf = proc.mmap(4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    const r = fd.ioasMapFile({ ioasId, flags: RW, fd: mfd, start: 0, length: 4 * 4096 });
    expect(r.errno).to.equal(0);
    expect(fd.testCheckMap({ hwptId: md.hwptId, iova: r.iova, length: 4 * 4096, uptr: buf.address }).errno).to.equal(0);
    expect(proc.ftruncate(mfd, 0)).to.equal(0);
    expect(fd.ioasMapFile({ ioasId, flags: RW, fd: mfd, start: 0, length: 4096 }).errno).to.equal(EINVAL);
    expect(proc.sys.close(mfd)).to.equal(0);
    const dmabuf = fd.testDmabufGet({ length: 4096 });
    expect(dmabuf.errno).to.equal(0);
    expect(fd.ioasMapFile({ ioasId, flags: RW, fd: dmabuf.dmabufFd, start: 0, length: 4096 }).errno).to.equal(0);
    expect(proc.sys.close(dmabuf.dmabufFd)).to.equal(0);
    expect(proc.munmap(buf)).to.equal(0);
    expect(fd.close().errno).to.equal(0);
  });
});
