// Typed clients for VFIO: the container ioctls (on /dev/vfio/vfio for real
// type1, or on a /dev/iommu fd for iommufd's compat: the same calls), groups
// and devices. Each method returns `{ errno, ...outputs }`.
import { O_CLOEXEC, O_RDWR, coreSys, type SysCore } from '../sys/index.ts';
import * as U from '../uapi/index.ts';
import { callStruct, DeviceFile, openDevice, type Errno } from './ioctl-call.ts';
import type { U64 } from './iommufd.ts';

export type Type1Info = Errno & U.Type1InfoFields;

/** The VFIO container interface; `kind` says which kernel code answers. */
export class VfioContainer extends DeviceFile {
  static readonly PATH = '/dev/vfio/vfio';

  constructor(path: string, fd: number, sys: SysCore, readonly kind: 'type1' | 'iommufd-compat') {
    super(path, fd, sys);
  }

  /** Opens /dev/vfio/vfio: with CONFIG_VFIO_CONTAINER it is the real VFIO container (type1). */
  static open(sys: SysCore = coreSys(), path = VfioContainer.PATH): { errno: number; container: VfioContainer | null } {
    const { errno, fd } = openDevice(path, O_RDWR | O_CLOEXEC, sys);
    return { errno, container: errno === 0 ? new VfioContainer(path, fd, sys, 'type1') : null };
  }

  /** The VFIO container ioctls on an open /dev/iommu fd (iommufd's vfio_compat.c). */
  static compatOn(iommufd: DeviceFile): VfioContainer {
    return new VfioContainer(iommufd.path, iommufd.fd, iommufd.sys, 'iommufd-compat');
  }

  getApiVersion(): Errno & { version: number } {
    const r = this.ioctl(U.VFIO_GET_API_VERSION, 0);
    return { errno: r.errno, version: r.ret };
  }

  checkExtension(extension: number): Errno & { value: number } {
    const r = this.ioctl(U.VFIO_CHECK_EXTENSION, extension);
    return { errno: r.errno, value: r.ret };
  }

  setIommu(type: number): Errno {
    return { errno: this.ioctl(U.VFIO_SET_IOMMU, type).errno };
  }

  /** VFIO_IOMMU_GET_INFO with a buffer of `bufferSize` bytes (default 4 KiB) and the given argsz (default: the buffer size). */
  getInfo(args: { argsz?: number; bufferSize?: number } = {}): Type1Info {
    const bufferSize = args.bufferSize ?? 4096;
    const argsz = args.argsz ?? bufferSize;
    const bytes = U.vfio_iommu_type1_info.encode({ argsz }, { length: Math.max(bufferSize, U.vfio_iommu_type1_info.sizeof) });
    const r = this.ioctl(U.VFIO_IOMMU_GET_INFO, bytes, { leadingSize: true });
    return { errno: r.errno, ...U.readType1Info(bytes, argsz) };
  }

  /** VFIO_IOMMU_MAP_DMA; `tail` is written after the struct (a long user struct: argsz defaults to include it). */
  mapDma(args: { flags: number; vaddr: U64; iova: U64; size: U64; argsz?: number; tail?: Uint8Array }): Errno {
    const r = callStruct(
      this.sys,
      this.fd,
      U.VFIO_IOMMU_MAP_DMA,
      U.vfio_iommu_type1_dma_map,
      { ...(args.argsz !== undefined ? { argsz: args.argsz } : {}), flags: args.flags, vaddr: args.vaddr, iova: args.iova, size: args.size },
      args.tail ? { tail: args.tail } : undefined,
      // type1 and compat copy in minsz and write back (UNMAP's size) only inside it.
      U.vfio_iommu_type1_dma_map.sizeof,
    );
    return { errno: r.errno };
  }

  /** VFIO_IOMMU_UNMAP_DMA; `size` is what the kernel wrote back (type1 writes it only on success). */
  unmapDma(args: { flags?: number; iova: U64; size: U64; argsz?: number; tail?: Uint8Array }): Errno & { size: bigint } {
    const r = callStruct(
      this.sys,
      this.fd,
      U.VFIO_IOMMU_UNMAP_DMA,
      U.vfio_iommu_type1_dma_unmap,
      { ...(args.argsz !== undefined ? { argsz: args.argsz } : {}), flags: args.flags ?? 0, iova: args.iova, size: args.size },
      args.tail ? { tail: args.tail } : undefined,
      // type1 and compat copy in minsz and write back (UNMAP's size) only inside it.
      U.vfio_iommu_type1_dma_unmap.sizeof,
    );
    return { errno: r.errno, size: r.out.size };
  }

  dirtyPages(args: { flags: number; argsz?: number; tail?: Uint8Array }): Errno {
    const r = callStruct(
      this.sys,
      this.fd,
      U.VFIO_IOMMU_DIRTY_PAGES,
      U.vfio_iommu_type1_dirty_bitmap,
      { ...(args.argsz !== undefined ? { argsz: args.argsz } : {}), flags: args.flags },
      args.tail ? { tail: args.tail } : undefined,
      // type1 and compat copy in minsz and write back (UNMAP's size) only inside it.
      U.vfio_iommu_type1_dirty_bitmap.sizeof,
    );
    return { errno: r.errno };
  }
}

export class VfioGroup extends DeviceFile {
  static open(groupId: number | string, sys: SysCore = coreSys()): { errno: number; group: VfioGroup | null } {
    const path = `/dev/vfio/${groupId}`;
    const { errno, fd } = openDevice(path, O_RDWR | O_CLOEXEC, sys);
    return { errno, group: errno === 0 ? new VfioGroup(path, fd, sys) : null };
  }

