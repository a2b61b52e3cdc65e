// The reproducers of the known kernel findings (fixtures/findings.json,
// docs/findings/): each test provokes its finding and checks the kernel log
// for the finding's signature. Where it reproduces, the test passes and the
// run reports the finding under its id; where the running kernel (by probe)
// should have it and it no longer reproduces, the test fails, so the entry
// is revisited; where the kernel lacks what the finding needs, it skips
// with that reason.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import * as U from '../../../lib/uapi/index.ts';
import { KernelLogTail, kernelProblems } from '../../../lib/vm/kernel-log.ts';
import { findingOf, type KernelFinding } from '../../../lib/vm/findings.ts';
import { finding, reportFinding } from '../../support/findings.ts';
import { dmabufGetSeen, IommuFd } from '../../../lib/kernel/index.ts';
import { PACKAGE_ROOT } from '../../../lib/package-root.ts';
import { contigLeafDirty } from '../../../lib/kernel/dirty-leaf.ts';
import { errnoNumber, sys } from '../../../lib/sys/index.ts';
import { requireHwptAllocFlag, requireMockDomain, requireTestOp, requireVfioCompat } from '../../support/kernel.ts';
import { lockstep } from '../../support/lockstep.ts';
import { skipBecause } from '../../support/skip.ts';
import { DIRTY_BEFORE_HOLE, zeroLengthRead, type ZeroLengthRead } from './findings/zero-length-bitmap.ts';
import { EINVAL, PAGE_SIZE, assertOk, ioasAlloc, mockDomain, selftestBuffer, teardownIommufd } from '../../support/iommufd-utils.ts';

const EOVERFLOW = errnoNumber('EOVERFLOW');


/** Runs `provoke` and returns the kernel reports it caused that are `f`. */
function reportsOf(f: KernelFinding, log: KernelLogTail, provoke: () => void): string[] {
  log.read();
  provoke();
  return kernelProblems(log.read().join('\n')).filter((p) => findingOf(p, [f]) !== null);
}

describe('findings', () => {
  it('KF-0001 VFIO_IOMMU_MAP_DMA with neither READ nor WRITE on the compat IOAS of a mock domain', function () {
    const features = requireMockDomain(this);
    requireVfioCompat(this);
    const f = finding('KF-0001');
    const log = KernelLogTail.open();
    if (!log) skipBecause(this, 'the kernel log (/dev/kmsg) cannot be read');
    const buffer = selftestBuffer();
    const self = { fd: lockstep().openIommufd() };
    let errno = -1;
    let reports: string[];
    try {
      const compat = lockstep().compatOn(self.fd);
      const ioasId = ioasAlloc(self);
      mockDomain(self, ioasId);
      assertOk(self.fd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_SET, ioasId }), 'IOMMU_VFIO_IOAS_SET');
      assertOk(compat.setIommu(U.VFIO_TYPE1v2_IOMMU), 'VFIO_SET_IOMMU');
      // vfio_compat.c:iommufd_vfio_map_dma: flags 0 passes (only unknown bits are refused) and
      // iopt_map_user_pages gets iommu_prot = IOMMU_CACHE, which the domain's map_range WARNs on.
      reports = reportsOf(f, log!, () => {
        errno = compat.mapDma({ flags: 0, vaddr: buffer.address, iova: U.MOCK_APERTURE_START, size: PAGE_SIZE }).errno;
      });
    } finally {
      log!.close();
      teardownIommufd(self.fd);
    }
    if (reports.length > 0) {
      // Reproduced: the map failed cleanly after the WARN (lockstep checked the model's EINVAL and the pins).
      expect(errno, 'VFIO_IOMMU_MAP_DMA errno').to.equal(EINVAL);
      return;
    }
    if (features.changes.mockGenericPt) {
      throw new Error(`${f.id} no longer reproduces on this kernel (MAP_DMA flags 0 gave errno ${errno}, no WARN in map_range): it was fixed; update ${f.doc} and fixtures/findings.json`);
    }
    skipBecause(this, `kernel lacks the generic page table mock domain (its xarray mock maps any protection): ${f.id} cannot occur`);
  });
});

