// The VFIO container ioctls answered by an iommufd fd (vfio_compat.c), with
// the method names and results of the VfioContainer client
// (lib/kernel/vfio.ts). They work on the context's compat IOAS
// (ictx->vfio_ioas), which IOMMU_VFIO_IOAS SET or a VFIO group's
// SET_CONTAINER provides (IommufdModel.vfioIoas / vfioGroupAttached); with
// none, everything that needs it fails with ENODEV. No SET_IOMMU is needed.
import * as U from '../uapi/index.ts';
import { EINVAL, ENODEV, ENOTTY } from './errno.ts';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from './io-pagetable.ts';
import type { IommufdModel, IoasObject, U64 } from './iommufd.ts';
import { domainsPgsizeBitmap } from './type1-platform.ts';

export type CompatInfo = { errno: number } & U.Type1InfoFields & { iovaPgsizesUnknown?: bigint };

const u64 = (v: U64 | undefined): bigint => BigInt.asUintN(64, BigInt(v ?? 0));

export class VfioCompatModel {
  readonly kind = 'iommufd-compat';
  constructor(readonly ctx: IommufdModel) {}

  #ioas(): IoasObject | null {
    return this.ctx.compatIoas();
  }

  getApiVersion(): { errno: number; version: number } {
    return { errno: 0, version: U.VFIO_API_VERSION };
  }

  /** vfio_compat.c:iommufd_vfio_check_extension: the value is the ioctl's return. */
  checkExtension(extension: number): { errno: number; value: number } {
    switch (extension) {
      case U.VFIO_TYPE1_IOMMU:
      case U.VFIO_TYPE1v2_IOMMU:
      case U.VFIO_UNMAP_ALL:
        return { errno: 0, value: 1 }; // !no_iommu_mode
      case U.VFIO_NOIOMMU_IOMMU:
        return { errno: 0, value: 0 }; // IS_ENABLED(CONFIG_VFIO_NOIOMMU) is 0 in this config
      case U.VFIO_DMA_CC_IOMMU: {
        // iommufd_vfio_cc_iommu: 1 unless a paging HWPT on the compat IOAS does not enforce coherency
        const ioas = this.#ioas();
        if (!ioas) return { errno: ENODEV, value: 0 };
        return { errno: 0, value: ioas.hwpts.every((h) => h.enforceCacheCoherency) ? 1 : 0 };
      }
      default:
        return { errno: 0, value: 0 };
    }
  }

  /** vfio_compat.c:iommufd_vfio_set_iommu: TYPE1 disables huge pages (so areas can be split); TYPE1v2 changes nothing. */
  setIommu(type: number): { errno: number } {
    if (type !== U.VFIO_TYPE1_IOMMU && type !== U.VFIO_TYPE1v2_IOMMU) return { errno: EINVAL };
    const ioas = this.#ioas();
    if (!ioas) return { errno: ENODEV };
    if (type === U.VFIO_TYPE1_IOMMU) return { errno: ioas.iopt.disableLarge() };
    return { errno: 0 };
  }

  /**
   * vfio_compat.c:iommufd_get_pagesizes: the domains' page sizes together (domainsPgsizeBitmap, the bits no
   * domain's facts tell written as 0 and returned apart), at least the IOAS's alignment. Comparing with the
   * alignment on the known bits alone answers the same: they hold the 4K bit below any unknown one.
   */
  #pagesizes(ioas: IoasObject): { bitmap: bigint; unknown: bigint } {
    const { bitmap, unknown } = domainsPgsizeBitmap(ioas.iopt.domains);
    return bitmap > ioas.iopt.iovaAlignment ? { bitmap, unknown } : { bitmap: ioas.iopt.iovaAlignment, unknown: 0n };
  }

  /** The bits of the iova_pgsizes GET_INFO writes that the model cannot tell (written as 0). */
  iovaPgsizesUnknown(): bigint {
    const ioas = this.#ioas();
    return ioas ? this.#pagesizes(ioas).unknown : 0n;
  }

  /**
   * vfio_compat.c:iommufd_vfio_iommu_get_info. Capabilities (DMA_AVAIL, then
   * IOVA_RANGE) are written only as far as argsz has room; argsz is always
   * set to the full size, cap_offset only when everything fit.
   */
  getInfo(args: { argsz?: number; bufferSize?: number } = {}): CompatInfo {
    const bufferSize = args.bufferSize ?? 4096;
    const argsz = args.argsz ?? bufferSize;
    const bytes = U.vfio_iommu_type1_info.encode({ argsz }, { length: Math.max(bufferSize, U.vfio_iommu_type1_info.sizeof) });
    const errno = this.getInfoInto(bytes);
    const unknown = errno === 0 ? this.iovaPgsizesUnknown() : 0n;
    return { errno, ...U.readType1Info(bytes, argsz), ...(unknown !== 0n ? { iovaPgsizesUnknown: unknown } : {}) };
  }

  /**
   * GET_INFO on a raw user buffer (argsz read from it): writes what the
   * kernel writes and leaves the rest. Writes past the buffer (an argsz
   * larger than it) go nowhere here.
   */
  getInfoInto(bytes: Uint8Array): number {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const put32 = (off: number, v: number) => {
      if (off + 4 <= bytes.length) dv.setUint32(off, v >>> 0, true);
    };
    const put64 = (off: number, v: bigint) => {
      if (off + 8 <= bytes.length) dv.setBigUint64(off, v, true);
    };
    const userArgsz = bytes.length >= 4 ? dv.getUint32(0, true) : 0;
    if (userArgsz < 16) return EINVAL;
    const minsz = Math.min(userArgsz, 24);
    const ioas = this.#ioas();
    if (!ioas) return ENODEV;
    const pgsizes = this.#pagesizes(ioas).bitmap;

    let total = 24;
    let lastCap = -1;
    // iommufd_fill_cap_dma_avail: 12 bytes, padded to 16
    {
      const avail = userArgsz > total ? userArgsz - total : 0;
      if (avail >= 12) {
        put32(total, U.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL | (1 << 16));
        put32(total + 4, 0);
        put32(total + 8, 0xffff_ffff);
      }
      lastCap = total;
      total += 16;
    }
    // iommufd_fill_cap_iova: one range per hole of the reserved ranges
    {
      const ranges = ioas.iopt.usableRanges();
      const avail = userArgsz > total ? userArgsz - total : 0;
      ranges.forEach((r, i) => {
        if (avail >= 16 + 16 * (i + 1)) {
          put64(total + 16 + 16 * i, r.start);
          put64(total + 24 + 16 * i, r.last);
        }
      });
      if (avail >= 16 + 16 * ranges.length) {
        put32(total, U.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE | (1 << 16));
        put32(total + 4, 0);
        put32(total + 8, ranges.length);
        put32(total + 12, 0);
      }
      if (userArgsz >= total) put32(lastCap + 4, total);
      total += 16 + 16 * ranges.length;
    }
    // copy_to_user(arg, &info, minsz) with argsz = total and cap_offset only if all fit
    const info = new Uint8Array(24);
    const idv = new DataView(info.buffer);
    idv.setUint32(0, total, true);
    idv.setUint32(4, U.VFIO_IOMMU_INFO_PGSIZES | U.VFIO_IOMMU_INFO_CAPS, true);
    idv.setBigUint64(8, pgsizes, true);
    idv.setUint32(16, userArgsz >= total ? 24 : 0, true);
    bytes.set(info.subarray(0, Math.min(minsz, bytes.length)));
    return 0;
  }

  /** vfio_compat.c:iommufd_vfio_map_dma: a FIXED map with the context's accounting; flags 0 maps with no access. */
  mapDma(args: { flags: number; vaddr: U64; iova: U64; size: U64; argsz?: number; tail?: Uint8Array }): { errno: number } {
    // Only minsz (32) bytes are copied in: a tail after the struct only lengthens the default argsz.
    const argsz = (args.argsz ?? 32 + (args.tail?.length ?? 0)) >>> 0;
    const flags = args.flags >>> 0;
    if (argsz < 32 || flags & ~(U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE)) return { errno: EINVAL };
    let prot = IOMMU_CACHE;
    if (flags & U.VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
    if (flags & U.VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
    const ioas = this.#ioas();
    if (!ioas) return { errno: ENODEV };
    return { errno: this.ctx.mapUserPages(ioas.iopt, u64(args.vaddr), u64(args.size), prot, u64(args.iova)).errno };
  }

  /**
   * vfio_compat.c:iommufd_vfio_unmap_dma. With huge pages disabled (TYPE1)
   * the range's ends are cut first so exactly the range goes. `size` is
   * written back with the bytes unmapped, also when the unmap itself failed,
   * but not when the flags, the cut or ALL's arguments were rejected.
   */
  unmapDma(args: { flags?: number; iova: U64; size: U64; argsz?: number; tail?: Uint8Array }): { errno: number; size: bigint } {
    const argsz = (args.argsz ?? 24) >>> 0;
    const flags = (args.flags ?? 0) >>> 0;
    const iova = u64(args.iova);
    const size = u64(args.size);
    if (argsz < 24 || flags & ~U.VFIO_DMA_UNMAP_FLAG_ALL) return { errno: EINVAL, size };
    const ioas = this.#ioas();
    if (!ioas) return { errno: ENODEV, size };
    let r: { errno: number; unmapped: bigint };
    if (flags & U.VFIO_DMA_UNMAP_FLAG_ALL) {
      if (iova !== 0n || size !== 0n) return { errno: EINVAL, size };
      r = ioas.iopt.unmapAll();
    } else {
      if (ioas.iopt.disableLargePages) {
        // "Create cuts at the start and last of the requested range. If the start IOVA is 0 then it doesn't need to be cut."
        const cuts = [BigInt.asUintN(64, iova + size - 1n)];
        if (iova) cuts.push(iova - 1n);
        const rc = ioas.iopt.cut(cuts);
        if (rc) return { errno: rc, size };
      }
      r = ioas.iopt.unmapIova(iova, size);
    }
    return { errno: r.errno, size: r.unmapped };
  }

  /**
   * A request by number whose argument is a value, not a user buffer (VFIO_IOMMU_ENABLE/DISABLE,
   * undefined numbers below the iommufd range): vfio_compat.c:iommufd_vfio_ioctl dispatches six
   * requests and answers everything else with -ENOIOCTLCMD, which the VFS turns into ENOTTY.
   * Not named `ioctl`: lockstep would pair such a method with the kernel client's DeviceFile.ioctl,
   * raw user buffers included (the selftests' GET_INFO into a raw buffer), which this does not take.
   */
  valueIoctl(request: number, arg = 0): { errno: number; ret: number } {
    switch (request) {
      case U.VFIO_GET_API_VERSION:
        return { errno: 0, ret: this.getApiVersion().version };
      case U.VFIO_CHECK_EXTENSION: {
        const r = this.checkExtension(arg);
        return { errno: r.errno, ret: r.value };
      }
      case U.VFIO_SET_IOMMU:
        return { errno: this.setIommu(arg).errno, ret: 0 };
      case U.VFIO_IOMMU_GET_INFO:
      case U.VFIO_IOMMU_MAP_DMA:
      case U.VFIO_IOMMU_UNMAP_DMA:
        throw new Error(`request 0x${request.toString(16)} takes a user buffer: use its typed method`);
      default:
        return { errno: ENOTTY, ret: 0 };
    }
  }

  /** VFIO_IOMMU_DIRTY_PAGES is not implemented by the compat layer: -ENOIOCTLCMD → ENOTTY. */
  dirtyPages(_args: { flags: number; argsz?: number; tail?: Uint8Array }): { errno: number } {
    return { errno: ENOTTY };
  }
}
