// Guards for suites that need a kernel feature: each skips, with the missing
// feature named, when the running kernel (probed, never guessed from its
// version) does not have it.
import type { Context } from 'mocha';
import { hugetlbPool, isRoot, kernelFeatures, type KernelFeatures } from '../../lib/kernel/index.ts';
import type { TestOpName } from '../../lib/kernel/features.ts';
import { vfioDeviceUnderTest, type BoundDevice } from '../../lib/kernel/device-choice.ts';
import { errnoName, errnoNumber, PROT_READ, PROT_WRITE, type Mapping } from '../../lib/sys/index.ts';
import { lockstep } from './lockstep.ts';
import { skipBecause } from './skip.ts';

const ENODEV = errnoNumber('ENODEV');

/** Skips unless /dev/iommu can be used: root, and a kernel with CONFIG_IOMMUFD. */
export function requireIommufd(ctx: Context): KernelFeatures {
  if (!isRoot()) skipBecause(ctx, 'not root (/dev/iommu needs root)');
  const f = kernelFeatures();
  if (!f.iommufd) skipBecause(ctx, `no /dev/iommu: ${f.iommufdError ?? 'unknown'}`);
  return f;
}

/**
 * Why the IOMMU_TEST_CMD mock domains cannot be used here, as a skip reason,
 * or null when they work. Throws when a mock domain fails for no cause the
 * feature probe found: with CONFIG_IOMMUFD_TEST and no hardware IOMMU driver
 * owning the mock bus (the `mock` profile), that can only be a kernel bug,
 * and a suite that skipped it would report a broken kernel as a green run.
 */
export function mockDomainUnavailable(f: Pick<KernelFeatures, 'ioctls' | 'mockDomain' | 'mockDomainErrno' | 'mockDomainBlocker'> = kernelFeatures()): string | null {
  if (!f.ioctls.IOMMU_TEST_CMD) return 'kernel lacks IOMMU_TEST_CMD (CONFIG_IOMMUFD_TEST)';
  if (f.mockDomain) return null;
  if (f.mockDomainBlocker) return f.mockDomainBlocker;
  throw new Error(
    `IOMMU_TEST_OP_MOCK_DOMAIN fails with ${errnoName(f.mockDomainErrno)} and no hardware IOMMU driver owns the mock bus ` +
      '(no intel-iommu or amd-iommu unit in /sys/class/iommu): the kernel cannot attach its own mock device',
  );
}

/** Skips unless IOMMU_TEST_CMD mock domains work; fails when they should and do not (mockDomainUnavailable). */
export function requireMockDomain(ctx: Context): KernelFeatures {
  const f = requireIommufd(ctx);
  const why = mockDomainUnavailable();
  if (why) skipBecause(ctx, why);
  return f;
}

/** Skips unless the real VFIO container (/dev/vfio/vfio, type1) is there. */
export function requireVfioContainer(ctx: Context): KernelFeatures {
  if (!isRoot()) skipBecause(ctx, 'not root (/dev/vfio needs root)');
  const f = kernelFeatures();
  if (!f.vfio.container) skipBecause(ctx, 'no VFIO container at /dev/vfio/vfio (CONFIG_VFIO_CONTAINER)');
  return f;
}

/**
 * The device under test bound to vfio-pci, and its group (lib/kernel/device-choice.ts vfioDeviceUnderTest:
 * the one IOMMUFD_CONFORMANCE_DEVICE names, else QEMU's edu). Skips only when there is no device at all; a
 * device that is there but cannot be used (not bound, no group) fails the suite, naming why.
 */
export function requireDeviceUnderTest(ctx: Context): BoundDevice {
  const device = vfioDeviceUnderTest();
  if ('why' in device) {
    if (device.none) skipBecause(ctx, device.why);
    throw new Error(device.why);
  }
  return device;
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
  pasid: 'IOMMU_HWPT_ALLOC_PASID',
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

/** Skips unless the kernel has hugetlbfs (CONFIG_HUGETLBFS): MAP_HUGETLB cannot work without it. */
export function requireHugetlb(ctx: Context): KernelFeatures {
  const f = kernelFeatures();
  if (!f.hugetlb) skipBecause(ctx, 'kernel lacks hugetlbfs (CONFIG_HUGETLBFS: no Hugepagesize in /proc/meminfo)');
  return f;
}

/**
 * mmap(MAP_HUGETLB ...) that the C selftest asserts succeeds
 * (ASSERT_NE(MAP_FAILED, buf)): on a kernel with hugetlbfs a failure is the
 * test's failure, with the huge page pool in the message. The test VM
 * reserves the pages the suites need (hugepages= in lib/vm/qemu.ts); on
 * another machine reserve them with sysctl vm.nr_hugepages.
 */
export function mmapHugetlb(length: number, flags: number, align = 0): Mapping {
  try {
    return lockstep().mmap(length, PROT_READ | PROT_WRITE, flags, -1, 0, align);
  } catch (e) {
    const pool = hugetlbPool();
    const need = pool.pageSize ? Math.ceil(length / pool.pageSize) : 0;
    throw new Error(
      `MAP_HUGETLB of ${length} bytes failed (${(e as Error).message}): ${need} huge pages of ${pool.pageSize / 1024} kB needed, ` +
        `HugePages_Free ${pool.free} of HugePages_Total ${pool.total} (the test VM reserves them with hugepages= in lib/vm/qemu.ts; elsewhere: sysctl vm.nr_hugepages)`,
    );
  }
}

const MOCK_DEV_FLAG_NAMES = { noDirty: 'MOCK_FLAGS_DEVICE_NO_DIRTY', hugeIova: 'MOCK_FLAGS_DEVICE_HUGE_IOVA', pasid: 'MOCK_FLAGS_DEVICE_PASID' } as const;

/** Skips unless IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS knows this device flag. */
export function requireMockDevFlag(ctx: Context, flag: keyof KernelFeatures['mockDevFlags']): KernelFeatures {
  const f = requireTestOp(ctx, 'MOCK_DOMAIN_FLAGS');
  if (!f.mockDevFlags[flag]) skipBecause(ctx, `kernel lacks ${MOCK_DEV_FLAG_NAMES[flag]} (IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS)`);
  return f;
}

/** Why an IOPF step cannot run on this kernel (KernelFeatures.mockIopf), or null when it can. */
export function mockIopfMissing(): string | null {
  const { works, errno } = kernelFeatures().mockIopf;
  if (works || errno !== ENODEV) return null;
  return `kernel lacks CONFIG_IOMMU_IOPF: a mock device cannot attach to an IOPF-capable HWPT (IOMMU_DEV_FEAT_IOPF fails with ${errnoName(errno)})`;
}