describe('findings', () => {
  it('KF-0002 GET_DIRTY_BITMAP of a dirty 4 KiB leaf of two 2 KiB items', function () {
    const features = requireMockDomain(this);
    requireHwptAllocFlag(this, 'dirtyTracking');
    requireTestOp(this, 'DIRTY');
    if (!features.changes.mockGenericPt) skipBecause(this, 'kernel lacks the generic page table mock domain (its xarray mock has one 2 KiB entry per item, no multi-item leaf): KF-0002 cannot occur');
    const f = finding('KF-0002');
    // The kernel alone: the model follows what the feature probe saw (KernelBehaviour.dirtyContigLeafShort),
    // so judging the symptom is this test's job, against what the leaf must report.
    const { iommufd } = IommuFd.open();
    if (!iommufd) throw new Error('/dev/iommu did not open');
    let seen: ReturnType<typeof contigLeafDirty>;
    try {
      const ioas = iommufd.ioasAlloc();
      const mock = iommufd.testMockDomain({ ptId: ioas.ioasId });
      expect(mock.errno, 'IOMMU_TEST_OP_MOCK_DOMAIN').to.equal(0);
      seen = contigLeafDirty(iommufd, sys(), mock.idevId);
    } finally {
      iommufd.close();
    }
    if (!seen) throw new Error('the dirty-tracking steps failed (see lib/kernel/dirty-leaf.ts)');
    // A dirty leaf is dirty as a whole (iommu_pt.h marks and cleans every item of it): both halves.
    if (seen.wholeLeaf === 0b11) throw new Error(`${f.id} no longer reproduces on this kernel (the whole leaf reads 0b11): it was fixed; update ${f.doc} and fixtures/findings.json`);
    expect(seen.wholeLeaf, `${f.id}: the bitmap of a leaf dirtied in its second half (0b01: reported one item short, at its first)`).to.equal(0b01);
  });

  it('KF-0003 GET_DIRTY_BITMAP that starts at the second item of a dirty two-item leaf', async function () {
    const features = requireMockDomain(this);
    requireHwptAllocFlag(this, 'dirtyTracking');
    requireTestOp(this, 'DIRTY');
    if (!features.changes.mockGenericPt) skipBecause(this, 'kernel lacks the generic page table mock domain (no multi-item leaf): KF-0003 cannot occur');
    const f = finding('KF-0003');
    // Where it reproduces, the ioctl never returns and its CPU stays stuck: the rest of a run would crawl.
    if (process.env.IOMMUFD_CONFORMANCE_HANG_FINDINGS !== '1') {
      skipBecause(this, `${f.id} hangs a kernel CPU for good where it reproduces: run it in a boot of its own (IOMMUFD_CONFORMANCE_HANG_FINDINGS=1 iommufd-conformance vm --profile mock --grep ${f.id})`);
    }
    // Starting node with tsx under TCG takes tens of seconds: the 20 s a hang is judged by start at the read.
    this.timeout(240000);
    // In a child process, so that this one can tell a hang from an answer.
    const child = spawn(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'suites/vm/mock/findings/second-half-read.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const exited = await new Promise<boolean>((done) => {
      let timer = setTimeout(() => done(false), 180000);
      let reading = false;
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (!reading && out.includes('reading the second half')) {
          reading = true;
          clearTimeout(timer);
          timer = setTimeout(() => done(false), 20000);
        }
      });
      child.on('exit', () => {
        clearTimeout(timer);
        done(true);
      });
    });
    if (!exited) {
      // Let this process end without it: the child cannot be killed until its ioctl returns.
      child.stdout.destroy();
      child.unref();
      const reached = out.includes('reading the second half');
      expect(reached, `${f.id}: the child stopped before the read (output: ${out.trim()})`).to.equal(true);
      console.log(`      ${f.id} reproduced: the read of the leaf's second half has not returned after 20 s (its CPU stays stuck)`);
      return;
    }
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as { bit: number; strayBytes: number };
    if (result.bit === 1 && result.strayBytes === 0) throw new Error(`${f.id} no longer reproduces on this kernel (the read returned the leaf, nothing stray): update ${f.doc} and fixtures/findings.json`);
    throw new Error(`${f.id}: the read returned but wrongly: ${JSON.stringify(result)} (expected bit 1 and no stray byte)`);
  });
});

