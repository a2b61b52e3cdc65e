// tools/testing/selftests/iommu/iommufd.c (7.x), FIXTURE(iommufd_viommu): an
// IOAS, and for the mock_viommu variant a mock device, a nesting parent HWPT,
// a vIOMMU on it and a nested HWPT on the vIOMMU. Every ioctl, vEVENTQ read
// and poll, and mmap of the iommufd runs in lockstep with the model
// (lib/model/iommufd/viommu.ts, eventq.ts).
import { expect } from 'chai';
import * as U from '../../../../lib/uapi/index.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE, sys } from '../../../../lib/sys/index.ts';
import { mockIopfMissing, requireIommufd, requireIoctl, requireMockDomain, requireTestOp } from '../../../support/kernel.ts';
import { lockstep } from '../../../support/lockstep.ts';
import { skipBecause } from '../../../support/skip.ts';
import {
  EBUSY, EEXIST, EINVAL, EIO, ENOENT, ENXIO, EOPNOTSUPP, EOVERFLOW, PAGE_SIZE, UINT32_MAX, UINT64_MAX,
  assertOk, destroy, devCheckCache, devCheckCacheAll, errHwQueueAlloc, errIoasUnmap, errMmap, errMockDomainReplace,
  errHwptAllocIopf, errVdeviceAlloc, errVeventqAlloc, errViommuAlloc, errViommuInvalidate, expectErrno, faultAlloc,
  hwQueueAlloc, hwptAlloc, hwptAllocIopf, hwptAllocNested, ioasAlloc, ioasMap, ioasUnmap, mockDomain, mockDomainReplace,
  readVevents, selftestBuffer, setDefaultMemoryLimit, teardownIommufd, triggerIopf, triggerVevents, vdeviceAlloc,
  veventqAlloc, viommuAlloc, viommuInvalidate, type Iommufd,
} from '../../../support/iommufd-utils.ts';

interface Variant {
  name: string;
  viommu: boolean;
}

// FIXTURE_VARIANT_ADD(iommufd_viommu, ...)
const VARIANTS: Variant[] = [
  { name: 'no_viommu', viommu: false },
  { name: 'mock_viommu', viommu: true },
];

interface ViommuSelf {
  fd: Iommufd;
  ioasId: number;
  stdevId: number;
  hwptId: number;
  nestedHwptId: number;
  deviceId: number;
  viommuId: number;
}

/** struct iommu_hwpt_selftest { .iotlb = IOMMU_TEST_IOTLB_DEFAULT }, at the 7.x size (iotlb, pagetable_type). */
const hwptSelftestData = (): Uint8Array => {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setUint32(0, U.IOMMU_TEST_IOTLB_DEFAULT, true);
  return data;
};

/** The kernel's own SKIP for the tests that need a vIOMMU. */
const NO_VIOMMU = 'Skipping test for variant no_viommu';

