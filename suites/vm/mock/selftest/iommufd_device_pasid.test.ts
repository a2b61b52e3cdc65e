// tools/testing/selftests/iommu/iommufd.c (7.x), FIXTURE(iommufd_device_pasid):
// a PASID-capable mock device on an IOAS (and, for no_pasid, a second device
// without PASIDs), whose PASIDs are attached, replaced and detached through
// IOMMU_TEST_OP_PASID_ATTACH, _REPLACE, _DETACH and checked with
// _PASID_CHECK_HWPT. Every call in lockstep with the model's reading of
// device.c (iommufd_hwpt_pasid_compat, iommufd_hw_pagetable_attach,
// iommufd_device_do_replace) and selftest.c (mock_domain_set_dev_pasid_nop).
import * as U from '../../../../lib/uapi/index.ts';
import { mockIopfMissing, requireHwptAllocFlag, requireIoctl, requireMockDevFlag, requireMockDomain, requireTestOp } from '../../../support/kernel.ts';
import { lockstep } from '../../../support/lockstep.ts';
import { skipBecause } from '../../../support/skip.ts';
import {
  EBUSY, EINVAL, assertOk, errMockDomainReplace, errPasidAttach, errPasidReplace, faultAlloc, hwptAlloc, hwptAllocIopf,
  hwptAllocNested, ioasAlloc, mockDomainFlags, mockDomainReplace, pasidAttach, pasidCheckHwpt, pasidDetach, pasidReplace, destroy,
  teardownIommufd, triggerIopf, viommuAlloc, type Iommufd,
} from '../../../support/iommufd-utils.ts';
import { errnoNumber } from '../../../../lib/sys/index.ts';

const ENOMEM = errnoNumber('ENOMEM');

interface Variant {
  name: string;
  pasidCapable: boolean;
}

// FIXTURE_VARIANT_ADD(iommufd_device_pasid, ...)
const VARIANTS: Variant[] = [
  { name: 'no_pasid', pasidCapable: false },
  { name: 'has_pasid', pasidCapable: true },
];

interface PasidSelf {
  fd: Iommufd;
  ioasId: number;
  hwptId: number;
  stdevId: number;
  deviceId: number;
  noPasidStdevId: number;
  noPasidDeviceId: number;
}

