// tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd_dirty_tracking):
// a mock domain (with 1 MiB IOPTEs for the _huge variants) over buffers from
// 8 KiB to 128 MiB, and the dirty bitmap read back through
// IOMMU_HWPT_GET_DIRTY_BITMAP.
import { expect } from 'chai';
import * as U from '../../../../lib/uapi/index.ts';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_POPULATE, MAP_SHARED, PROT_READ, PROT_WRITE, type Mapping } from '../../../../lib/sys/index.ts';
import { MOCK_IOMMUPT_DEFAULT, MOCK_IOMMUPT_HUGE } from '../../../../lib/model/mock.ts';
import { mmapHugetlb, requireHugetlb, requireHwptAllocFlag, requireIoctl, requireMockDevFlag, requireMockDomain, requireTestOp } from '../../../support/kernel.ts';
import { lockstep } from '../../../support/lockstep.ts';
import { skipBecause } from '../../../support/skip.ts';
import {
  EINVAL, EOPNOTSUPP, HUGEPAGE_SIZE, MOCK_HUGE_PAGE_SIZE, MOCK_PAGE_SIZE, PAGE_SIZE,
  assertOk, bytesOf, destroy, errHwptAlloc, errMockDomainFlags, errPasidAttach, pasidAttach, pasidDetach, getHwCapabilities, hwptAlloc, ioasAlloc, ioasMapFixedId, mockDirtyBitmaps,
  mockDomain, mockDomainFlags, setDirtyTracking, teardownIommufd, type Iommufd,
} from '../../../support/iommufd-utils.ts';

interface Variant {
  name: string;
  bufferSize: number;
  hugepages: boolean;
}

const K = 1024;
const M = 1024 * 1024;
// FIXTURE_VARIANT_ADD(iommufd_dirty_tracking, ...)
const VARIANTS: Variant[] = [
  /* half of an u8 index bitmap */
  { name: 'domain_dirty8k', bufferSize: 8 * K, hugepages: false },
  /* one u8 index bitmap */
  { name: 'domain_dirty16k', bufferSize: 16 * K, hugepages: false },
  /* one u32 index bitmap */
  { name: 'domain_dirty64k', bufferSize: 64 * K, hugepages: false },
  /* one u64 index bitmap */
  { name: 'domain_dirty128k', bufferSize: 128 * K, hugepages: false },
  /* two u64 index and trailing end bitmap */
  { name: 'domain_dirty320k', bufferSize: 320 * K, hugepages: false },
  /* 4K bitmap (64M IOVA range) */
  { name: 'domain_dirty64M', bufferSize: 64 * M, hugepages: false },
  /* 4K bitmap (64M IOVA range) */
  { name: 'domain_dirty64M_huge', bufferSize: 64 * M, hugepages: true },
  /* 8K bitmap (128M IOVA range) */
  { name: 'domain_dirty128M', bufferSize: 128 * M, hugepages: false },
  /* 8K bitmap (128M IOVA range) */
  { name: 'domain_dirty128M_huge', bufferSize: 128 * M, hugepages: true },
];

/** struct iommu_hwpt_selftest { __u32 iotlb; __u32 pagetable_type; } (the generic page table mock's layout). */
function selftestPagetable(pagetableType: number): Uint8Array {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setUint32(4, pagetableType, true);
  return data;
}

interface DirtySelf {
  fd: Iommufd;
  ioasId: number;
  hwptId: number;
  stdevId: number;
  idevId: number;
  pageSize: number;
  bitmapSize: number;
  bitmap: Mapping;
  buffer: Mapping;
}

