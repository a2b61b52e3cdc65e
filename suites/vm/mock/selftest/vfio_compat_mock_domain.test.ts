// tools/testing/selftests/iommu/iommufd.c, FIXTURE(vfio_compat_mock_domain):
// an IOAS with a mock domain (what VFIO would consider a group) made the
// compat IOAS, then VFIO_SET_IOMMU type1 (Ver1v0) or type1v2 (Ver1v2), and
// the VFIO container ioctls on /dev/iommu.
import { expect } from 'chai';
import * as U from '../../../../lib/uapi/index.ts';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_POPULATE, MAP_SHARED, type Mapping } from '../../../../lib/sys/index.ts';
import type { VfioContainer } from '../../../../lib/kernel/index.ts';
import { mmapHugetlb, requireHugetlb, requireMockDomain, requireVfioCompat } from '../../../support/kernel.ts';
import { lockstep } from '../../../support/lockstep.ts';
import {
  BUFFER_SIZE, EINVAL, ENOENT, HUGEPAGE_SIZE, PAGE_SIZE,
  assertOk, bytesOf, expectErrno, ioasAlloc, mockDomain, rand, selftestBuffer, teardownIommufd, type Iommufd,
} from '../../../support/iommufd-utils.ts';

interface Variant {
  name: string;
  version: number;
}

// FIXTURE_VARIANT_ADD(vfio_compat_mock_domain, ...)
const VARIANTS: Variant[] = [
  { name: 'Ver1v2', version: U.VFIO_TYPE1v2_IOMMU },
  { name: 'Ver1v0', version: U.VFIO_TYPE1_IOMMU },
];

interface CompatSelf {
  fd: Iommufd;
  ioasId: number;
  compat: VfioContainer;
}

/** shuffle_array() */
function shuffleArray(array: number[]): void {
  for (let i = 0; i !== array.length; i++) {
    const tmp = array[i]!;
    const other = rand() % (array.length - i);
    array[i] = array[other]!;
    array[other] = tmp;
  }
}

