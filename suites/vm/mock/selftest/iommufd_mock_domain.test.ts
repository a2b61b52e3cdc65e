// tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd_mock_domain): an
// IOAS with one or two mock domains, mapping ordinary or hugetlb memory, or
// (the `file` variants, 7.x) a memfd with IOMMU_IOAS_MAP_FILE. The file
// variants' cases that map a file skip where the kernel lacks
// IOMMU_IOAS_MAP_FILE (probed); the others (ro_unshare, replace, alloc_hwpt)
// map no file and run as in the other variants. Their memfds are plain
// shmem, also in one_domain_file_hugepage: the C passes MAP_SHARED alone to
// memfd_mmap(), so only buf_size and test_step follow `hugepages` there.
import { closeSync, openSync } from 'node:fs';
import { expect } from 'chai';
import * as U from '../../../../lib/uapi/index.ts';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, O_RDONLY, PROT_READ, PROT_WRITE, type Mapping } from '../../../../lib/sys/index.ts';
import type { Context } from 'mocha';
import { mmapHugetlb, requireHugetlb, requireHwptAllocFlag, requireIoctl, requireMockDomain } from '../../../support/kernel.ts';
import { lockstep } from '../../../support/lockstep.ts';
import {
  BUFFER_SIZE, EBUSY, EFAULT, EINVAL, ENOENT, EOPNOTSUPP, HUGEPAGE_SIZE, MOCK_PAGE_SIZE, PAGE_SIZE,
  accessPages, accessReplaceIoas, assertOk, bytesOf, checkMockIova, checkRefs, closeFile, createAccess, destroy, destroyAccess,
  destroyAccessPages, errHwptAlloc, errIoasMap, errIoasMapFile, errMockDomainReplace, expectErrno, hwptAlloc, ioasAlloc, ioasMap, ioasMapCall,
  ioasMapFile, ioasMapId, ioasMapIdFile, ioasUnmap, memfdMmap, mockDomain, mockDomainReplace, selftestBuffer, selftestMfdBuffer, teardownIommufd, type Iommufd,
} from '../../../support/iommufd-utils.ts';

interface Variant {
  name: string;
  mockDomains: number;
  hugepages: boolean;
  file: boolean;
}

