// tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd_mock_domain): an
// IOAS with one or two mock domains, mapping ordinary or hugetlb memory.
import { closeSync, openSync } from 'node:fs';
import { expect } from 'chai';
import * as U from '../../../../lib/uapi/index.ts';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, O_RDONLY, PROT_READ, PROT_WRITE, type Mapping } from '../../../../lib/sys/index.ts';
import { mmapHugetlb, requireHugetlb, requireHwptAllocFlag, requireMockDomain } from '../../../support/kernel.ts';
import { lockstep } from '../../../support/lockstep.ts';
import {
  BUFFER_SIZE, EBUSY, EFAULT, ENOENT, EOPNOTSUPP, HUGEPAGE_SIZE, MOCK_PAGE_SIZE, PAGE_SIZE,
  accessPages, accessReplaceIoas, assertOk, bytesOf, checkMockIova, checkRefs, createAccess, destroy, destroyAccess,
  destroyAccessPages, errHwptAlloc, errIoasMap, errMockDomainReplace, expectErrno, hwptAlloc, ioasAlloc, ioasMap, ioasMapCall,
  ioasMapId, ioasUnmap, mockDomain, mockDomainReplace, selftestBuffer, teardownIommufd, type Iommufd,
} from '../../../support/iommufd-utils.ts';

interface Variant {
  name: string;
  mockDomains: number;
  hugepages: boolean;
}

// FIXTURE_VARIANT_ADD(iommufd_mock_domain, ...)
const VARIANTS: Variant[] = [
  { name: 'one_domain', mockDomains: 1, hugepages: false },
  { name: 'two_domains', mockDomains: 2, hugepages: false },
  { name: 'one_domain_hugepage', mockDomains: 1, hugepages: true },
  { name: 'two_domains_hugepage', mockDomains: 2, hugepages: true },
];

interface MockDomainSelf {
  fd: Iommufd;
  ioasId: number;
  hwptId: number;
  hwptIds: [number, number];
  stdevIds: [number, number];
  idevIds: [number, number];
  mmapFlags: number;
  mmapBufSize: number;
}

