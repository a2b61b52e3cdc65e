// vfio_compat.c at the ABI: IOMMU_VFIO_IOAS, and the VFIO container ioctls
// that an iommufd fd answers (iommufd_vfio_ioctl, reached for every number
// outside iommufd's own range).
import * as U from '../../uapi/index.ts';
import { EFAULT, ENOTTY } from '../errno.ts';
import type { IommufdModel } from '../iommufd.ts';
import { getInfoIoctl } from '../vfio/container.ts';
import { ModelCannotAnswer, type IoctlArgument } from '../uaccess.ts';
import { field, iommufdUcmdRespond, type Ucmd } from './ucmd.ts';

const IOMMU_VFIO_IOAS_GET = 0;

/** vfio_compat.c:iommufd_vfio_ioas: only GET copies the struct back. */
export function iommufdVfioIoas(ucmd: Ucmd): number {
  const op = field(ucmd, 'op');
  const r = ucmd.ctx.vfioIoas({ op, ioasId: field(ucmd, 'ioas_id'), reserved: field(ucmd, '__reserved') });
  if (r.errno) return -r.errno;
  if (op !== IOMMU_VFIO_IOAS_GET || field(ucmd, '__reserved')) return 0;
  ucmd.layout.write(ucmd.cmd, 'ioas_id' as never, r.ioasId as never);
  return iommufdUcmdRespond(ucmd);
}

/** The struct's first `minsz` bytes (copy_from_user(&s, arg, minsz)), or null: EFAULT. */
function copyIn(arg: IoctlArgument, minsz: number): Uint8Array | null {
  const b = arg.read(0, minsz);
  return b ? b.slice() : null;
}

/** The argument as an unsigned long, for the requests that take a value. */
function value(arg: IoctlArgument): bigint {
  if (arg.buffer) throw new ModelCannotAnswer('a buffer where the request takes a value');
  return arg.value;
}

/** vfio_compat.c:iommufd_vfio_ioctl; -ENOIOCTLCMD reaches the caller as ENOTTY. */
export function iommufdVfioIoctl(ctx: IommufdModel, request: number, arg: IoctlArgument): number {
  const compat = ctx.compat;
  switch (request) {
    case U.VFIO_GET_API_VERSION:
      return U.VFIO_API_VERSION;
    case U.VFIO_SET_IOMMU: {
      const v = value(arg);
      return -compat.setIommu(v > 0xffff_ffffn ? -1 : Number(v)).errno || 0;
    }
    case U.VFIO_CHECK_EXTENSION: {
      const v = value(arg);
      const r = compat.checkExtension(v > 0xffff_ffffn ? -1 : Number(v));
      return r.errno ? -r.errno : r.value;
    }
    case U.VFIO_IOMMU_GET_INFO:
      // copy_from_user(&info, arg, minsz = 16); the rest goes straight to user memory.
      return getInfoIoctl(compat, arg);
    case U.VFIO_IOMMU_MAP_DMA: {
      const b = copyIn(arg, U.vfio_iommu_type1_dma_map.sizeof);
      if (!b) return -EFAULT;
      const m = U.vfio_iommu_type1_dma_map.decode(b);
      return -compat.mapDma({ argsz: m.argsz, flags: m.flags, vaddr: m.vaddr, iova: m.iova, size: m.size }).errno || 0;
    }
    case U.VFIO_IOMMU_UNMAP_DMA: {
      const layout = U.vfio_iommu_type1_dma_unmap;
      const b = copyIn(arg, layout.sizeof);
      if (!b) return -EFAULT;
      const u = layout.decode(b);
      const r = compat.unmapDma({ argsz: u.argsz, flags: u.flags, iova: u.iova, size: u.size });
      // unmap.size = unmapped; copy_to_user(arg, &unmap, minsz) (the semantic result holds the input size where the kernel returns before)
      layout.write(b, 'size', r.size);
      if (!arg.write(0, b)) return -EFAULT;
      return -r.errno || 0;
    }
    default:
      return -ENOTTY;
  }
}