for (const variant of VARIANTS) {
  describe(`iommufd_device_pasid.${variant.name}`, () => {
    let self: PasidSelf;

    beforeEach(function () {
      self = {} as PasidSelf;
      requireMockDomain(this);
      // FIXTURE_SETUP makes its device with MOCK_FLAGS_DEVICE_PASID.
      requireMockDevFlag(this, 'pasid');
      self.fd = lockstep().openIommufd();
      self.ioasId = ioasAlloc(self);

      const mock = mockDomainFlags(self, self.ioasId, U.MOCK_FLAGS_DEVICE_PASID);
      self.stdevId = mock.stdevId;
      self.hwptId = mock.hwptId;
      self.deviceId = mock.idevId;
      if (!variant.pasidCapable) {
        const plain = mockDomainFlags(self, self.ioasId, 0);
        self.noPasidStdevId = plain.stdevId;
        self.noPasidDeviceId = plain.idevId;
      }
    });

    afterEach(() => {
      if (!self.fd || self.fd.closed) return;
      teardownIommufd(self.fd);
    });

    it('pasid_attach', function () {
      for (const op of ['PASID_ATTACH', 'PASID_REPLACE', 'PASID_DETACH', 'PASID_CHECK_HWPT'] as const) requireTestOp(this, op);
      requireHwptAllocFlag(this, 'pasid');
      requireHwptAllocFlag(this, 'nestParent');
      requireHwptAllocFlag(this, 'faultIdValid');
      requireIoctl(this, 'IOMMU_FAULT_QUEUE_ALLOC');
      requireIoctl(this, 'IOMMU_VIOMMU_ALLOC');
      const data = U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT });
      const nestedHwptId: number[] = [0, 0, 0];
      let pasid = 100;
      const check = (p: number, hwptId: number) => pasidCheckHwpt(self, self.stdevId, p, hwptId);

      /*
       * Negative, detach pasid without attaching, this is not expected.
       * But it should not result in failure anyway.
       */
      pasidDetach(self, self.stdevId, pasid);

      /* Allocate two nested hwpts sharing one common parent hwpt */
      const parentHwptId = hwptAlloc(self, self.deviceId, self.ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
      nestedHwptId[0] = hwptAllocNested(self, self.deviceId, parentHwptId, U.IOMMU_HWPT_ALLOC_PASID, U.IOMMU_HWPT_DATA_SELFTEST, data);
      nestedHwptId[1] = hwptAllocNested(self, self.deviceId, parentHwptId, U.IOMMU_HWPT_ALLOC_PASID, U.IOMMU_HWPT_DATA_SELFTEST, data);

      /* Fault related preparation */
      const { faultId, faultFd } = faultAlloc(self);
      const iopfHwptId = hwptAllocIopf(self, self.deviceId, parentHwptId, faultId, U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_PASID, U.IOMMU_HWPT_DATA_SELFTEST, data);

      /* Allocate a regular nested hwpt based on viommu */
      const viommuId = viommuAlloc(self, self.deviceId, parentHwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST, null);
      nestedHwptId[2] = hwptAllocNested(self, self.deviceId, viommuId, U.IOMMU_HWPT_ALLOC_PASID, U.IOMMU_HWPT_DATA_SELFTEST, data);

      const s2HwptId = hwptAlloc(self, self.deviceId, self.ioasId, U.IOMMU_HWPT_ALLOC_PASID);

      /* Attach RID to non-pasid compat domain, */
      mockDomainReplace(self, self.stdevId, parentHwptId);
      /* then attach to pasid should fail */
      errPasidAttach(EINVAL, self, self.stdevId, pasid, s2HwptId);

      /* Attach RID to pasid compat domain, */
      mockDomainReplace(self, self.stdevId, s2HwptId);
      /* then attach to pasid should succeed, */
      pasidAttach(self, self.stdevId, pasid, nestedHwptId[0]);
      /* but attach RID to non-pasid compat domain should fail now. */
      errMockDomainReplace(EINVAL, self, self.stdevId, parentHwptId);
      /*
       * Detach hwpt from pasid 100, and check if the pasid 100
       * has null domain.
       */
      pasidDetach(self, self.stdevId, pasid);
      check(pasid, 0);
      /* RID is attached to pasid-comapt domain, pasid path is not used */

      if (!variant.pasidCapable) {
        /*
         * PASID-compatible domain can be used by non-PASID-capable
         * device.
         */
        mockDomainReplace(self, self.noPasidStdevId, nestedHwptId[0]);
        mockDomainReplace(self, self.noPasidStdevId, self.ioasId);
        /*
         * Attach hwpt to pasid 100 of non-PASID-capable device,
         * should fail, no matter domain is pasid-comapt or not.
         */
        errPasidAttach(EINVAL, self, self.noPasidStdevId, pasid, parentHwptId);
        errPasidAttach(EINVAL, self, self.noPasidStdevId, pasid, s2HwptId);
      }

      /*
       * Attach non pasid compat hwpt to pasid-capable device, should
       * fail, and have null domain.
       */
      errPasidAttach(EINVAL, self, self.stdevId, pasid, parentHwptId);
      check(pasid, 0);

      /*
       * Attach ioas to pasid 100, should fail, domain should
       * be null.
       */
      errPasidAttach(EINVAL, self, self.stdevId, pasid, self.ioasId);
      check(pasid, 0);

      /*
       * Attach the s2_hwpt to pasid 100, should succeed, domain should
       * be valid.
       */
      pasidAttach(self, self.stdevId, pasid, s2HwptId);
      check(pasid, s2HwptId);

      /*
       * Try attach pasid 100 with another hwpt, should FAIL
       * as attach does not allow overwrite, use REPLACE instead.
       */
      errPasidAttach(EBUSY, self, self.stdevId, pasid, nestedHwptId[0]);

      /*
       * Detach hwpt from pasid 100 for next test, should succeed,
       * and have null domain.
       */
      pasidDetach(self, self.stdevId, pasid);
      check(pasid, 0);

      /*
       * Attach nested hwpt to pasid 100, should succeed, domain
       * should be valid.
       */
      pasidAttach(self, self.stdevId, pasid, nestedHwptId[0]);
      check(pasid, nestedHwptId[0]);

      /* Attach to pasid 100 which has been attached, should fail. */
      errPasidAttach(EBUSY, self, self.stdevId, pasid, nestedHwptId[0]);

      /* cleanup pasid 100 */
      pasidDetach(self, self.stdevId, pasid);

      /* Replace tests */

      pasid = 200;
      /*
       * Replace pasid 200 without attaching it, should fail
       * with -EINVAL.
       */
      errPasidReplace(EINVAL, self, self.stdevId, pasid, s2HwptId);

      /*
       * Attach the s2 hwpt to pasid 200, should succeed, domain should
       * be valid.
       */
      pasidAttach(self, self.stdevId, pasid, s2HwptId);
      check(pasid, s2HwptId);

      /*
       * Replace pasid 200 with self->ioas_id, should fail
       * and domain should be the prior s2 hwpt.
       */
      errPasidReplace(EINVAL, self, self.stdevId, pasid, self.ioasId);
      check(pasid, s2HwptId);

      /*
       * Replace a nested hwpt for pasid 200, should succeed,
       * and have valid domain.
       */
      pasidReplace(self, self.stdevId, pasid, nestedHwptId[0]);
      check(pasid, nestedHwptId[0]);

      /*
       * Replace with another nested hwpt for pasid 200, should
       * succeed, and have valid domain.
       */
      pasidReplace(self, self.stdevId, pasid, nestedHwptId[1]);
      check(pasid, nestedHwptId[1]);

      /* cleanup pasid 200 */
      pasidDetach(self, self.stdevId, pasid);

      /* Negative Tests for pasid replace, use pasid 1024 */

      /*
       * Attach the s2 hwpt to pasid 1024, should succeed, domain should
       * be valid.
       */
      pasid = 1024;
      pasidAttach(self, self.stdevId, pasid, s2HwptId);
      check(pasid, s2HwptId);

      /*
       * Replace pasid 1024 with nested_hwpt_id[0], should fail,
       * but have the old valid domain. This is a designed
       * negative case. Normally, this shall succeed.
       */
      errPasidReplace(ENOMEM, self, self.stdevId, pasid, nestedHwptId[0]);
      check(pasid, s2HwptId);

      /* cleanup pasid 1024 */
      pasidDetach(self, self.stdevId, pasid);

      /* Attach to iopf-capable hwpt */

      // (The IOPF steps need CONFIG_IOMMU_IOPF: without it the rest of the
      // case still runs, and the case is then skipped.)
      const iopfMissing = mockIopfMissing();
      if (!iopfMissing) {
        /*
         * Attach an iopf hwpt to pasid 2048, should succeed, domain should
         * be valid.
         */
        pasid = 2048;
        pasidAttach(self, self.stdevId, pasid, iopfHwptId);
        check(pasid, iopfHwptId);

        triggerIopf(self, self.deviceId, faultFd, pasid);

        /*
         * Replace with s2_hwpt_id for pasid 2048, should
         * succeed, and have valid domain.
         */
        pasidReplace(self, self.stdevId, pasid, s2HwptId);
        check(pasid, s2HwptId);

        /* cleanup pasid 2048 */
        pasidDetach(self, self.stdevId, pasid);
      }

      destroy(self, iopfHwptId);
      // close(fault_fd), through lockstep so the model drops the fd's reference too
      assertOk(self.fd.closeAccess(faultFd), 'close(fault_fd)');
      destroy(self, faultId);

      /* Detach the s2_hwpt_id from RID */
      mockDomainReplace(self, self.stdevId, self.ioasId);
      if (iopfMissing) skipBecause(this, iopfMissing);
    });
  });
}