describe('findings', () => {
  it('KF-0004 GET_DIRTY_BITMAP of length 0 at IOVA 0 writes dirty bits past a bitmap of no bytes', function () {
    const features = requireMockDomain(this);
    requireHwptAllocFlag(this, 'dirtyTracking');
    requireTestOp(this, 'DIRTY');
    const f = finding('KF-0004');
    if (!features.changes.dirtyBitmapZeroLength) skipBecause(this, `kernel refuses a GET_DIRTY_BITMAP of length 0 (EINVAL from io_pagetable.c:iommufd_check_iova_range): ${f.id} cannot occur`);
    if (!features.changes.mockGenericPt) skipBecause(this, `kernel lacks the generic page table mock (MOCK_IOMMUPT_HUGE, the one mock domain that maps IOVA 0): ${f.id} cannot be shown`);
    // The kernel alone: the model follows what the probe saw (KernelBehaviour.dirtyBitmapZeroLength);
    // judging the symptom is this test's job, against what the uAPI says a bitmap of length 0 holds: nothing.
    const { iommufd } = IommuFd.open();
    if (!iommufd) throw new Error('/dev/iommu did not open');
    let seen: ZeroLengthRead;
    try {
      const ioas = iommufd.ioasAlloc();
      const mock = iommufd.testMockDomain({ ptId: ioas.ioasId });
      expect(mock.errno, 'IOMMU_TEST_OP_MOCK_DOMAIN').to.equal(0);
      seen = zeroLengthRead(iommufd, sys(), mock.idevId);
    } finally {
      iommufd.close();
    }
    if (seen.errno !== 0 || Object.keys(seen.written).length === 0) {
      throw new Error(`${f.id} no longer reproduces on this kernel (${JSON.stringify(seen)}): it was fixed; update ${f.doc} and fixtures/findings.json`);
    }
    // Reproduced: success; the dirty page before the hole written 511 bytes past `data` (where a bitmap of
    // 16 MiB from IOVA 0 has it) and cleared; the walk stopped at the hole (the page after it neither
    // written nor cleared); anywhere but IOVA 0, length - 1 overflows (EOVERFLOW).
    const stray = { [DIRTY_BEFORE_HOLE.byte]: DIRTY_BEFORE_HOLE.bit };
    expect(seen, `${f.id}: what the read of length 0 did`).to.deep.equal({ errno: 0, written: stray, errnoAtPage: EOVERFLOW, beforeHoleStillDirty: false, afterHoleStillDirty: true });
    console.log(`      ${f.id} reproduced: errno 0, byte ${DIRTY_BEFORE_HOLE.byte} past data set to 0x${DIRTY_BEFORE_HOLE.bit.toString(16)}, the dirty bit consumed`);
  });
});

describe('findings', () => {
  it('KF-0005 IOMMU_TEST_OP_DMABUF_GET returns 0 and leaves the dma-buf fd unreported', function () {
    const features = requireTestOp(this, 'DMABUF_GET');
    const f = finding('KF-0005');
    // The kernel alone: the model follows what the feature probe saw (KernelBehaviour.dmabufGetFdUnreported);
    // judging the symptom is this test's job, against the op's contract: its value is the new dma-buf's fd.
    const { iommufd } = IommuFd.open();
    if (!iommufd) throw new Error('/dev/iommu did not open');
    let seen: ReturnType<typeof dmabufGetSeen>;
    try {
      seen = dmabufGetSeen(iommufd, PAGE_SIZE);
    } finally {
      iommufd.close();
    }
    expect(seen.errno, 'IOMMU_TEST_OP_DMABUF_GET errno').to.equal(0);
    const value = seen.value;
    const made = seen.made.map((m) => m.fd);
    const dmabufs = seen.made.map((m) => m.dmabuf);
    expect(made.length, `${f.id}: fds the call made`).to.equal(1);
    expect(dmabufs[0], `${f.id}: fd ${made[0]} is a dma-buf (its /proc/self/fd link reads /dmabuf:)`).to.equal(true);
    if (value === made[0]) {
      // 7.2.13 (and a fixed 7.3): the value is the fd. Nothing can tell a kernel that never had the bug
      // from one where it was fixed, so this is not a failure; the probe must agree.
      expect(features.changes.dmabufGetFdUnreported, 'the feature probe (changes.dmabufGetFdUnreported)').to.equal(false);
      skipBecause(this, `kernel returns the dma-buf's fd from IOMMU_TEST_OP_DMABUF_GET (fd ${value}): ${f.id} does not occur on it`);
    }
    // Reproduced: 0 returned, the new fd (not 0) a dma-buf nobody was told of.
    expect(value, `${f.id}: the op's value`).to.equal(0);
    expect(made[0], `${f.id}: the fd made`).to.not.equal(0);
    expect(features.changes.dmabufGetFdUnreported, 'the feature probe (changes.dmabufGetFdUnreported)').to.equal(true);
    reportFinding(f.id, `the op returned 0; its dma-buf was fd ${made[0]} (closed again)`);
  });
});
