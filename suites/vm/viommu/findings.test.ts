// The reproducers of the known kernel findings that need the profile's vfio-pci
// device (fixtures/findings.json, docs/findings/), as suites/vm/mock/findings.test.ts
// does for the mock domain's: each provokes its finding, passes and reports it
// where it reproduces, fails where the probe says the kernel has it and it no
// longer shows (or the other way round), and skips where it cannot occur.
import { expect } from 'chai';
import { iommufdTopAreaMapsFirstRun, kernelFeatures, type1UnmapEndWrapLeaks } from '../../../lib/kernel/features.ts';
import { IommuFd } from '../../../lib/kernel/iommufd.ts';
import { attachCompatDevice, EBADE, permutedConsecutivePages, topAreaRunSteps, type1EndWrapSteps } from '../../../lib/kernel/index.ts';
import { errnoName, MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../lib/sys/index.ts';
import * as U from '../../../lib/uapi/index.ts';
import { finding, reportFinding } from '../../support/findings.ts';
import { requireDeviceUnderTest, requireTestOp, requireVfioContainer } from '../../support/kernel.ts';
import { lockstep } from '../../support/lockstep.ts';
import { deviceRefusal } from '../../support/platform.ts';
import { skipBecause } from '../../support/skip.ts';

const SIZE = 0x1000;
const PAGES = SIZE / 4096;

describe('findings', () => {
  it('KF-0006 UNMAP_DMA of a type1 mapping that ends at IOVA 2^64 leaves its pages pinned and charged', function () {
    requireVfioContainer(this);
    const device = requireDeviceUnderTest(this);
    const refusal = deviceRefusal(device.groupId, 'type1');
    if (refusal) skipBecause(this, refusal);
    const f = finding('KF-0006');
    // Asked before this test holds the group (the probe borrows it); the model follows its answer.
    const probe = type1UnmapEndWrapLeaks();
    // In lockstep: the model's type1 charges a mapping to the mm that made it, and (KernelBehaviour's
    // type1UnmapEndWrapLeaks, from the probe) keeps it charged after the unmap, as 6.12's
    // vfio_unmap_unpin does. The mapping is made by a forked child kept alive, so the leak is charged to
    // the child's mm and goes away with it, not to this process (which later tests share).
    const session = lockstep();
    const buffer = session.mmap(SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    const container = session.openContainer();
    const group = session.openGroup(device.groupId);
    let pid = 0;
    try {
      expect(group.setContainer(container).errno, 'VFIO_GROUP_SET_CONTAINER').to.equal(0);
      expect(container.setIommu(U.VFIO_TYPE1v2_IOMMU).errno, 'VFIO_SET_IOMMU').to.equal(0);
      // The probe's steps (type1EndWrapSteps), here in lockstep: a forked child maps the last page of the
      // IOVA space; this process unmaps its range (6.12: finds nothing, `iova + size` wraps in
      // vfio_dma_do_unmap's walk too), then takes the group out of the container, which removes every
      // mapping whatever its range (the last group: vfio_iommu_unmap_unpin_all): between them the mapping is
      // gone, and so must be its charge.
      const seen = type1EndWrapSteps(session, container, group, buffer);
      if (seen.step === 'fork') throw new Error(`fork failed: ${errnoName(seen.errno)}`);
      pid = seen.pid;
      if (seen.step === 'map') {
        // The aperture stops short of 2^64 (VT-d): no such mapping can exist, and the probe could not ask.
        expect(probe, 'the probe (type1UnmapEndWrapLeaks) on a platform that cannot map the top').to.equal(null);
        skipBecause(this, `the IOMMU's aperture does not reach IOVA 2^64 - 1 (MAP_DMA of the last page: ${errnoName(seen.errno)}): ${f.id} cannot occur on this platform`);
      }
      session.checkForkedChild(pid, 'VFIO_IOMMU_UNMAP_DMA and VFIO_GROUP_UNSET_CONTAINER');
      // The uAPI's contract: the child's page is charged to it while mapped, and given back at UNMAP_DMA.
      expect(seen.charged, 'VmLck of the mapping child (pages)').to.equal(PAGES);
      expect(seen.unmap.errno, 'VFIO_IOMMU_UNMAP_DMA of its range').to.equal(0);
      expect(seen.unset, 'VFIO_GROUP_UNSET_CONTAINER').to.equal(0);
      if (seen.left === 0) {
        // 7.2.13 (and a fixed 6.12): the pages come back (at the unmap already: its size is the mapping's).
        // Nothing tells a kernel that never had the bug from a fixed one, so this is not a failure; the
        // probe must agree.
        expect(probe, 'the probe (type1UnmapEndWrapLeaks)').to.equal(false);
        skipBecause(this, `kernel gives back the pages of a mapping that ends at 2^64 at UNMAP_DMA: ${f.id} does not occur on it`);
      }
      expect(seen.left, `${f.id}: VmLck of the mapping child after the unmap (pages)`).to.equal(seen.charged);
      expect(probe, 'the probe (type1UnmapEndWrapLeaks)').to.equal(true);
      reportFinding(f.id, `UNMAP_DMA of the ${PAGES} page(s) ending at 2^64 unmapped ${seen.unmap.size} bytes; after the group left the container all ${seen.left} page(s) stayed charged to the (forked) process that mapped them`);
    } finally {
      group.close();
      container.close();
      if (pid) session.forkRelease(pid);
      session.munmap(buffer);
    }
  });
  it('KF-0007 IOAS_MAP of an area that ends at IOVA 2^64 maps one physical run from its first page into the domain', function () {
    requireTestOp(this, 'ACCESS_PAGES');
    if (!kernelFeatures().vfio.compatOnIommufd) skipBecause(this, 'kernel lacks the VFIO container compat on /dev/iommu (CONFIG_IOMMUFD_VFIO_CONTAINER)');
    const device = requireDeviceUnderTest(this);
    const refusal = deviceRefusal(device.groupId, 'iommufd');
    if (refusal) skipBecause(this, refusal);
    const f = finding('KF-0007');
    // Asked before this test holds the group (the probe borrows it).
    const probe = iommufdTopAreaMapsFirstRun();
    // Three physically consecutive pages p, p+1, p+2 laid out p, p+2, p+1: the run 6.12 maps (p, p+1, p+2)
    // is the same set of pages, so every pin still meets its unpin; only which IOVA reaches which page differs.
    const pages = permutedConsecutivePages();
    if (!pages) skipBecause(this, 'no three physically consecutive pages seen through /proc/self/pagemap (needs CAP_SYS_ADMIN): the harmless layout cannot be made');
    const opened = IommuFd.open();
    if (!opened.iommufd) throw new Error(`cannot open /dev/iommu: errno ${opened.errno}`);
    const iommufd = opened.iommufd;
    // The device on iommufd's compat IOAS, as the probe puts it there (attachCompatDevice).
    const attach = attachCompatDevice(iommufd, String(device.groupId), device.bdf);
    try {
      if (!attach.attached) expect.fail(`putting the device on the compat IOAS: ${attach.step} failed (${attach.errno ? errnoName(attach.errno) : 'not viable'})`);
      const ioasId = attach.ioasId;
      // The probe's steps (topAreaRunSteps): the pages at 16 MiB (the control) and at [2^64 - 12 KiB, 2^64),
      // each read back from the domain by IOMMU_TEST_OP_ACCESS_PAGES and checked against the user's pages.
      const seen = topAreaRunSteps(iommufd, ioasId, pages!);
      if (seen.step === 'top-map') {
        expect(probe, 'the probe (iommufdTopAreaMapsFirstRun) on a platform that cannot map the top').to.equal(null);
        skipBecause(this, `the IOMMU's aperture does not reach IOVA 2^64 - 1 (IOMMU_IOAS_MAP of the last 3 pages: ${errnoName(seen.errno)}): ${f.id} cannot occur on this platform`);
      }
      expect(seen, 'the mappings, the access and ACCESS_PAGES of the control mapping (16 MiB)').to.have.property('step', 'checked');
      const atTop = seen.step === 'checked' ? seen.top : -1;
      if (atTop === 0) {
        // 7.2.13's source still has the line (docs/findings/KF-0007.md); a kernel that maps the pages given is fixed.
        expect(probe, 'the probe (iommufdTopAreaMapsFirstRun)').to.equal(false);
        skipBecause(this, `kernel maps an area that ends at 2^64 page by page as pinned: ${f.id} does not occur on it`);
      }
      expect(atTop, `${f.id}: ACCESS_PAGES of the area that ends at 2^64 (the domain's pages against the user's): EBADE`).to.equal(EBADE);
      expect(probe, 'the probe (iommufdTopAreaMapsFirstRun)').to.equal(true);
      reportFinding(f.id, 'the 3 pages ending at IOVA 2^64 reach PFNs p, p+1, p+2 where the user gave p, p+2, p+1 (ACCESS_PAGES: EBADE; the same pages at a low IOVA: 0)');
    } finally {
      attach.release();
      iommufd.close();
      pages?.dispose();
    }
  });
});
