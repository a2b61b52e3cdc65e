// Guards for suites that need a kernel feature: each skips, with the missing
// feature named, when the running kernel (probed, never guessed from its
// version) does not have it.
import { closeSync } from 'node:fs';
import type { Context } from 'mocha';
import * as U from '../../lib/uapi/index.ts';
import { IommuFd, isRoot, kernelFeatures, type KernelFeatures } from '../../lib/kernel/index.ts';
import type { TestOpName } from '../../lib/kernel/features.ts';
import { skipBecause } from './skip.ts';

const EINVAL = 22;
const EOPNOTSUPP = 95;

/** Skips unless /dev/iommu can be used: root, and a kernel with CONFIG_IOMMUFD. */
export function requireIommufd(ctx: Context): KernelFeatures {
  if (!isRoot()) skipBecause(ctx, 'not root (/dev/iommu needs root)');
  const f = kernelFeatures();
  if (!f.iommufd) skipBecause(ctx, `no /dev/iommu: ${f.iommufdError ?? 'unknown'}`);
  return f;
}

/** Skips unless IOMMU_TEST_CMD mock domains work (CONFIG_IOMMUFD_TEST, and no intel-iommu claiming the mock bus). */
export function requireMockDomain(ctx: Context): KernelFeatures {
  const f = requireIommufd(ctx);
  if (!f.ioctls.IOMMU_TEST_CMD) skipBecause(ctx, 'kernel lacks IOMMU_TEST_CMD (CONFIG_IOMMUFD_TEST)');
  if (!f.mockDomain) skipBecause(ctx, `IOMMU_TEST_OP_MOCK_DOMAIN fails with errno ${f.mockDomainErrno} (an active hardware IOMMU driver owns the mock device: see README)`);
  return f;
}

/** Skips unless the real VFIO container (/dev/vfio/vfio, type1) is there. */
export function requireVfioContainer(ctx: Context): KernelFeatures {
  if (!isRoot()) skipBecause(ctx, 'not root (/dev/vfio needs root)');
  const f = kernelFeatures();
  if (!f.vfio.container) skipBecause(ctx, 'no VFIO container at /dev/vfio/vfio (CONFIG_VFIO_CONTAINER)');
  return f;
}

export function inTestVm(): boolean {
  return process.env.IOMMUFD_CONFORMANCE_IN_VM === '1';
}

/** Skips unless the kernel has this IOMMU_TEST_CMD op (CONFIG_IOMMUFD_TEST of a kernel recent enough). */
export function requireTestOp(ctx: Context, op: TestOpName): KernelFeatures {
  const f = requireIommufd(ctx);
  if (!f.ioctls.IOMMU_TEST_CMD) skipBecause(ctx, 'kernel lacks IOMMU_TEST_CMD (CONFIG_IOMMUFD_TEST)');
  if (!f.testOps[op]) skipBecause(ctx, `kernel lacks IOMMU_TEST_OP_${op}`);
  return f;
}

const HWPT_ALLOC_FLAG_NAMES = {
  nestParent: 'IOMMU_HWPT_ALLOC_NEST_PARENT',
  dirtyTracking: 'IOMMU_HWPT_ALLOC_DIRTY_TRACKING',
  faultIdValid: 'IOMMU_HWPT_FAULT_ID_VALID',
} as const;

/** Skips unless IOMMU_HWPT_ALLOC knows this flag. */
export function requireHwptAllocFlag(ctx: Context, flag: keyof KernelFeatures['hwptAllocFlags']): KernelFeatures {
  const f = requireMockDomain(ctx);
  if (!f.ioctls.IOMMU_HWPT_ALLOC) skipBecause(ctx, 'kernel lacks IOMMU_HWPT_ALLOC');
  if (!f.hwptAllocFlags[flag]) skipBecause(ctx, `IOMMU_HWPT_ALLOC lacks ${HWPT_ALLOC_FLAG_NAMES[flag]}`);
  return f;
}

/** Skips unless this iommufd ioctl exists. */
export function requireIoctl(ctx: Context, name: string): KernelFeatures {
  const f = requireIommufd(ctx);
  if (!f.ioctls[name]) skipBecause(ctx, `kernel lacks ${name}`);
  return f;
}

/** Skips unless iommufd's VFIO container compat (CONFIG_IOMMUFD_VFIO_CONTAINER) answers on /dev/iommu. */
export function requireVfioCompat(ctx: Context): KernelFeatures {
  const f = requireIommufd(ctx);
  if (!f.vfio.compatOnIommufd) skipBecause(ctx, 'kernel lacks the VFIO container compat on /dev/iommu (CONFIG_IOMMUFD_VFIO_CONTAINER)');
  return f;
}

/** Skips unless MAP_HUGETLB mappings can be made (hugetlbfs with free huge pages). */
export function requireHugetlb(ctx: Context): KernelFeatures {
  const f = kernelFeatures();
  if (!f.hugetlb) skipBecause(ctx, 'no hugetlb pages (MAP_HUGETLB fails)');
  return f;
}