for (const variant of VARIANTS) {
  describe(`iommufd_mock_domain.${variant.name}`, () => {
    let self: MockDomainSelf;
    let buffer: Mapping;

    beforeEach(function () {
      self = {} as MockDomainSelf;
      requireMockDomain(this);
      if (variant.hugepages) requireHugetlb(this);
      buffer = selftestBuffer();

      self = { fd: lockstep().openIommufd(), ioasId: 0, hwptId: 0, hwptIds: [0, 0], stdevIds: [0, 0], idevIds: [0, 0], mmapFlags: 0, mmapBufSize: 0 };
      self.ioasId = ioasAlloc(self);

      expect(self.hwptIds.length).to.be.at.least(variant.mockDomains);

      for (let i = 0; i !== variant.mockDomains; i++) {
        const mock = mockDomain(self, self.ioasId);
        self.stdevIds[i] = mock.stdevId;
        self.hwptIds[i] = mock.hwptId;
        self.idevIds[i] = mock.idevId;
      }
      self.hwptId = self.hwptIds[0];

      self.mmapFlags = MAP_SHARED | MAP_ANONYMOUS;
      self.mmapBufSize = PAGE_SIZE * 8;
      if (variant.hugepages) {
        /*
         * MAP_POPULATE will cause the kernel to fail mmap if THPs are
         * not available.
         */
        self.mmapFlags |= MAP_HUGETLB | MAP_POPULATE;
        self.mmapBufSize = HUGEPAGE_SIZE * 2;
      }
    });

    afterEach(() => {
      if (!self.fd || self.fd.closed) return;
      teardownIommufd(self.fd);
    });

    /* Have the kernel check that the user pages made it to the iommu_domain */
    const checkMockIovaOf = (uptr: bigint, iova: number | bigint, length: number | bigint) => checkMockIova(self, [self.hwptId, self.hwptIds[1]], uptr, iova, length);

    /** mmap(0, buf_size, PROT_READ | PROT_WRITE, self->mmap_flags, -1, 0); ASSERT_NE(MAP_FAILED, buf) */
    const mmapBuf = (): Mapping => (self.mmapFlags & MAP_HUGETLB ? mmapHugetlb(self.mmapBufSize, self.mmapFlags) : lockstep().mmap(self.mmapBufSize, PROT_READ | PROT_WRITE, self.mmapFlags));

    it('basic', function () {
      const bufSize = self.mmapBufSize;

      /* Simple one page map */
      const iova = ioasMap(self, buffer.address, PAGE_SIZE);
      checkMockIovaOf(buffer.address, iova, PAGE_SIZE);

      const buf = mmapBuf();

      /* EFAULT half way through mapping */
      expect(lockstep().munmap(buf, bufSize / 2, bufSize / 2)).to.equal(0);
      errIoasMap(EFAULT, self, buf.address, bufSize);

      /* EFAULT on first page */
      expect(lockstep().munmap(buf, 0, bufSize / 2)).to.equal(0);
      errIoasMap(EFAULT, self, buf.address, bufSize);
    });

    it('ro_unshare', () => {
      const fd = openSync('/proc/self/exe', O_RDONLY);
      const buf = lockstep().mmap(PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      closeSync(fd);

      /*
       * There have been lots of changes to the "unshare" mechanism in
       * get_user_pages(), make sure it works right. The write to the page
       * after we map it for reading should not change the assigned PFN.
       */
      const iova = assertOk(ioasMapCall(self.fd, self.ioasId, buf.address, PAGE_SIZE, 0, U.IOMMU_IOAS_MAP_READABLE)).iova;
      checkMockIovaOf(buf.address, iova, PAGE_SIZE);
      bytesOf(buf).fill(1);
      checkMockIovaOf(buf.address, iova, PAGE_SIZE);
      expect(lockstep().munmap(buf)).to.equal(0);
    });

    it('all_aligns', function () {
      const testStep = variant.hugepages ? self.mmapBufSize / 16 : MOCK_PAGE_SIZE;
      const bufSize = self.mmapBufSize;
      const buf = mmapBuf();
      checkRefs(self, buf.address, bufSize, 0);

      /*
       * Map every combination of page size and alignment within a big region,
       * less for hugepage case as it takes so long to finish.
       */
      for (let start = 0; start < bufSize; start += testStep) {
        let end = variant.hugepages ? bufSize : start + MOCK_PAGE_SIZE;
        for (; end < bufSize; end += MOCK_PAGE_SIZE) {
          const length = end - start;
          const iova = ioasMap(self, buf.address + BigInt(start), length);
          checkMockIovaOf(buf.address + BigInt(start), iova, length);
          const first = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
          checkRefs(self, buf.address + BigInt(first), Math.floor(end / PAGE_SIZE) * PAGE_SIZE - first, 1);
          ioasUnmap(self, iova, length);
        }
      }
      checkRefs(self, buf.address, bufSize, 0);
      expect(lockstep().munmap(buf)).to.equal(0);
    });

    it('all_aligns_copy', function () {
      const testStep = variant.hugepages ? self.mmapBufSize / 16 : MOCK_PAGE_SIZE;
      const bufSize = self.mmapBufSize;
      const buf = mmapBuf();
      checkRefs(self, buf.address, bufSize, 0);

      /*
       * Map every combination of page size and alignment within a big region,
       * less for hugepage case as it takes so long to finish.
       */
      for (let start = 0; start < bufSize; start += testStep) {
        let end = variant.hugepages ? bufSize : start + MOCK_PAGE_SIZE;
        for (; end < bufSize; end += MOCK_PAGE_SIZE) {
          const length = end - start;
          const iova = ioasMap(self, buf.address + BigInt(start), length);

          /* Add and destroy a domain while the area exists */
          const oldId = self.hwptIds[1];
          const mock = mockDomain(self, self.ioasId);
          self.hwptIds[1] = mock.hwptId;

          checkMockIovaOf(buf.address + BigInt(start), iova, length);
          const first = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
          checkRefs(self, buf.address + BigInt(first), Math.floor(end / PAGE_SIZE) * PAGE_SIZE - first, 1);

          destroy(self, mock.stdevId);
          self.hwptIds[1] = oldId;

          ioasUnmap(self, iova, length);
        }
      }
      checkRefs(self, buf.address, bufSize, 0);
      expect(lockstep().munmap(buf)).to.equal(0);
    });

    it('user_copy', () => {
      const copyFlags = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_WRITEABLE;
      const copy = (srcIoasId: number, srcIova: bigint) =>
        self.fd.ioasCopy({ flags: copyFlags, dstIoasId: self.ioasId, srcIoasId, dstIova: U.MOCK_APERTURE_START, srcIova, length: BUFFER_SIZE });

      /* Pin the pages in an IOAS with no domains then copy to an IOAS with domains */
      const ioasId = ioasAlloc(self);
      let srcIova = ioasMapId(self, ioasId, buffer.address, BUFFER_SIZE);

      const accessId = createAccess(self, ioasId, U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);

      accessPages(self, accessId, srcIova, BUFFER_SIZE, buffer.address);
      assertOk(copy(ioasId, srcIova), 'IOMMU_IOAS_COPY');
      checkMockIovaOf(buffer.address, U.MOCK_APERTURE_START, BUFFER_SIZE);

      /* Now replace the ioas with a new one */
      const newIoasId = ioasAlloc(self);
      srcIova = ioasMapId(self, newIoasId, buffer.address, BUFFER_SIZE);
      accessReplaceIoas(self, accessId, newIoasId);

      /* Destroy the old ioas and cleanup copied mapping */
      ioasUnmap(self, U.MOCK_APERTURE_START, BUFFER_SIZE);
      destroy(self, ioasId);

      /* Then run the same test again with the new ioas */
      const accessPagesId = accessPages(self, accessId, srcIova, BUFFER_SIZE, buffer.address);
      assertOk(copy(newIoasId, srcIova), 'IOMMU_IOAS_COPY');
      checkMockIovaOf(buffer.address, U.MOCK_APERTURE_START, BUFFER_SIZE);

      destroyAccessPages(self, accessId, accessPagesId);
      destroyAccess(self, accessId);

      destroy(self, newIoasId);
    });

    it('replace', () => {
      const ioasId = ioasAlloc(self);

      mockDomainReplace(self, self.stdevIds[0], ioasId);

      /*
       * Replacing the IOAS causes the prior HWPT to be deallocated, thus we
       * should get enoent when we try to use it.
       */
      if (variant.mockDomains === 1) errMockDomainReplace(ENOENT, self, self.stdevIds[0], self.hwptIds[0]);

      mockDomainReplace(self, self.stdevIds[0], ioasId);
      if (variant.mockDomains >= 2) {
        mockDomainReplace(self, self.stdevIds[0], self.hwptIds[1]);
        mockDomainReplace(self, self.stdevIds[0], self.hwptIds[1]);
        mockDomainReplace(self, self.stdevIds[0], self.hwptIds[0]);
      }

      mockDomainReplace(self, self.stdevIds[0], self.ioasId);
      destroy(self, ioasId);
    });

    it('alloc_hwpt', function () {
      requireHwptAllocFlag(this, 'nestParent');
      for (let i = 0; i !== variant.mockDomains; i++) {
        errHwptAlloc(EOPNOTSUPP, self, self.idevIds[i]!, self.ioasId, ~U.IOMMU_HWPT_ALLOC_NEST_PARENT);
        const hwptId0 = hwptAlloc(self, self.idevIds[i]!, self.ioasId, 0);
        const hwptId1 = hwptAlloc(self, self.idevIds[i]!, self.ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT);

        /* Do a hw_pagetable rotation test */
        mockDomainReplace(self, self.stdevIds[i]!, hwptId0);
        expectErrno(EBUSY, self.fd.destroy(hwptId0));
        mockDomainReplace(self, self.stdevIds[i]!, hwptId1);
        expectErrno(EBUSY, self.fd.destroy(hwptId1));
        mockDomainReplace(self, self.stdevIds[i]!, self.ioasId);
        destroy(self, hwptId1);

        const stddevId = mockDomain(self, hwptId0).stdevId;
        destroy(self, stddevId);
        destroy(self, hwptId0);
      }
    });
  });
}