for (const variant of VARIANTS) {
  describe(`iommufd_dirty_tracking.${variant.name}`, () => {
    let self: DirtySelf;
    // Where the mock domain is the generic page table (probed), this fixture is 7.x's: its 1 MiB IOPTEs come
    // from a MOCK_IOMMUPT_HUGE HWPT instead of a HUGE_IOVA device (gone), and the other variants turn
    // IOMMU_OPTION_HUGE_PAGES off "for dirty testing [...] the page size fed into the iommu page tables
    // [must match] the size the dirty logic expects, or set_dirty can touch too much stuff" (7.2's
    // iommufd.c FIXTURE_SETUP(iommufd_dirty_tracking)): a dirty bit now marks a whole leaf PTE.
    let genericPt = false;

    beforeEach(function () {
      self = {} as DirtySelf;
      if (variant.bufferSize < MOCK_PAGE_SIZE) {
        skipBecause(this, `Skipping buffer_size=${variant.bufferSize}, less than MOCK_PAGE_SIZE=${MOCK_PAGE_SIZE}`);
      }
      genericPt = requireMockDomain(this).changes.mockGenericPt;
      if (variant.hugepages) {
        requireHugetlb(this);
        if (!genericPt) requireMockDevFlag(this, 'hugeIova');
      }

      self.fd = lockstep().openIommufd();

      let mmapFlags = MAP_SHARED | MAP_ANONYMOUS;
      let mmapBufferSize = variant.bufferSize;
      if (variant.hugepages) {
        /*
         * MAP_POPULATE will cause the kernel to fail mmap if THPs are
         * not available.
         */
        mmapFlags |= MAP_HUGETLB | MAP_POPULATE;

        /*
         * Allocation must be aligned to the HUGEPAGE_SIZE, because the
         * following mmap() will automatically align the length to be a
         * multiple of the underlying huge page size.
         */
        if (mmapBufferSize < HUGEPAGE_SIZE) mmapBufferSize = HUGEPAGE_SIZE;
      }
      // (the C test: assert(vrc == self->buffer))
      self.buffer = variant.hugepages
        ? mmapHugetlb(mmapBufferSize, mmapFlags, HUGEPAGE_SIZE)
        : lockstep().mmap(mmapBufferSize, PROT_READ | PROT_WRITE, mmapFlags, -1, 0, HUGEPAGE_SIZE);

      self.pageSize = MOCK_PAGE_SIZE;
      self.bitmapSize = variant.bufferSize / self.pageSize;

      /* Provision with an extra (PAGE_SIZE) for the unaligned case */
      const size = Math.ceil(self.bitmapSize / 8);
      self.bitmap = lockstep().mmap(Math.ceil((size + PAGE_SIZE) / PAGE_SIZE) * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);

      self.ioasId = ioasAlloc(self);
      // The generic page table mock's leaves follow physical contiguity, which its model does not follow
      // (it takes a leaf to be one page): over hugetlb memory its 1 MiB leaves run unchecked.
      if (variant.hugepages && genericPt) lockstep().desync(self.fd, 'hugetlb buffer under the generic page table mock (1 MiB leaves)');
      if (genericPt && !variant.hugepages) {
        assertOk(self.fd.option({ optionId: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_SET, objectId: self.ioasId, val64: 0 }), 'IOMMU_OPTION_HUGE_PAGES 0');
      }
      /* Enable 1M mock IOMMU hugepages */
      const mock = variant.hugepages && !genericPt ? mockDomainFlags(self, self.ioasId, U.MOCK_FLAGS_DEVICE_HUGE_IOVA) : mockDomain(self, self.ioasId);
      self.stdevId = mock.stdevId;
      self.hwptId = mock.hwptId;
      self.idevId = mock.idevId;
    });

    afterEach(() => {
      if (self.buffer) lockstep().munmap(self.buffer);
      if (self.bitmap) lockstep().munmap(self.bitmap);
      if (!self.fd || self.fd.closed) return;
      teardownIommufd(self.fd);
    });

    /** The bitmap from `offset` on (self->bitmap + offset), as the kernel sees it. */
    const bitmapAt = (offset: number) => bytesOf(self.bitmap, offset, Math.ceil(self.bitmapSize / 8));

    it('enforce_dirty', function () {
      requireHwptAllocFlag(this, 'dirtyTracking');
      requireMockDevFlag(this, 'noDirty');

      /* Regular case */
      const devFlags = U.MOCK_FLAGS_DEVICE_NO_DIRTY;
      const hwptId = hwptAlloc(self, self.idevId, self.ioasId, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      let stddevId = mockDomain(self, hwptId).stdevId;
      errMockDomainFlags(EINVAL, self, hwptId, devFlags);
      destroy(self, stddevId);
      destroy(self, hwptId);

      /* IOMMU device does not support dirty tracking */
      const ioasId = ioasAlloc(self);
      const mock = mockDomainFlags(self, ioasId, devFlags);
      stddevId = mock.stdevId;
      errHwptAlloc(EOPNOTSUPP, self, mock.idevId, ioasId, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      destroy(self, stddevId);
    });

    it('set_dirty_tracking', function () {
      requireHwptAllocFlag(this, 'dirtyTracking');
      requireIoctl(this, 'IOMMU_HWPT_SET_DIRTY_TRACKING');

      const hwptId = hwptAlloc(self, self.idevId, self.ioasId, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      const stddevId = mockDomain(self, hwptId).stdevId;
      setDirtyTracking(self, hwptId, true);
      setDirtyTracking(self, hwptId, false);

      destroy(self, stddevId);
      destroy(self, hwptId);
    });

    it('pasid_set_dirty_tracking', function () {
      requireHwptAllocFlag(this, 'dirtyTracking');
      requireHwptAllocFlag(this, 'pasid');
      requireMockDevFlag(this, 'pasid');
      requireMockDevFlag(this, 'noDirty');
      requireTestOp(this, 'PASID_ATTACH');
      requireTestOp(this, 'PASID_DETACH');
      requireIoctl(this, 'IOMMU_HWPT_SET_DIRTY_TRACKING');
      const pasid = 100;
      let devFlags = U.MOCK_FLAGS_DEVICE_PASID;

      /* Regular case */
      const hwptId = hwptAlloc(self, self.idevId, self.ioasId, U.IOMMU_HWPT_ALLOC_PASID | U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      let stddevId = mockDomainFlags(self, hwptId, devFlags).stdevId;
      pasidAttach(self, stddevId, pasid, hwptId);
      setDirtyTracking(self, hwptId, true);
      setDirtyTracking(self, hwptId, false);
      pasidDetach(self, stddevId, pasid);

      destroy(self, stddevId);

      /* IOMMU device does not support dirty tracking */
      devFlags |= U.MOCK_FLAGS_DEVICE_NO_DIRTY;
      const ioasId = ioasAlloc(self);
      stddevId = mockDomainFlags(self, ioasId, devFlags).stdevId;
      errPasidAttach(EINVAL, self, stddevId, pasid, hwptId);

      destroy(self, stddevId);
      destroy(self, hwptId);
    });

    it('device_dirty_capability', function () {
      requireIoctl(this, 'IOMMU_GET_HW_INFO');

      const hwptId = hwptAlloc(self, self.idevId, self.ioasId, 0);
      const stddevId = mockDomain(self, hwptId).stdevId;
      const caps = getHwCapabilities(self, self.idevId);
      expect(caps & BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING)).to.equal(BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING));

      destroy(self, stddevId);
      destroy(self, hwptId);
    });

    for (const [test, flags] of [
      ['get_dirty_bitmap', 0],
      ['get_dirty_bitmap_no_clear', U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR],
    ] as const) {
      it(test, function () {
        requireHwptAllocFlag(this, 'dirtyTracking');
        requireIoctl(this, 'IOMMU_HWPT_GET_DIRTY_BITMAP');
        requireTestOp(this, 'DIRTY');
        const pageSize = variant.hugepages ? MOCK_HUGE_PAGE_SIZE : MOCK_PAGE_SIZE;

        const ioasId = genericPt ? self.ioasId : ioasAlloc(self);
        ioasMapFixedId(self, ioasId, self.buffer.address, variant.bufferSize, U.MOCK_APERTURE_START);

        // test_cmd_hwpt_alloc_iommupt(): struct iommu_hwpt_selftest { .pagetable_type } on the generic page table mock.
        const hwptId = genericPt
          ? assertOk(
              self.fd.hwptAlloc({ devId: self.idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data: selftestPagetable(variant.hugepages ? MOCK_IOMMUPT_HUGE : MOCK_IOMMUPT_DEFAULT) }),
              'IOMMU_HWPT_ALLOC(DIRTY_TRACKING, MOCK_IOMMUPT)',
            ).hwptId
          : hwptAlloc(self, self.idevId, ioasId, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);

        setDirtyTracking(self, hwptId, true);

        mockDirtyBitmaps(self, hwptId, variant.bufferSize, U.MOCK_APERTURE_START, self.pageSize, pageSize, bitmapAt(0), self.bitmapSize, flags);

        /* PAGE_SIZE unaligned bitmap */
        mockDirtyBitmaps(self, hwptId, variant.bufferSize, U.MOCK_APERTURE_START, self.pageSize, pageSize, bitmapAt(MOCK_PAGE_SIZE), self.bitmapSize, flags);

        /* u64 unaligned bitmap */
        mockDirtyBitmaps(self, hwptId, variant.bufferSize, U.MOCK_APERTURE_START, self.pageSize, pageSize, bitmapAt(0xff1), self.bitmapSize, flags);

        destroy(self, hwptId);
      });
    }
  });
}