  getStatus(): Errno & { flags: number; viable: boolean; containerSet: boolean } {
    const r = callStruct(this.sys, this.fd, U.VFIO_GROUP_GET_STATUS, U.vfio_group_status, {});
    return {
      errno: r.errno,
      flags: r.out.flags,
      viable: (r.out.flags & U.VFIO_GROUP_FLAGS_VIABLE) !== 0,
      containerSet: (r.out.flags & U.VFIO_GROUP_FLAGS_CONTAINER_SET) !== 0,
    };
  }

  /** Attaches the group to a container: a /dev/vfio/vfio fd, or a /dev/iommu fd (iommufd compat). */
  setContainer(containerFd: number): Errno {
    const fdBytes = new Uint8Array(new Int32Array([containerFd]).buffer);
    return { errno: this.ioctl(U.VFIO_GROUP_SET_CONTAINER, fdBytes).errno };
  }

  unsetContainer(): Errno {
    return { errno: this.ioctl(U.VFIO_GROUP_UNSET_CONTAINER, 0).errno };
  }

  /** Returns the device fd for a device name such as "0000:00:03.0". */
  getDeviceFd(name: string): Errno & { deviceFd: number } {
    const bytes = new TextEncoder().encode(`${name}\0`);
    const r = this.ioctl(U.VFIO_GROUP_GET_DEVICE_FD, bytes);
    return { errno: r.errno, deviceFd: r.errno === 0 ? r.ret : -1 };
  }
}

/** A VFIO device fd (from a group, or a /dev/vfio/devices/vfioN cdev). */
export class VfioDevice extends DeviceFile {
  static openCdev(path: string, sys: SysCore = coreSys()): { errno: number; device: VfioDevice | null } {
    const { errno, fd } = openDevice(path, O_RDWR | O_CLOEXEC, sys);
    return { errno, device: errno === 0 ? new VfioDevice(path, fd, sys) : null };
  }

  getInfo(): Errno & { flags: number; numRegions: number; numIrqs: number } {
    const r = callStruct(this.sys, this.fd, U.VFIO_DEVICE_GET_INFO, U.vfio_device_info, {});
    return { errno: r.errno, flags: r.out.flags, numRegions: r.out.num_regions, numIrqs: r.out.num_irqs };
  }

  /** `tokenUuidPtr`: token_uuid_ptr, a 16-byte UUID's address, read with VFIO_DEVICE_BIND_FLAG_TOKEN (7.x). */
  bindIommufd(iommufd: number, flags = 0, tokenUuidPtr: bigint = 0n): Errno & { devId: number } {
    const r = callStruct(this.sys, this.fd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { flags, iommufd, token_uuid_ptr: tokenUuidPtr });
    return { errno: r.errno, devId: r.out.out_devid };
  }

  /** `pasid` is read with VFIO_DEVICE_ATTACH_PASID in `flags` (7.x); attachPasidPt sets both. */
  attachPt(ptId: number, flags = 0, pasid = 0): Errno & { ptId: number } {
    const r = callStruct(this.sys, this.fd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { flags, pt_id: ptId, pasid });
    return { errno: r.errno, ptId: r.out.pt_id };
  }

  /** Attaches (or replaces) one PASID of the device to `ptId`. */
  attachPasidPt(pasid: number, ptId: number): Errno & { ptId: number } {
    return this.attachPt(ptId, U.VFIO_DEVICE_ATTACH_PASID, pasid);
  }

  /** `pasid` is read with VFIO_DEVICE_DETACH_PASID in `flags` (7.x); detachPasidPt sets both. */
  detachPt(flags = 0, pasid = 0): Errno {
    return { errno: callStruct(this.sys, this.fd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt, { flags, pasid }).errno };
  }

  detachPasidPt(pasid: number): Errno {
    return this.detachPt(U.VFIO_DEVICE_DETACH_PASID, pasid);
  }

  /**
   * VFIO_DEVICE_FEATURE: `flags` holds the feature index and GET / SET / PROBE; `data` the feature's
   * struct. Returns the ioctl's value (DMA_BUF GET: a dma-buf fd).
   */
  feature(flags: number, data: Uint8Array = new Uint8Array(0)): Errno & { ret: number } {
    const head = U.vfio_device_feature.encode({}, { length: U.vfio_device_feature.sizeof + data.byteLength, tail: data });
    return this.ioctl(U.VFIO_DEVICE_FEATURE, head, { leadingSize: true });
  }

  /**
   * VFIO_DEVICE_FEATURE_DMA_BUF (7.x): a dma-buf fd for slices of a region (`ranges`, each an offset and
   * length within it), for IOMMU_IOAS_MAP_FILE. `probe`: only ask whether the device offers it.
   */
  getDmaBuf(args: { regionIndex: number; openFlags: number; ranges: { offset: bigint | number; length: bigint | number }[]; flags?: number; probe?: boolean }): Errno & { dmabufFd: number } {
    const data = U.vfio_device_feature_dma_buf.encode({
      region_index: args.regionIndex,
      open_flags: args.openFlags,
      flags: args.flags ?? 0,
      nr_ranges: args.ranges.length,
      dma_ranges: args.ranges,
    });
    const r = this.feature(U.VFIO_DEVICE_FEATURE_DMA_BUF | U.VFIO_DEVICE_FEATURE_GET | (args.probe ? U.VFIO_DEVICE_FEATURE_PROBE : 0), data);
    return { errno: r.errno, dmabufFd: r.errno === 0 && !args.probe ? r.ret : -1 };
  }
}