// FIXTURE_VARIANT_ADD(iommufd_mock_domain, ...)
const VARIANTS: Variant[] = [
  { name: 'one_domain', mockDomains: 1, hugepages: false, file: false },
  { name: 'two_domains', mockDomains: 2, hugepages: false, file: false },
  { name: 'one_domain_hugepage', mockDomains: 1, hugepages: true, file: false },
  { name: 'two_domains_hugepage', mockDomains: 2, hugepages: true, file: false },
  { name: 'one_domain_file', mockDomains: 1, hugepages: false, file: true },
  { name: 'one_domain_file_hugepage', mockDomains: 1, hugepages: true, file: true },
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
    let mfdBuffer: { buf: Mapping; mfd: number };

    /** The cases of the file variants that map a file need IOMMU_IOAS_MAP_FILE. */
    const requireMapFile = (ctx: Context) => {
      if (variant.file) requireIoctl(ctx, 'IOMMU_IOAS_MAP_FILE');
    };

    /** buf = memfd_mmap(buf_size, prot, MAP_SHARED, &mfd); ASSERT_NE(MAP_FAILED, buf) */
    const memfdBuf = (bufSize: number) => {
      const m = memfdMmap(bufSize, PROT_READ | PROT_WRITE, MAP_SHARED);
      expect(m, `memfd_mmap(${bufSize})`).to.not.equal(null);
      return m!;
    };

    beforeEach(function () {
      self = {} as MockDomainSelf;
      requireMockDomain(this);
      // The file variants map no MAP_HUGETLB memory (memfd_mmap gets MAP_SHARED alone).
      if (variant.hugepages && !variant.file) requireHugetlb(this);
      buffer = selftestBuffer();
      // setup_sizes() makes mfd_buffer for every test of the binary.
      mfdBuffer = selftestMfdBuffer();

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

    /* test_basic_file() */
    const basicFile = () => {
      const bufSize = self.mmapBufSize;

      /* Simple one page map */
      const iova = ioasMapFile(self, mfdBuffer.mfd, 0, PAGE_SIZE);
      checkMockIovaOf(mfdBuffer.buf.address, iova, PAGE_SIZE);

      const { mfd: mfdTmp } = memfdBuf(bufSize);

      errIoasMapFile(EINVAL, self, mfdTmp, 0, bufSize + 1);

      expect(lockstep().ftruncate(mfdTmp, 0), 'ftruncate(mfd_tmp, 0)').to.equal(0);
      errIoasMapFile(EINVAL, self, mfdTmp, 0, bufSize);

      closeFile(mfdTmp);
    };

    it('basic', function () {
      requireMapFile(this);
      if (variant.file) return basicFile();
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
      requireMapFile(this);
      const testStep = variant.hugepages ? self.mmapBufSize / 16 : MOCK_PAGE_SIZE;
      const bufSize = self.mmapBufSize;
      const { buf, mfd } = variant.file ? memfdBuf(bufSize) : { buf: mmapBuf(), mfd: -1 };
      if (variant.file) expect(mfd, 'mfd').to.be.greaterThan(0);
      checkRefs(self, buf.address, bufSize, 0);

      /*
       * Map every combination of page size and alignment within a big region,
       * less for hugepage case as it takes so long to finish.
       */
      for (let start = 0; start < bufSize; start += testStep) {
        let end = variant.hugepages ? bufSize : start + MOCK_PAGE_SIZE;
        for (; end < bufSize; end += MOCK_PAGE_SIZE) {
          const length = end - start;
          const iova = variant.file ? ioasMapFile(self, mfd, start, length) : ioasMap(self, buf.address + BigInt(start), length);
          checkMockIovaOf(buf.address + BigInt(start), iova, length);
          const first = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
          checkRefs(self, buf.address + BigInt(first), Math.floor(end / PAGE_SIZE) * PAGE_SIZE - first, 1);
          ioasUnmap(self, iova, length);
        }
      }
      checkRefs(self, buf.address, bufSize, 0);
      expect(lockstep().munmap(buf)).to.equal(0);
      if (variant.file) closeFile(mfd);
    });

    it('all_aligns_copy', function () {
      requireMapFile(this);
      const testStep = variant.hugepages ? self.mmapBufSize / 16 : MOCK_PAGE_SIZE;
      const bufSize = self.mmapBufSize;
      const { buf, mfd } = variant.file ? memfdBuf(bufSize) : { buf: mmapBuf(), mfd: -1 };
      if (variant.file) expect(mfd, 'mfd').to.be.greaterThan(0);
      checkRefs(self, buf.address, bufSize, 0);

      /*
       * Map every combination of page size and alignment within a big region,
       * less for hugepage case as it takes so long to finish.
       */
      for (let start = 0; start < bufSize; start += testStep) {
        let end = variant.hugepages ? bufSize : start + MOCK_PAGE_SIZE;
        for (; end < bufSize; end += MOCK_PAGE_SIZE) {
          const length = end - start;
          const iova = variant.file ? ioasMapFile(self, mfd, start, length) : ioasMap(self, buf.address + BigInt(start), length);

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
      if (variant.file) closeFile(mfd);
    });

    it('user_copy', function () {
      requireMapFile(this);
      const buf = variant.file ? mfdBuffer.buf : buffer;
      /* test_ioctl_ioas_map_id_file(ioas_id, mfd, 0, BUFFER_SIZE, ...) or test_ioctl_ioas_map_id(ioas_id, buf, BUFFER_SIZE, ...) */
      const mapId = (ioasId: number) => (variant.file ? ioasMapIdFile(self, ioasId, mfdBuffer.mfd, 0, BUFFER_SIZE) : ioasMapId(self, ioasId, buf.address, BUFFER_SIZE));
      const copyFlags = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_WRITEABLE;
      const copy = (srcIoasId: number, srcIova: bigint) =>
        self.fd.ioasCopy({ flags: copyFlags, dstIoasId: self.ioasId, srcIoasId, dstIova: U.MOCK_APERTURE_START, srcIova, length: BUFFER_SIZE });

      /* Pin the pages in an IOAS with no domains then copy to an IOAS with domains */
      const ioasId = ioasAlloc(self);
      let srcIova = mapId(ioasId);

      const accessId = createAccess(self, ioasId, U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);

      accessPages(self, accessId, srcIova, BUFFER_SIZE, buf.address);
      assertOk(copy(ioasId, srcIova), 'IOMMU_IOAS_COPY');
      checkMockIovaOf(buf.address, U.MOCK_APERTURE_START, BUFFER_SIZE);

      /* Now replace the ioas with a new one */
      const newIoasId = ioasAlloc(self);
      srcIova = mapId(newIoasId);
      accessReplaceIoas(self, accessId, newIoasId);

      /* Destroy the old ioas and cleanup copied mapping */
      ioasUnmap(self, U.MOCK_APERTURE_START, BUFFER_SIZE);
      destroy(self, ioasId);

      /* Then run the same test again with the new ioas */
      const accessPagesId = accessPages(self, accessId, srcIova, BUFFER_SIZE, buf.address);
      assertOk(copy(newIoasId, srcIova), 'IOMMU_IOAS_COPY');
      checkMockIovaOf(buf.address, U.MOCK_APERTURE_START, BUFFER_SIZE);

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
