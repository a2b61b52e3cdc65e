// drivers/vfio/container.c (vfio_fops_unl_ioctl) and vfio_iommu_type1.c's
// ioctl at the ABI, for a /dev/vfio/vfio fd: the container's own three
// requests take a value; everything else goes to the driver SET_IOMMU opened
// (EINVAL with none), which copies each struct's first minsz bytes in.
import * as U from '../../uapi/index.ts';
import { EFAULT } from '../errno.ts';
import type { Type1ContainerModel } from '../type1.ts';
import { PGSIZE_BITS_UNKNOWN } from '../type1-platform.ts';
import { ModelCannotAnswer, type IoctlArgument } from '../uaccess.ts';

function value(arg: IoctlArgument): number {
  if (arg.buffer) throw new ModelCannotAnswer('a buffer where the request takes a value');
  return arg.value > 0xffff_ffffn ? -1 : Number(arg.value);
}

/**
 * VFIO_IOMMU_GET_INFO on a container model, type1's or iommufd's compat: copy_from_user of the 16 bytes up to
 * iova_pgsizes, then the model's answer written into the argument, with the bits of iova_pgsizes (offset 8,
 * written whenever the call succeeds) the model cannot tell left to lockstep (IoctlArgument.leaveUnknown).
 */
export function getInfoIoctl(c: { getInfoInto(bytes: Uint8Array): number; iovaPgsizesUnknown(): bigint }, arg: IoctlArgument): number {
  if (!arg.read(0, 16)) return -EFAULT;
  if (!arg.buffer) throw new ModelCannotAnswer('VFIO_IOMMU_GET_INFO by address');
  const errno = c.getInfoInto(arg.buffer);
  const unknown = errno === 0 ? c.iovaPgsizesUnknown() : 0n;
  if (unknown !== 0n) arg.leaveUnknown(8, unknown, PGSIZE_BITS_UNKNOWN);
  return -errno || 0;
}

/** The bytes the caller passed after minsz (the type1 driver copies what it needs from there). */
function tail(arg: IoctlArgument, minsz: number): Uint8Array | undefined {
  return arg.buffer && arg.buffer.length > minsz ? arg.buffer.slice(minsz) : undefined;
}

export function vfioContainerIoctl(c: Type1ContainerModel, request: number, arg: IoctlArgument): number {
  switch (request) {
    case U.VFIO_GET_API_VERSION:
    case U.VFIO_CHECK_EXTENSION:
    case U.VFIO_SET_IOMMU: {
      const r = c.ioctl(request, value(arg));
      return r.errno ? -r.errno : r.ret;
    }
  }
  if (!c.driverSet) return -c.ioctl(request, 0).errno;
  switch (request) {
    case U.VFIO_IOMMU_GET_INFO:
      return getInfoIoctl(c, arg);
    case U.VFIO_IOMMU_MAP_DMA: {
      const b = arg.read(0, U.vfio_iommu_type1_dma_map.sizeof);
      if (!b) return -EFAULT;
      const m = U.vfio_iommu_type1_dma_map.decode(b);
      return -c.mapDma({ argsz: m.argsz, flags: m.flags, vaddr: m.vaddr, iova: m.iova, size: m.size }).errno || 0;
    }
    case U.VFIO_IOMMU_UNMAP_DMA: {
      const layout = U.vfio_iommu_type1_dma_unmap;
      const b = arg.read(0, layout.sizeof)?.slice();
      if (!b) return -EFAULT;
      const u = layout.decode(b);
      const r = c.unmapDma({ argsz: u.argsz, flags: u.flags, iova: u.iova, size: u.size, tail: tail(arg, layout.sizeof) });
      // copy_to_user(arg, &unmap, minsz) with the size unmapped (the semantic result keeps the input size where the kernel writes nothing)
      layout.write(b, 'size', r.size);
      if (!arg.write(0, b)) return -EFAULT;
      return -r.errno || 0;
    }
    case U.VFIO_IOMMU_DIRTY_PAGES: {
      const b = arg.read(0, 8);
      if (!b) return -EFAULT;
      const d = U.vfio_iommu_type1_dirty_bitmap.decode(b);
      return -c.dirtyPages({ argsz: d.argsz, flags: d.flags, tail: tail(arg, 8) }).errno || 0;
    }
    default:
      return -c.ioctl(request, 0).errno;
  }
}
