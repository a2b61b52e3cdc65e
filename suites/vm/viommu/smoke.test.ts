// Smoke test of the viommu profile: QEMU's edu device bound to vfio-pci, its
// group driven through a real type1 container and through iommufd's compat.
import { expect } from 'chai';
import type { VfioContainer } from '../../../lib/kernel/index.ts';
import { MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE, type Mapping } from '../../../lib/sys/index.ts';
import * as U from '../../../lib/uapi/index.ts';
import { requireDeviceUnderTest, requireVfioCompat, requireVfioContainer } from '../../support/kernel.ts';
import { lockstep } from '../../support/lockstep.ts';
import { deviceRefusal } from '../../support/platform.ts';
import { skipBecause } from '../../support/skip.ts';

const SIZE = 1024 * 1024;
const IOVA = 0x100000;
const RW = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;

describe('smoke.viommu', () => {
  let groupId: number;
  let buffer: Mapping;
  /** Why type1 refuses the device on this platform (no isolated MSI, allow_unsafe_interrupts off), or null. */
  let type1Refusal: string | null;

  before(function () {
    requireVfioContainer(this);
    groupId = requireDeviceUnderTest(this).groupId;
    type1Refusal = deviceRefusal(groupId, 'type1');
    buffer = lockstep().mmap(SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  });
  after(() => {
    if (buffer) lockstep().munmap(buffer);
  });

  function mapUnmapThrough(container: VfioContainer) {
    const group = lockstep().openGroup(groupId);
    try {
      expect(group.getStatus().viable).to.equal(true);
      expect(group.setContainer(container).errno).to.equal(0);
      expect(group.getStatus().containerSet).to.equal(true);
      expect(container.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
      expect(container.mapDma({ flags: RW, vaddr: buffer.address, iova: IOVA, size: SIZE }).errno).to.equal(0);
      // A second map of the same IOVA overlaps: EEXIST on both implementations.
      expect(container.mapDma({ flags: RW, vaddr: buffer.address, iova: IOVA, size: SIZE }).errno).to.equal(17);
      const unmap = container.unmapDma({ iova: IOVA, size: SIZE });
      expect(unmap.errno).to.equal(0);
      expect(unmap.size).to.equal(BigInt(SIZE));
      expect(group.unsetContainer().errno).to.equal(0);
    } finally {
      group.close();
    }
  }

  // vfio_iommu_type1_attach_group: without isolated MSI the group's attach at SET_IOMMU is EPERM unless
  // allow_unsafe_interrupts (the platform's contract, from /proc/interrupts and the module parameter).
  it('type1 SET_IOMMU follows MSI isolation: EPERM without interrupt remapping unless allow_unsafe_interrupts', () => {
    const container = lockstep().openContainer();
    const group = lockstep().openGroup(groupId);
    try {
      expect(group.setContainer(container).errno).to.equal(0);
      expect(container.setIommu(U.VFIO_TYPE1v2_IOMMU).errno, type1Refusal ?? 'MSI isolated or allowed').to.equal(type1Refusal ? 1 : 0);
      expect(group.unsetContainer().errno).to.equal(0);
    } finally {
      group.close();
      container.close();
    }
  });

  it('maps and unmaps through a real type1 container', function () {
    if (type1Refusal) skipBecause(this, type1Refusal);
    const container = lockstep().openContainer();
    try {
      expect(container.kind).to.equal('type1');
      mapUnmapThrough(container);
    } finally {
      container.close();
    }
  });

  it("maps and unmaps through iommufd's vfio compat on /dev/iommu, with the same group", function () {
    requireVfioCompat(this);
    const iommufd = lockstep().openIommufd();
    try {
      mapUnmapThrough(lockstep().compatOn(iommufd));
    } finally {
      iommufd.close();
    }
  });
});
