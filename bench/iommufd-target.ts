// The benchmark target where /dev/iommu exists: IOMMU_IOAS_IOVA_RANGES on a
// fresh IOAS, a read-only ioctl that really enters iommufd (object lookup,
// the reserved-range walk, the copy of the range out, the response copy).
// The first call reports one range; every later call stores it.
import { IommuFd } from '../lib/kernel/index.ts';
import * as U from '../lib/uapi/index.ts';
import type { IoctlBenchTarget } from './ioctl.ts';

export function iommufdIovaRangesTarget(): IoctlBenchTarget | null {
  const probe = IommuFd.open();
  if (!probe.iommufd) return null;
  probe.iommufd.close();
  let iommufd: IommuFd | null = null;
  const arg = new Uint8Array(U.iommu_ioas_iova_ranges.sizeof);
  return {
    label: '/dev/iommu IOMMU_IOAS_IOVA_RANGES',
    open() {
      iommufd = IommuFd.open().iommufd!;
      const { errno, ioasId } = iommufd.ioasAlloc();
      if (errno !== 0) throw new Error(`IOMMU_IOAS_ALLOC failed: errno ${errno}`);
      arg.set(U.iommu_ioas_iova_ranges.encode({ ioas_id: ioasId, num_iovas: 4 }));
      return iommufd.fd;
    },
    close() {
      iommufd?.close();
    },
    request: U.IOMMU_IOAS_IOVA_RANGES,
    arg,
    scratch: { offset: U.iommu_ioas_iova_ranges.offsetOf('allowed_iovas'), bytes: 4 * U.iommu_iova_range.sizeof },
  };
}
