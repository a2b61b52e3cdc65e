// The benchmark target where /dev/iommu exists: IOMMU_IOAS_IOVA_RANGES on a
// fresh IOAS, a read-only ioctl that really enters iommufd (object lookup,
// the reserved-range walk, the response copy). num_iovas is 0, so it ends in
// EMSGSIZE after all that work: no user pointer in the struct, which the C
// loop (another process, another address space) could not share.
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
    label: '/dev/iommu IOMMU_IOAS_IOVA_RANGES (num_iovas 0)',
    open() {
      iommufd = IommuFd.open().iommufd!;
      const { errno, ioasId } = iommufd.ioasAlloc();
      if (errno !== 0) throw new Error(`IOMMU_IOAS_ALLOC failed: errno ${errno}`);
      arg.set(U.iommu_ioas_iova_ranges.encode({ ioas_id: ioasId, num_iovas: 0 }));
      return iommufd.fd;
    },
    close() {
      iommufd?.close();
    },
    request: U.IOMMU_IOAS_IOVA_RANGES,
    arg,
  };
}
