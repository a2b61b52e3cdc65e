// KF-0006 (docs/findings/KF-0006.md): the steps that show whether type1 gives back the charge of a mapping
// whose last byte is IOVA 2^64 - 1. The feature probe (features.ts type1UnmapEndWrapLeaks, on the kernel
// alone) and KF-0006's own test (suites/vm/viommu/findings.test.ts, in lockstep) take them through this one
// function, so what the probe asks is what the test shows.
import { vmPinAndLckKiBOf } from '../sys/proc-status.ts';
import * as U from '../uapi/index.ts';
import type { VfioContainer, VfioGroup } from './vfio.ts';

/** What can fork a child that issues one ioctl: the kernel's Sys, or the lockstep session (which tells the model). */
export interface ForkIoctlSys {
  forkIoctl(fd: number, request: number, arg: Uint8Array, keepAlive: boolean): { pid: number; ret: number } | number;
}

/** The last page of the IOVA space: a mapping there ends at 2^64, where 6.12's `iova + size` wraps to 0. */
export const TYPE1_TOP_PAGE_IOVA = (1n << 64n) - 4096n;

export type Type1EndWrapSeen =
  /** fork itself failed (-errno): nothing was mapped. */
  | { step: 'fork'; errno: number }
  /** The child's MAP_DMA of the top page was refused (the IOMMU's aperture stops short of 2^64: VT-d). */
  | { step: 'map'; pid: number; errno: number }
  /** Mapped by the child; this process unmapped its range and took the group out. Charges in pages. */
  | { step: 'unset'; pid: number; charged: number; unmap: { errno: number; size: bigint }; unset: number; left: number };

/**
 * On a type1v2 `container` that holds `group`, with one page of `page` (shared anonymous, so the child maps the
 * same memory): a forked child, kept alive, maps that page at the top of the IOVA space (its mm takes the
 * charge: `dma->mm = current->mm`); this process unmaps the range (6.12's UNMAP_DMA finds nothing there: its
 * walk's `iova + size` wraps too) and takes the group out of the container, which removes every mapping
 * whatever its range (vfio_iommu_unmap_unpin_all -> vfio_remove_dma); the child's VmLck before and after says
 * whether the page was given back. The child stays alive for the caller to inspect: the caller releases
 * `pid` (Sys.forkRelease), whatever the step.
 */
export function type1EndWrapSteps(sys: ForkIoctlSys, container: Pick<VfioContainer, 'fd' | 'unmapDma'>, group: Pick<VfioGroup, 'unsetContainer'>, page: { address: bigint }): Type1EndWrapSeen {
  const size = 4096n;
  const rw = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
  const arg = U.vfio_iommu_type1_dma_map.encode({ argsz: U.vfio_iommu_type1_dma_map.sizeof, flags: rw, vaddr: page.address, iova: TYPE1_TOP_PAGE_IOVA, size });
  const child = sys.forkIoctl(container.fd, U.VFIO_IOMMU_MAP_DMA, arg, true);
  if (typeof child === 'number') return { step: 'fork', errno: -child };
  if (child.ret !== 0) return { step: 'map', pid: child.pid, errno: -child.ret };
  const charged = vmPinAndLckKiBOf(child.pid).lck / 4;
  const unmap = container.unmapDma({ iova: TYPE1_TOP_PAGE_IOVA, size });
  const unset = group.unsetContainer().errno;
  const left = vmPinAndLckKiBOf(child.pid).lck / 4;
  return { step: 'unset', pid: child.pid, charged, unmap: { errno: unmap.errno, size: unmap.size }, unset, left };
}
