// Guards for suites that need a kernel feature: each skips, with the missing
// feature named, when the running kernel (probed, never guessed from its
// version) does not have it.
import type { Context } from 'mocha';
import { isRoot, kernelFeatures, type KernelFeatures } from '../../lib/kernel/index.ts';
import { skipBecause } from './skip.ts';

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