for (const variant of VARIANTS) {
  describe(`vfio_compat_mock_domain.${variant.name}`, () => {
    let self: CompatSelf;
    let buffer: Mapping;

    beforeEach(function () {
      self = {} as CompatSelf;
      requireMockDomain(this);
      requireVfioCompat(this);
      buffer = selftestBuffer();

      self.fd = lockstep().openIommufd();
      self.compat = lockstep().compatOn(self.fd);

      /* Create what VFIO would consider a group */
      self.ioasId = ioasAlloc(self);
      mockDomain(self, self.ioasId);

      /* Attach it to the vfio compat */
      assertOk(self.fd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_SET, ioasId: self.ioasId }), 'IOMMU_VFIO_IOAS_SET');
      assertOk(self.compat.setIommu(variant.version), 'VFIO_SET_IOMMU');
    });

    afterEach(() => {
      if (!self.fd || self.fd.closed) return;
      teardownIommufd(self.fd);
    });

    it('simple_close', () => {});

    it('option_huge_pages', () => {
      const r = assertOk(self.fd.option({ optionId: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_GET, val64: 3, objectId: self.ioasId }));
      if (variant.version === U.VFIO_TYPE1_IOMMU) expect(r.val64).to.equal(0n);
      else expect(r.val64).to.equal(1n);
    });

    it('get_info', () => {
      // VFIO_IOMMU_GET_INFO into the global buffer, raw, as the C test does:
      // the check is that the kernel writes nothing past argsz.
      const bytes = bytesOf(buffer);
      const view = new DataView(buffer.buffer);
      const info = () => U.vfio_iommu_type1_info.decode(bytes);
      const infoSize = U.vfio_iommu_type1_info.sizeof;
      const flagsWanted = U.VFIO_IOMMU_INFO_PGSIZES | U.VFIO_IOMMU_INFO_CAPS;
      /** *info_cmd = (struct vfio_iommu_type1_info){ .argsz = argsz } */
      const setInfo = (argsz: number) => {
        bytes.fill(0, 0, infoSize);
        view.setUint32(0, argsz, true);
      };
      /*
       * Execute an ioctl command stored in buffer and check that the result does not
       * overflow memory.
       */
      const ioctlCheckBuf = () => {
        const cmdLen = view.getUint32(0, true);
        bytes.fill(0xaa, cmdLen);
        assertOk(self.compat.ioctl(U.VFIO_IOMMU_GET_INFO, bytes), () => `VFIO_IOMMU_GET_INFO(argsz ${cmdLen})`);
        const firstChanged = bytes.subarray(cmdLen).findIndex((b) => b !== 0xaa);
        expect(firstChanged, `byte written past argsz ${cmdLen}`).to.equal(-1);
      };

      /* Pre-cap ABI */
      setInfo(U.vfio_iommu_type1_info.offsetOf('cap_offset'));
      ioctlCheckBuf();
      expect(info().iova_pgsizes).to.not.equal(0n);
      expect(info().flags).to.equal(flagsWanted);

      /* Read the cap chain size */
      setInfo(infoSize);
      ioctlCheckBuf();
      expect(info().iova_pgsizes).to.not.equal(0n);
      expect(info().flags).to.equal(flagsWanted);
      expect(info().cap_offset).to.equal(0);
      expect(info().argsz).to.be.greaterThan(infoSize);

      /* Read the caps, kernel should never create a corrupted caps */
      const caplen = info().argsz;
      for (let i = infoSize; i < caplen; i++) {
        setInfo(i);
        ioctlCheckBuf();
        expect(info().flags).to.equal(flagsWanted);
        if (!info().cap_offset) continue;
        checkVfioInfoCapChain(view, info().argsz, info().cap_offset);
      }
    });

    it('map', () => {
      const rw = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
      const map = { flags: rw, vaddr: buffer.address, size: BUFFER_SIZE, iova: U.MOCK_APERTURE_START };
      const pagesIova: number[] = [];

      /* Simple map/unmap */
      assertOk(self.compat.mapDma(map));
      let r = assertOk(self.compat.unmapDma({ size: BUFFER_SIZE, iova: U.MOCK_APERTURE_START }));
      expect(r.size).to.equal(BigInt(BUFFER_SIZE));
      /* Unmap of empty is success */
      assertOk(self.compat.unmapDma({ size: BUFFER_SIZE, iova: U.MOCK_APERTURE_START }));

      /* UNMAP_FLAG_ALL requires 0 iova/size */
      assertOk(self.compat.mapDma(map));
      expectErrno(EINVAL, self.compat.unmapDma({ flags: U.VFIO_DMA_UNMAP_FLAG_ALL, size: BUFFER_SIZE, iova: U.MOCK_APERTURE_START }));

      r = assertOk(self.compat.unmapDma({ flags: U.VFIO_DMA_UNMAP_FLAG_ALL, size: 0, iova: 0 }));
      expect(r.size).to.equal(BigInt(BUFFER_SIZE));

      /* Small pages */
      for (let i = 0; i !== BUFFER_SIZE / PAGE_SIZE; i++) {
        pagesIova[i] = U.MOCK_APERTURE_START + i * PAGE_SIZE;
        assertOk(self.compat.mapDma({ flags: rw, iova: pagesIova[i]!, vaddr: buffer.address + BigInt(i * PAGE_SIZE), size: PAGE_SIZE }));
      }
      shuffleArray(pagesIova);

      for (const iova of pagesIova) assertOk(self.compat.unmapDma({ flags: 0, size: PAGE_SIZE, iova }), () => `VFIO_IOMMU_UNMAP_DMA(${iova})`);
    });

    it('huge_map', function () {
      requireHugetlb(this);
      const bufSize = HUGEPAGE_SIZE * 2;
      const pagesIova: number[] = [];

      /* Test huge pages and splitting */
      const buf = mmapHugetlb(bufSize, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE);
      assertOk(self.compat.mapDma({ flags: U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE, size: bufSize, iova: U.MOCK_APERTURE_START, vaddr: buf.address }));

      const size = bufSize / 16;
      for (let i = 0; i !== 16; i++) pagesIova[i] = U.MOCK_APERTURE_START + i * size;
      shuffleArray(pagesIova);

      /* type1 mode can cut up larger mappings, type1v2 always fails */
      for (const iova of pagesIova) {
        if (variant.version === U.VFIO_TYPE1_IOMMU) assertOk(self.compat.unmapDma({ iova, size }), () => `VFIO_IOMMU_UNMAP_DMA(${iova})`);
        else expectErrno(ENOENT, self.compat.unmapDma({ iova, size }), () => `VFIO_IOMMU_UNMAP_DMA(${iova})`);
      }
      // (The C test leaves its mapping to process exit; here the process
      // lives on, so the hugetlb pages are given back.)
      lockstep().munmap(buf);
    });
  });
}

/** check_vfio_info_cap_chain(): walks the capabilities the kernel wrote into the global buffer. */
function checkVfioInfoCapChain(view: DataView, argsz: number, capOffset: number): void {
  const HEADER = U.vfio_info_cap_header.sizeof;
  expect(argsz).to.be.at.least(capOffset + HEADER);
  let cap = capOffset;
  for (;;) {
    const id = view.getUint16(cap, true);
    const version = view.getUint16(cap + 2, true);
    const next = view.getUint32(cap + 4, true);
    const capSize = next ? next - cap : argsz - cap;

    switch (id) {
      case U.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: {
        const data = U.vfio_iommu_type1_info_cap_iova_range.decode(new Uint8Array(view.buffer, cap, Math.max(0, argsz - cap)));
        expect(version).to.equal(1);
        expect(data.nr_iovas).to.equal(1);
        expect(data.iova_ranges[0]?.start).to.equal(BigInt(U.MOCK_APERTURE_START));
        expect(data.iova_ranges[0]?.end).to.equal(BigInt(U.MOCK_APERTURE_LAST));
        break;
      }
      case U.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL:
        expect(version).to.equal(1);
        expect(capSize).to.equal(U.vfio_iommu_type1_info_dma_avail.sizeof);
        break;
      default:
        expect.fail(`unknown capability id ${id} at offset ${cap}`);
    }
    if (!next) break;

    expect(argsz).to.be.at.least(next + HEADER);
    expect(next).to.be.at.least(cap);
    cap = next;
  }
}