for (const variant of VARIANTS) {
  describe(`iommufd_viommu.${variant.name}`, () => {
    let self: ViommuSelf;

    beforeEach(function () {
      self = {} as ViommuSelf;
      requireIommufd(this);
      if (variant.viommu) {
        requireMockDomain(this);
        requireIoctl(this, 'IOMMU_VIOMMU_ALLOC');
      }
      self = { fd: lockstep().openIommufd(), ioasId: 0, stdevId: 0, hwptId: 0, nestedHwptId: 0, deviceId: 0, viommuId: 0 };
      self.ioasId = ioasAlloc(self);
      setDefaultMemoryLimit(self);

      if (variant.viommu) {
        const mock = mockDomain(self, self.ioasId);
        self.stdevId = mock.stdevId;
        self.deviceId = mock.idevId;

        /* Allocate a nesting parent hwpt */
        self.hwptId = hwptAlloc(self, self.deviceId, self.ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT);

        /* Allocate a vIOMMU taking refcount of the parent hwpt */
        self.viommuId = viommuAlloc(self, self.deviceId, self.hwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST, null);

        /* Allocate a regular nested hwpt */
        self.nestedHwptId = hwptAllocNested(self, self.deviceId, self.viommuId, 0, U.IOMMU_HWPT_DATA_SELFTEST, hwptSelftestData());
      }
    });

    afterEach(() => {
      if (!self.fd || self.fd.closed) return;
      teardownIommufd(self.fd);
    });

    it('viommu_auto_destroy', () => {
      // The fixture's objects go at teardown (close), with no IOMMU_DESTROY.
      expect(self.ioasId).to.not.equal(0);
    });

    it('viommu_negative_tests', function () {
      requireIoctl(this, 'IOMMU_VIOMMU_ALLOC');
      const deviceId = self.deviceId;
      const ioasId = self.ioasId;

      if (self.deviceId) {
        /* Negative test -- invalid hwpt (hwpt_id=0) */
        errViommuAlloc(ENOENT, self, deviceId, 0, U.IOMMU_VIOMMU_TYPE_SELFTEST, null);

        /* Negative test -- not a nesting parent hwpt */
        const hwptId = hwptAlloc(self, deviceId, ioasId, 0);
        errViommuAlloc(EINVAL, self, deviceId, hwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST, null);
        destroy(self, hwptId);

        /* Negative test -- unsupported viommu type */
        errViommuAlloc(EOPNOTSUPP, self, deviceId, self.hwptId, 0xdead, null);
        expectErrno(EBUSY, self.fd.destroy(self.hwptId), 'IOMMU_DESTROY(parent hwpt)');
        expectErrno(EBUSY, self.fd.destroy(self.viommuId), 'IOMMU_DESTROY(viommu)');
      } else {
        errViommuAlloc(ENOENT, self, self.deviceId, self.hwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST, null);
      }
    });

    it('viommu_alloc_nested_iopf', function () {
      const data = hwptSelftestData();
      const viommuId = self.viommuId;
      const devId = self.deviceId;

      requireIoctl(this, 'IOMMU_VIOMMU_ALLOC');
      if (!devId) skipBecause(this, NO_VIOMMU);
      requireIoctl(this, 'IOMMU_FAULT_QUEUE_ALLOC');
      requireIoctl(this, 'IOMMU_VDEVICE_ALLOC');
      const iopfMissing = mockIopfMissing();
      if (iopfMissing) skipBecause(this, iopfMissing);

      const { faultId, faultFd } = faultAlloc(self);
      errHwptAllocIopf(ENOENT, self, devId, viommuId, UINT32_MAX, U.IOMMU_HWPT_FAULT_ID_VALID, U.IOMMU_HWPT_DATA_SELFTEST, data);
      errHwptAllocIopf(EOPNOTSUPP, self, devId, viommuId, faultId, U.IOMMU_HWPT_FAULT_ID_VALID | (1 << 31), U.IOMMU_HWPT_DATA_SELFTEST, data);
      const iopfHwptId = hwptAllocIopf(self, devId, viommuId, faultId, U.IOMMU_HWPT_FAULT_ID_VALID, U.IOMMU_HWPT_DATA_SELFTEST, data);

      /* Must allocate vdevice before attaching to a nested hwpt */
      errMockDomainReplace(ENOENT, self, self.stdevId, iopfHwptId);
      vdeviceAlloc(self, viommuId, devId, 0x99);
      mockDomainReplace(self, self.stdevId, iopfHwptId);
      expectErrno(EBUSY, self.fd.destroy(iopfHwptId), 'IOMMU_DESTROY(iopf hwpt)');
      triggerIopf(self, devId, faultFd);

      mockDomainReplace(self, self.stdevId, self.ioasId);
      destroy(self, iopfHwptId);
      assertOk(self.fd.closeAccess(faultFd), 'close(fault_fd)');
      destroy(self, faultId);
    });

    it('viommu_alloc_with_data', function () {
      const data = U.iommu_viommu_selftest.encode({ in_data: 0xbeef });

      requireIoctl(this, 'IOMMU_VIOMMU_ALLOC');
      if (!self.deviceId) skipBecause(this, NO_VIOMMU);

      self.viommuId = viommuAlloc(self, self.deviceId, self.hwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST, data);
      const out = U.iommu_viommu_selftest.decode(data);
      expect(out.out_data, 'data.out_data').to.equal(out.in_data);

      /* Negative mmap tests -- offset and length cannot be changed */
      const length = Number(out.out_mmap_length);
      const offset = Number(out.out_mmap_offset);
      errMmap(ENXIO, self, length, offset + PAGE_SIZE);
      errMmap(ENXIO, self, length, offset + PAGE_SIZE * 2);
      errMmap(ENXIO, self, length / 2, offset);
      errMmap(ENXIO, self, length * 2, offset);

      /* Now do a correct mmap for a loopback test */
      const test = assertOk(self.fd.mmapRegion({ length, offset, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED }), 'mmap(iommufd)').mapping!;
      // *test: the region is device memory, with no JS view; the addon copies it out without touching it from JS.
      const word = sys().peek(test, 0, 4);
      expect(typeof word === 'number' ? `errno ${-word}` : new DataView(word.buffer).getUint32(0, true), '*test').to.equal(out.in_data);

      /* The owner of the mmap region should be blocked */
      expectErrno(EBUSY, self.fd.destroy(self.viommuId), 'IOMMU_DESTROY(viommu with a live mmap)');
      expect(self.fd.sys.munmap(test), 'munmap').to.equal(0);
    });

    it('vdevice_alloc', function () {
      const viommuId = self.viommuId;
      const devId = self.deviceId;
      let vdevId = 0;
      const prevSeq = { value: -1 };
      const hdrSize = U.iommufd_vevent_header.sizeof;
      const vbuf = new Uint8Array(64);

      requireIoctl(this, 'IOMMU_VDEVICE_ALLOC');
      if (devId) {
        requireIoctl(this, 'IOMMU_VEVENTQ_ALLOC');
        requireTestOp(this, 'TRIGGER_VEVENT');
        /* Must allocate vdevice before attaching to a nested hwpt */
        errMockDomainReplace(ENOENT, self, self.stdevId, self.nestedHwptId);

        /* Test depth lower and upper bounds (mirrors kernel cap) */
        const VEVENTQ_MAX_DEPTH = 1 << 19;
        errVeventqAlloc(EINVAL, self, viommuId, U.IOMMU_VEVENTQ_TYPE_SELFTEST, 0);
        errVeventqAlloc(EINVAL, self, viommuId, U.IOMMU_VEVENTQ_TYPE_SELFTEST, VEVENTQ_MAX_DEPTH + 1);
        let q = veventqAlloc(self, viommuId, U.IOMMU_VEVENTQ_TYPE_SELFTEST, VEVENTQ_MAX_DEPTH);
        assertOk(self.fd.closeAccess(q.veventqFd), 'close(veventq_fd)');
        destroy(self, q.veventqId);

        /* Allocate a vEVENTQ with veventq_depth=2 */
        q = veventqAlloc(self, viommuId, U.IOMMU_VEVENTQ_TYPE_SELFTEST, 2);
        const { veventqId, veventqFd } = q;
        errVeventqAlloc(EEXIST, self, viommuId, U.IOMMU_VEVENTQ_TYPE_SELFTEST, 2);

        /* Invalid read counts on an empty vEVENTQ */
        expectErrno(EINVAL, self.fd.readEventq(veventqFd, vbuf.subarray(0, 0)), 'read(veventq_fd, 0)');
        expectErrno(EINVAL, self.fd.readEventq(veventqFd, vbuf.subarray(0, hdrSize - 1)), 'read(veventq_fd, hdr_size - 1)');

        /* Set vdev_id to 0x99, unset it, and set to 0x88 */
        vdevId = vdeviceAlloc(self, viommuId, devId, 0x99);
        mockDomainReplace(self, self.stdevId, self.nestedHwptId);
        triggerVevents(self, devId, 1);

        /* Invalid read counts on a non-empty vEVENTQ */
        expectErrno(EINVAL, self.fd.readEventq(veventqFd, vbuf.subarray(0, 0)), 'read(veventq_fd, 0)');
        /* header fits but the event's payload doesn't */
        expectErrno(EINVAL, self.fd.readEventq(veventqFd, vbuf.subarray(0, hdrSize)), 'read(veventq_fd, hdr_size)');

        expect(readVevents(self, veventqFd, 1, 0x99, prevSeq), 'test_cmd_read_vevents(1, 0x99)').to.equal(0);
        errVdeviceAlloc(EEXIST, self, viommuId, devId, 0x99);
        mockDomainReplace(self, self.stdevId, self.ioasId);
        destroy(self, vdevId);

        /* Try again with 0x88 */
        vdevId = vdeviceAlloc(self, viommuId, devId, 0x88);
        mockDomainReplace(self, self.stdevId, self.nestedHwptId);
        /* Trigger an overflow with three events */
        triggerVevents(self, devId, 3);
        expect(readVevents(self, veventqFd, 3, 0x88, prevSeq), 'test_err_read_vevents(EOVERFLOW, 3, 0x88)').to.equal(EOVERFLOW);
        /* Overflow must be gone after the previous reads */
        triggerVevents(self, devId, 1);
        expect(readVevents(self, veventqFd, 1, 0x88, prevSeq), 'test_cmd_read_vevents(1, 0x88)').to.equal(0);
        assertOk(self.fd.closeAccess(veventqFd), 'close(veventq_fd)');
        mockDomainReplace(self, self.stdevId, self.ioasId);
        destroy(self, vdevId);
        destroy(self, veventqId);
      } else {
        errVdeviceAlloc(ENOENT, self, viommuId, devId, 0x99);
      }
    });

    it('vdevice_cache', function () {
      const invReqs = new Uint8Array(2 * U.iommu_viommu_invalidate_selftest.sizeof);
      const inv = (i: number, fields: { flags?: number; vdev_id?: number; cache_id?: number }) => {
        const at = i * U.iommu_viommu_invalidate_selftest.sizeof;
        for (const [k, v] of Object.entries(fields)) U.iommu_viommu_invalidate_selftest.write(invReqs, k as 'flags', v >>> 0, at);
      };
      const lreq = U.iommu_viommu_invalidate_selftest.sizeof;
      const viommuId = self.viommuId;
      const devId = self.deviceId;
      let numInv: number;

      requireIoctl(this, 'IOMMU_VDEVICE_ALLOC');
      if (!devId) skipBecause(this, NO_VIOMMU);
      requireTestOp(this, 'DEV_CHECK_CACHE');

      const vdevId = vdeviceAlloc(self, viommuId, devId, 0x99);

      devCheckCacheAll(self, devId, U.IOMMU_TEST_DEV_CACHE_DEFAULT);

      /* Check data_type by passing zero-length array */
      numInv = viommuInvalidate(self, viommuId, invReqs, lreq, 0);
      expect(numInv).to.equal(0);

      /* Negative test: Invalid data_type */
      numInv = errViommuInvalidate(EINVAL, self, viommuId, invReqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID, lreq, 1);
      expect(numInv).to.equal(0);

      /* Negative test: structure size sanity */
      numInv = errViommuInvalidate(EINVAL, self, viommuId, invReqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, lreq + 1, 1);
      expect(numInv).to.equal(0);

      numInv = errViommuInvalidate(EINVAL, self, viommuId, invReqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, 1, 1);
      expect(numInv).to.equal(0);

      /* Negative test: invalid flag is passed */
      inv(0, { flags: 0xffffffff, vdev_id: 0x99 });
      numInv = errViommuInvalidate(EOPNOTSUPP, self, viommuId, invReqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, lreq, 1);
      expect(numInv).to.equal(0);

      /* Negative test: invalid data_uptr when array is not empty */
      inv(0, { flags: 0, vdev_id: 0x99 });
      numInv = errViommuInvalidate(EINVAL, self, viommuId, null, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, lreq, 1);
      expect(numInv).to.equal(0);

      /* Negative test: invalid entry_len when array is not empty */
      inv(0, { flags: 0, vdev_id: 0x99 });
      numInv = errViommuInvalidate(EINVAL, self, viommuId, invReqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, 0, 1);
      expect(numInv).to.equal(0);

      /* Negative test: invalid cache_id */
      inv(0, { flags: 0, vdev_id: 0x99, cache_id: U.MOCK_DEV_CACHE_ID_MAX + 1 });
      numInv = errViommuInvalidate(EINVAL, self, viommuId, invReqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, lreq, 1);
      expect(numInv).to.equal(0);

      /* Negative test: invalid vdev_id */
      inv(0, { flags: 0, vdev_id: 0x9, cache_id: 0 });
      numInv = errViommuInvalidate(EINVAL, self, viommuId, invReqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, lreq, 1);
      expect(numInv).to.equal(0);

      /*
       * Invalidate the 1st cache entry but fail the 2nd request
       * due to invalid flags configuration in the 2nd request.
       */
      inv(0, { flags: 0, vdev_id: 0x99, cache_id: 0 });
      inv(1, { flags: 0xffffffff, vdev_id: 0x99, cache_id: 1 });
      numInv = errViommuInvalidate(EOPNOTSUPP, self, viommuId, invReqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, lreq, 2);
      expect(numInv).to.equal(1);
      devCheckCache(self, devId, 0, 0);
      devCheckCache(self, devId, 1, U.IOMMU_TEST_DEV_CACHE_DEFAULT);
      devCheckCache(self, devId, 2, U.IOMMU_TEST_DEV_CACHE_DEFAULT);
      devCheckCache(self, devId, 3, U.IOMMU_TEST_DEV_CACHE_DEFAULT);

      /*
       * Invalidate the 1st cache entry but fail the 2nd request
       * due to invalid cache_id configuration in the 2nd request.
       */
      inv(0, { flags: 0, vdev_id: 0x99, cache_id: 0 });
      inv(1, { flags: 0, vdev_id: 0x99, cache_id: U.MOCK_DEV_CACHE_ID_MAX + 1 });
      numInv = errViommuInvalidate(EINVAL, self, viommuId, invReqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, lreq, 2);
      expect(numInv).to.equal(1);
      devCheckCache(self, devId, 0, 0);
      devCheckCache(self, devId, 1, U.IOMMU_TEST_DEV_CACHE_DEFAULT);
      devCheckCache(self, devId, 2, U.IOMMU_TEST_DEV_CACHE_DEFAULT);
      devCheckCache(self, devId, 3, U.IOMMU_TEST_DEV_CACHE_DEFAULT);

      /* Invalidate the 2nd cache entry and verify */
      inv(0, { flags: 0, vdev_id: 0x99, cache_id: 1 });
      numInv = viommuInvalidate(self, viommuId, invReqs, lreq, 1);
      expect(numInv).to.equal(1);
      devCheckCache(self, devId, 0, 0);
      devCheckCache(self, devId, 1, 0);
      devCheckCache(self, devId, 2, U.IOMMU_TEST_DEV_CACHE_DEFAULT);
      devCheckCache(self, devId, 3, U.IOMMU_TEST_DEV_CACHE_DEFAULT);

      /* Invalidate the 3rd and 4th cache entries and verify */
      inv(0, { flags: 0, vdev_id: 0x99, cache_id: 2 });
      inv(1, { flags: 0, vdev_id: 0x99, cache_id: 3 });
      numInv = viommuInvalidate(self, viommuId, invReqs, lreq, 2);
      expect(numInv).to.equal(2);
      devCheckCacheAll(self, devId, 0);

      /* Invalidate all cache entries for nested_dev_id[1] and verify */
      inv(0, { vdev_id: 0x99, flags: U.IOMMU_TEST_INVALIDATE_FLAG_ALL });
      numInv = viommuInvalidate(self, viommuId, invReqs, lreq, 1);
      expect(numInv).to.equal(1);
      devCheckCacheAll(self, devId, 0);
      destroy(self, vdevId);
    });

    it('hw_queue', function () {
      const buffer = selftestBuffer();
      let iova: bigint | number = U.MOCK_APERTURE_START;
      const viommuId = self.viommuId;
      const hwQueueId: number[] = [0, 0];

      requireIoctl(this, 'IOMMU_HW_QUEUE_ALLOC');
      if (!viommuId) skipBecause(this, NO_VIOMMU);

      /* Fail IOMMU_HW_QUEUE_TYPE_DEFAULT */
      errHwQueueAlloc(EOPNOTSUPP, self, viommuId, U.IOMMU_HW_QUEUE_TYPE_DEFAULT, 0, iova, PAGE_SIZE);
      /* Fail queue addr and length */
      errHwQueueAlloc(EINVAL, self, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, 0);
      errHwQueueAlloc(EOVERFLOW, self, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, UINT64_MAX, PAGE_SIZE);
      /* Fail missing iova */
      errHwQueueAlloc(ENOENT, self, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, PAGE_SIZE);

      /* Map iova */
      iova = ioasMap(self, buffer.address, PAGE_SIZE);
      const iova2 = ioasMap(self, buffer.address + BigInt(PAGE_SIZE), PAGE_SIZE);

      /* Fail index=1 and =MAX; must start from index=0 */
      errHwQueueAlloc(EIO, self, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 1, iova, PAGE_SIZE);
      errHwQueueAlloc(EINVAL, self, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, U.IOMMU_TEST_HW_QUEUE_MAX, iova, PAGE_SIZE);

      /* Allocate index=0, declare ownership of the iova */
      hwQueueId[0] = hwQueueAlloc(self, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, PAGE_SIZE);
      /* Fail duplicated index */
      errHwQueueAlloc(EEXIST, self, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, PAGE_SIZE);
      /* Fail unmap, due to iova ownership */
      errIoasUnmap(EBUSY, self, iova, PAGE_SIZE);
      /* The 2nd page is not pinned, so it can be unmmap */
      ioasUnmap(self, iova2, PAGE_SIZE);

      /* Allocate index=1, with an unaligned case */
      hwQueueId[1] = hwQueueAlloc(self, viommuId, U.IOMMU_HW_QUEUE_TYPE_SELFTEST, 1, iova + BigInt(PAGE_SIZE / 2), PAGE_SIZE / 2);
      /* Fail to destroy, due to dependency */
      expectErrno(EBUSY, self.fd.destroy(hwQueueId[0]!), 'IOMMU_DESTROY(hw_queue[0])');

      /* Destroy in descending order */
      destroy(self, hwQueueId[1]!);
      destroy(self, hwQueueId[0]!);
      /* Now it can unmap the first page */
      ioasUnmap(self, iova, PAGE_SIZE);
    });

    it('vdevice_tombstone', function () {
      const viommuId = self.viommuId;
      const devId = self.deviceId;

      requireIoctl(this, 'IOMMU_VDEVICE_ALLOC');
      if (!devId) skipBecause(this, NO_VIOMMU);

      const vdevId = vdeviceAlloc(self, viommuId, devId, 0x99);
      destroy(self, self.stdevId);
      expectErrno(ENOENT, self.fd.destroy(vdevId), 'IOMMU_DESTROY(tombstoned vdevice)');
    });
  });
}