// Selftest features newer than the 6.12 uAPI that Debian's 6.12 selftests
// (stable backports) already use. lib/kernel/features.ts does not probe them
// yet, so they are probed here, the same way: once, on a /dev/iommu of their
// own, by whether the kernel rejects them as unknown.

/** iommufd_test.h MOCK_FLAGS_DEVICE_PASID (a mock device with PASID support, Linux 6.16). */
export const MOCK_FLAGS_DEVICE_PASID = 1 << 2;
/** iommufd.h IOMMU_HW_INFO_FLAG_INPUT_TYPE (iommu_hw_info.in_data_type, Linux 6.17). */
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;

export interface SelftestExtensions {
  mockDevFlagPasid: boolean;
  hwInfoInputType: boolean;
}

let extensions: SelftestExtensions | undefined;
export function selftestExtensions(): SelftestExtensions {
  if (extensions) return extensions;
  const found: SelftestExtensions = { mockDevFlagPasid: false, hwInfoInputType: false };
  const f = kernelFeatures();
  const { iommufd } = f.iommufd ? IommuFd.open() : { iommufd: null };
  if (iommufd) {
    try {
      // An unknown device flag is EINVAL before the IOAS lookup; a known one with a bad IOAS is ENOENT.
      if (f.testOps.MOCK_DOMAIN_FLAGS) found.mockDevFlagPasid = iommufd.testMockDomainFlags({ ptId: 0x7fffffff, devFlags: MOCK_FLAGS_DEVICE_PASID }).errno !== EINVAL;
      // An unknown hw_info flag is EOPNOTSUPP before the device lookup; a known one with a bad device is ENOENT.
      if (f.ioctls.IOMMU_GET_HW_INFO) found.hwInfoInputType = iommufd.getHwInfo({ devId: 0x7fffffff, dataLen: 0, flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE }).errno !== EOPNOTSUPP;
    } finally {
      iommufd.close();
    }
  }
  extensions = found;
  return found;
}

const MOCK_DEV_FLAG_NAMES = { noDirty: 'MOCK_FLAGS_DEVICE_NO_DIRTY', hugeIova: 'MOCK_FLAGS_DEVICE_HUGE_IOVA', pasid: 'MOCK_FLAGS_DEVICE_PASID' } as const;

/** Skips unless IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS knows this device flag. */
export function requireMockDevFlag(ctx: Context, flag: keyof typeof MOCK_DEV_FLAG_NAMES): KernelFeatures {
  const f = requireTestOp(ctx, 'MOCK_DOMAIN_FLAGS');
  const known = flag === 'pasid' ? selftestExtensions().mockDevFlagPasid : f.mockDevFlags[flag];
  if (!known) skipBecause(ctx, `kernel lacks ${MOCK_DEV_FLAG_NAMES[flag]} (IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS)`);
  return f;
}

/** Skips unless IOMMU_GET_HW_INFO takes an input data type (IOMMU_HW_INFO_FLAG_INPUT_TYPE). */
export function requireHwInfoInputType(ctx: Context): void {
  if (!selftestExtensions().hwInfoInputType) skipBecause(ctx, 'kernel lacks IOMMU_HW_INFO_FLAG_INPUT_TYPE (IOMMU_GET_HW_INFO in_data_type)');
}

let mockIopf: { works: boolean; errno: number } | undefined;
/**
 * Whether a mock device can be attached to an IOPF-capable (fault_id) HWPT.
 * The mock iommu enables IOMMU_DEV_FEAT_IOPF on an iopf queue that only
 * exists with CONFIG_IOMMU_IOPF (selected by INTEL_IOMMU_SVM, AMD_IOMMU,
 * ARM_SMMU_V3_SVA..., not by IOMMUFD_TEST): without it, selftest.c
 * mock_dev_enable_feat() fails with ENODEV.
 */
export function mockIopfSupport(): { works: boolean; errno: number } {
  if (mockIopf) return mockIopf;
  mockIopf = { works: false, errno: 0 };
  const f = kernelFeatures();
  if (!f.mockDomain || !f.ioctls.IOMMU_FAULT_QUEUE_ALLOC) return mockIopf;
  const { iommufd } = IommuFd.open();
  if (!iommufd) return mockIopf;
  try {
    const ioas = iommufd.ioasAlloc();
    const mock = iommufd.testMockDomain({ ptId: ioas.ioasId });
    const parent = iommufd.hwptAlloc({ devId: mock.idevId, ptId: ioas.ioasId, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
    const fault = iommufd.faultQueueAlloc();
    const data = U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT });
    const nested = iommufd.hwptAlloc({ devId: mock.idevId, ptId: parent.hwptId, flags: U.IOMMU_HWPT_FAULT_ID_VALID, faultId: fault.faultId, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data });
    if (nested.errno === 0) {
      const r = iommufd.testMockDomainReplace({ stdevId: mock.stdevId, ptId: nested.hwptId });
      mockIopf = { works: r.errno === 0, errno: r.errno };
    }
    if (fault.errno === 0) closeSync(fault.faultFd);
  } finally {
    iommufd.close();
  }
  return mockIopf;
}
