// IommufdModel: one open /dev/iommu (struct iommufd_ctx) as an executable
// specification. Every method has the name, argument object and result shape
// of the kernel client (lib/kernel/iommufd.ts IommuFd) and returns what that
// client would return from a Linux 6.12 kernel with CONFIG_IOMMUFD_TEST,
// including the output fields the kernel leaves as the caller's input on
// failure (the client decodes the struct after every ioctl).
//
// Checks run in the kernel's order; comments name the kernel function each
// block follows. The generic dispatcher's size checks (main.c:
// iommufd_fops_ioctl) are not reachable through typed calls and are left out.
import { IommufdObject, ObjectTable } from './objects.ts';
import {
  EBADF,
  EBADE,
  EBADFD,
  EBUSY,
  EFAULT,
  EINVAL,
  EIO,
  EMSGSIZE,
  ENODEV,
  ENOENT,
  ENOMEM,
  EOPNOTSUPP,
  EOVERFLOW,
  EPERM,
} from './errno.ts';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, IoPageTable, type AccessLike, type Area } from './io-pagetable.ts';
import {
  HardwareDomain,
  MAX_CHUNK,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IO_PAGE_SIZE,
  MOCK_IOMMUPT_DEFAULT,
  MOCK_IOMMUPT_HUGE,
  MOCK_PASID_WIDTH,
  MockDevice,
  MockDomain,
  MockNestedDomain,
  type HardwareDomainSpec,
} from './mock.ts';
import { BASELINE_BEHAVIOUR, type KernelBehaviour } from './kernel-behaviour.ts';
import { ACCOUNT_MM, ACCOUNT_NONE, ACCOUNT_USER, chargePinned, IoPages, ULONG_MAX, U64_MAX, type AccountMode, type IndexRange, unchargePinned } from './pages.ts';
import { DmaBuf, testDmabufLength } from './dma-buf.ts';
import { ModelProcess, PAGE_SIZE, type ShmemFile } from './process.ts';
import { DIRTY_BITMAP_ZERO_LENGTH_PAST_BUFFER, ModelCannotAnswer } from './uaccess.ts';
import { VfioCompatModel } from './vfio-compat.ts';
// vIOMMU (7.x): the objects of viommu.c and eventq.c, beside their kernel files
import { VeventqObject, veventqDestroy, veventqPoll, veventqRead } from './iommufd/eventq.ts';
// Fault queues: what a page fault delivers, and what the fault fd reads, takes and polls
import { faultAutoResponse, faultIopfHandler, faultPoll, faultRead, faultWrite, mockPageRequest, PAGE_FAULT_UNDER_FAULT_INJECTION, WRITE_WITHOUT_OP, type FaultQueue, type IopfGroup } from './iommufd/fault.ts';
import {
  deviceRemoveVdev,
  HwQueueObject,
  hwQueueDestroy,
  iommufdMmap,
  iommufdMunmap,
  vdeviceDestroy,
  VdeviceObject,
  viommuCacheInvalidate,
  viommuDestroy,
  viommuGetVdevId,
  ViommuObject,
  type MmapRegion,
  type ViommuContext,
} from './iommufd/viommu.ts';

export type U64 = bigint | number;

/**
 * What an fd given to IOMMU_IOAS_MAP_FILE or IOMMU_TEST_OP_DMABUF_REVOKE
 * is: a memfd, a dma-buf, another file, or null for no open file.
 */
export type MapFileTarget = { kind: 'memfd'; file: ShmemFile } | { kind: 'dmabuf'; dmabuf: DmaBuf } | { kind: 'other' } | null;
export interface Errno {
  errno: number;
}
export interface IovaRange {
  start: bigint;
  last: bigint;
}

const u64 = (v: U64 | undefined): bigint => BigInt.asUintN(64, BigInt(v ?? 0));
const u32 = (v: number | undefined): number => (v ?? 0) >>> 0;

// include/uapi/linux/iommufd.h
const IOMMU_IOAS_MAP_FIXED_IOVA = 1;
const IOMMU_IOAS_MAP_WRITEABLE = 2;
const IOMMU_IOAS_MAP_READABLE = 4;
const IOMMU_OPTION_RLIMIT_MODE = 0;
const IOMMU_OPTION_HUGE_PAGES = 1;
const IOMMU_OPTION_OP_SET = 0;
const IOMMU_OPTION_OP_GET = 1;
const IOMMU_VFIO_IOAS_GET = 0;
const IOMMU_VFIO_IOAS_SET = 1;
const IOMMU_VFIO_IOAS_CLEAR = 2;
const IOMMU_HWPT_ALLOC_NEST_PARENT = 1;
const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 2;
const IOMMU_HWPT_FAULT_ID_VALID = 4;
/** 7.x (KernelBehaviour.pasid) */
const IOMMU_HWPT_ALLOC_PASID = 8;
/** include/linux/iommu.h: the RID, as opposed to a PASID */
const IOMMU_NO_PASID = 0;
/** iommufd_test.h IOMMU_TEST_PASID_RESERVED: "Reserved for special pasid replace test" */
const IOMMU_TEST_PASID_RESERVED = 1024;
const IOMMU_HWPT_DATA_NONE = 0;
const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;
const IOMMU_HW_CAP_DIRTY_TRACKING = 1n;
const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1n << 3n;
const IOMMU_HW_INFO_TYPE_NONE = 0;
// iommufd_test.h
const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
const IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;
const IOMMU_HWPT_DATA_SELFTEST = 0xdead;
const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1;
const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3;
const MOCK_FLAGS_ACCESS_WRITE = 1;
const MOCK_FLAGS_ACCESS_SYZ = 1 << 16;
const MOCK_ACCESS_RW_WRITE = 1;
const MOCK_ACCESS_RW_SLOW_PATH = 4;
const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1;
/** hw_pagetable.c IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX (a Debian 6.12.117 addition) */
const IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX = 1 << 19;
/** selftest.c: "Prevent syzkaller from triggering a WARN_ON in kvzalloc()" */
const ACCESS_MAX_LENGTH = 16n * 1024n * 1024n;

// ------------------------------------------------------------------ objects

export class IoasObject extends IommufdObject {
  readonly type = 'ioas' as const;
  readonly iopt = new IoPageTable();
  /** ioas->hwpt_list, in creation order (auto-domain search order). */
  readonly hwpts: HwptPagingObject[] = [];
}

export class HwptPagingObject extends IommufdObject {
  readonly type = 'hwpt_paging' as const;
  autoDomain = false;
  /** hwpt->pasid_compat: allocated with IOMMU_HWPT_ALLOC_PASID (7.x) */
  pasidCompat = false;
  enforceCacheCoherency = false;
  fault: FaultObject | null = null;
  constructor(
    readonly ioas: IoasObject,
    readonly domain: MockDomain | HardwareDomain,
    readonly nestParent: boolean,
  ) {
    super();
  }
}

export class HwptNestedObject extends IommufdObject {
  readonly type = 'hwpt_nested' as const;
  fault: FaultObject | null = null;
  /** hwpt->pasid_compat: allocated with IOMMU_HWPT_ALLOC_PASID (7.x) */
  pasidCompat = false;
  constructor(
    readonly parent: HwptPagingObject,
    readonly domain: MockNestedDomain,
  ) {
    super();
  }
}

type Hwpt = HwptPagingObject | HwptNestedObject;

/** struct iommufd_device; each device here is alone in its iommu_group, so the group's hwpt is the device's. */
export class DeviceObject extends IommufdObject {
  readonly type = 'device' as const;
  /** igroup->hwpt */
  hwpt: Hwpt | null = null;
  /** igroup->pasid_attach without IOMMU_NO_PASID (that one is `hwpt`): the HWPT attached at each PASID (7.x). */
  readonly pasids = new Map<number, Hwpt>();
  /** selftest.c struct mock_dev pasid_1024_fake_error: the next set_dev_pasid of PASID 1024 fails (ENOMEM). */
  pasid1024FakeError = false;
  /** idev->vdev (7.x) */
  vdev: VdeviceObject | null = null;
  constructor(
    readonly mock: MockDevice | null,
    readonly hardware: HardwareDomainSpec | null,
  ) {
    super();
  }
  get enforceCacheCoherency(): boolean {
    return this.hardware?.enforceCacheCoherency ?? false;
  }
}

/** IOMMUFD_OBJ_SELFTEST of TYPE_IDEV: the "stdev" that owns a mock device. */
export class SelftestObject extends IommufdObject {
  readonly type = 'selftest' as const;
  /** Set once the device is bound (the object's ID is taken before the device exists). */
  idev!: DeviceObject;
}

interface AccessItem {
  id: number;
  iova: bigint;
  length: bigint;
  /** The per-area pins iopt_area_add_access made, undone by iopt_area_remove_access. */
  segments: { area: Area; range: IndexRange }[];
}

/** A selftest access (struct selftest_access + struct iommufd_access), reached through its fd. */
export class AccessObject extends IommufdObject implements AccessLike {
  readonly type = 'access' as const;
  ioas: IoasObject | null = null;
  readonly items: AccessItem[] = [];
  nextItemId = 0;
  readonly iovaAlignment: bigint;
  constructor(
    readonly fd: number,
    readonly needsPinPages: boolean,
  ) {
    super();
    this.iovaAlignment = needsPinPages ? PAGE_SIZE : 1n;
  }

  /** selftest.c:iommufd_test_access_unmap: drop every item touching [iova, iova+length-1]. */
  notifyUnmap(iova: bigint, length: bigint): void {
    const last = iova + length - 1n;
    for (const item of [...this.items]) {
      if (iova > item.iova + item.length - 1n || last < item.iova) continue;
      this.items.splice(this.items.indexOf(item), 1);
      unpinItem(item);
    }
  }
}

function unpinItem(item: AccessItem): void {
  for (const s of item.segments) {
    s.area.pages.release([s.range]);
    s.area.numAccesses--;
  }
}

/** struct iommufd_fault: its queue is lib/model/iommufd/fault.ts's. */
export class FaultObject extends IommufdObject implements FaultQueue {
  readonly type = 'fault' as const;
  /** fault->common.deliver: groups not read yet */
  readonly deliver: IopfGroup[] = [];
  /** fault->response: groups read and not answered, by cookie */
  readonly response = new Map<number, IopfGroup>();
  constructor(readonly fd: number) {
    super();
  }
}

// ------------------------------------------------------------------ the context

export class IommufdModel {
  readonly objects = new ObjectTable();
  /** ictx->account_mode: a /dev/iommu open starts in USER mode (main.c:iommufd_fops_open). */
  accountMode: AccountMode = ACCOUNT_USER;
  /** ictx->vfio_ioas: the IOAS the VFIO compat ioctls use. */
  #vfioIoas: IoasObject | null = null;
  #compat: VfioCompatModel | null = null;
  /** Access and fault fds handed out by this model (numbers are the model's own). */
  readonly #files = new Map<number, AccessObject | FaultObject | VeventqObject>();
  /** vIOMMU (7.x): ictx->mt_mmap, and the live mappings of its regions (each holds the file, as an fd does). */
  readonly #mmaps: MmapRegion[] = [];
  readonly #mapped = new Set<{ region: MmapRegion }>();
  #viommuContext: ViommuContext | null = null;
  #nextFd: number;
  #closed = false;
  #released = false;
  /**
   * Set by lockstep (session.ts, withFaultInjection) while this model follows
   * a kernel call in which one fault site failed by injection and that still
   * succeeded, with the kernel's result. Most such sites are absorbed without
   * a trace (xarray retries its GFP_NOWAIT node allocation with GFP_KERNEL),
   * but one changes what the call does, and the kernel's result says whether
   * it was hit: see #autoGetDomain. The call's result is compared as usual.
   */
  absorbedFault: { kernel: unknown } | null = null;

  /**
   * @param process the user process whose memory, credentials and counters this fd uses
   * @param firstFd the first fd number handed out for access and fault fds
   * @param behaviour where the running kernel differs from 6.12 (lib/model/kernel-behaviour.ts)
   */
  /** `current`: the process issuing the ioctl (the fd's opener, or a forked child: asProcess). */
  #current: ModelProcess;

  constructor(
    process: ModelProcess = new ModelProcess(),
    firstFd = 1000,
    readonly behaviour: Readonly<KernelBehaviour> = BASELINE_BEHAVIOUR,
  ) {
    this.#current = process;
    this.#nextFd = firstFd;
  }

  /** The calling process (`current`): its memory, credentials and counters. */
  get process(): ModelProcess {
    return this.#current;
  }

  /** Runs `call` with another process as `current` (an ioctl a forked child issues on this fd). */
  asProcess<T>(process: ModelProcess, call: () => T): T {
    const saved = this.#current;
    this.#current = process;
    try {
      return call();
    } finally {
      this.#current = saved;
    }
  }

  /** The VFIO container ioctls on this fd (vfio_compat.c). */
  get compat(): VfioCompatModel {
    return (this.#compat ??= new VfioCompatModel(this));
  }

  get closed(): boolean {
    return this.#closed;
  }

  // ---------------------------------------------------------------- lookups

  getIoas(id: number): IoasObject | null {
    return this.objects.get<IoasObject>(u32(id), 'ioas');
  }

  /** vfio_compat.c:get_compat_ioas */
  compatIoas(): IoasObject | null {
    return this.#vfioIoas && this.#vfioIoas.users > 0 ? this.#vfioIoas : null;
  }

  // ---------------------------------------------------------------- object destruction

  /** iommufd_object_ops[type].destroy, after the object left the table. */
  #destroyObject(obj: IommufdObject): void {
    if (this.#vfioIoas === obj) this.#vfioIoas = null;
    if (obj instanceof IoasObject) {
      // ioas.c:iommufd_ioas_destroy → iopt_unmap_all, iopt_destroy_table
      obj.iopt.unmapAll();
      obj.iopt.removeReserved(null);
      obj.iopt.allowed.clear();
    } else if (obj instanceof HwptPagingObject) {
      this.#destroyHwptPaging(obj);
    } else if (obj instanceof HwptNestedObject) {
      // hw_pagetable.c:iommufd_hwpt_nested_destroy: a nested HWPT of a vIOMMU holds the vIOMMU, not the parent
      if (obj.domain.viommu) (obj.domain.viommu as ViommuObject).users--;
      else obj.parent.users--;
      if (obj.fault) obj.fault.users--;
    } else if (obj instanceof SelftestObject) {
      this.#destroySelftest(obj);
    } else if (obj instanceof AccessObject) {
      this.#accessChangeIoas(obj, null);
    } else if (obj instanceof ViommuObject) {
      viommuDestroy(this.viommuContext, obj);
    } else if (obj instanceof VdeviceObject) {
      vdeviceDestroy(obj);
    } else if (obj instanceof VeventqObject) {
      veventqDestroy(obj);
    } else if (obj instanceof HwQueueObject) {
      hwQueueDestroy(this.viommuContext, obj);
    }
  }

  /** hw_pagetable.c:iommufd_hwpt_paging_destroy */
  #destroyHwptPaging(hwpt: HwptPagingObject): void {
    const i = hwpt.ioas.hwpts.indexOf(hwpt);
    if (i >= 0) {
      hwpt.ioas.hwpts.splice(i, 1);
      hwpt.ioas.iopt.removeDomain(hwpt.domain);
      if (hwpt.domain instanceof MockDomain) hwpt.domain.iopt = null;
    }
    if (hwpt.fault) hwpt.fault.users--;
    hwpt.ioas.users--;
  }

  /** selftest.c:iommufd_selftest_destroy: detach, then unbind the mock device. */
  #destroySelftest(sobj: SelftestObject): void {
    // iommufd_selftest_destroy detaches IOMMU_NO_PASID only: a PASID still attached holds a device reference
    // and iommufd_device_unbind's iommufd_object_destroy_user then refuses (WARN). Not modelled.
    if (sobj.idev.pasids.size) throw new Error(`model: mock device ${sobj.idev.id} destroyed with PASIDs ${[...sobj.idev.pasids.keys()].join(', ')} attached`);
    this.#deviceDetach(sobj.idev);
    this.#deviceUnbind(sobj.idev);
  }

  /** iommufd_private.h:iommufd_hw_pagetable_put: an auto domain dies with its last device. */
  #hwptPut(hwpt: Hwpt): void {
    if (hwpt instanceof HwptPagingObject && hwpt.autoDomain) {
      if (this.objects.putAndTryRemove(hwpt)) this.#destroyObject(hwpt);
      return;
    }
    hwpt.users--;
  }

  /** device.c:iommufd_device_detach (iommufd_hw_pagetable_detach + put). */
  #deviceDetach(idev: DeviceObject): void {
    const hwpt = idev.hwpt;
    if (!hwpt) return;
    idev.hwpt = null;
    this.#autoResponseFaults(hwpt, idev, IOMMU_NO_PASID);
    if (hwpt instanceof HwptPagingObject) hwpt.ioas.iopt.removeReserved(idev);
    this.#hwptPut(hwpt);
    idev.users--;
  }

  /** device.c:iommufd_device_unbind → iommufd_object_destroy_user: drop the driver's reference, then remove. */
  #deviceUnbind(idev: DeviceObject): void {
    // iommufd_object_destroy_user waits for wait_cnt: iommufd_device_pre_destroy tombstones a vDEVICE (7.x)
    deviceRemoveVdev(this.viommuContext, idev);
    idev.users--;
    this.objects.erase(idev);
  }

  /**
   * main.c:iommufd_fops_release: destroy leaf objects (users == 1) in ID
   * order, repeatedly, until the table is empty.
   */
  #release(): void {
    this.#released = true;
    while (!this.objects.isEmpty) {
      let destroyed = 0;
      for (const obj of this.objects.objects()) {
        if (obj.users !== 1) continue;
        this.objects.erase(obj);
        this.#destroyObject(obj);
        destroyed++;
      }
      if (!destroyed) break;
    }
  }

  /**
   * Closes the /dev/iommu fd. Access and fault fds hold a reference on the
   * context (iommufd_ctx_get), so the release waits for the last of them.
   */
  close(): Errno {
    if (this.#closed) return { errno: 0 };
    this.#closed = true;
    if (this.#files.size === 0 && this.#mapped.size === 0) this.#release();
    return { errno: 0 };
  }

  /**
   * Closes an fd this model handed out: an access fd (selftest.c:
   * iommufd_test_staccess_release: unpin every item, then destroy the access)
   * or a fault fd (fault.c: iommufd_fault_fops_release drops its reference).
   */
  closeAccess(accessFd: number): Errno {
    const file = this.#files.get(accessFd);
    if (!file) return { errno: EBADF };
    this.#files.delete(accessFd);
    if (file instanceof AccessObject) {
      file.notifyUnmap(0n, U64_MAX);
      // iommufd_access_destroy → iommufd_object_destroy_user: drop the driver's reference, then remove
      file.users--;
      this.objects.erase(file);
      this.#destroyObject(file);
    } else {
      // fault.c / eventq.c: iommufd_eventq_fops_release drops the file's reference
      file.users--;
    }
    if (this.#closed && this.#files.size === 0 && this.#mapped.size === 0 && !this.#released) this.#release();
    return { errno: 0 };
  }

  // ---------------------------------------------------------------- IOMMU_DESTROY

  /** main.c:iommufd_destroy → iommufd_object_remove */
  destroy(id: number): Errno {
    const { errno, obj } = this.objects.remove(u32(id));
    if (errno) return { errno };
    this.#destroyObject(obj!);
    return { errno: 0 };
  }

  // ---------------------------------------------------------------- IOAS

  /** ioas.c:iommufd_ioas_alloc_ioctl */
  ioasAlloc(args: { flags?: number } = {}): Errno & { ioasId: number } {
    if (u32(args.flags)) return { errno: EOPNOTSUPP, ioasId: 0 };
    const ioas = new IoasObject();
    const rc = this.objects.reserve(ioas);
    if (rc) return { errno: rc, ioasId: 0 };
    this.objects.finalize(ioas);
    return { errno: 0, ioasId: ioas.id };
  }

  /** ioas.c:iommufd_ioas_iova_ranges: the holes of the reserved ranges, EMSGSIZE (after writing the count) when they do not fit. */
  ioasIovaRanges(args: { ioasId: number; capacity?: number; reserved?: number }): Errno & {
    numIovas: number;
    alignment: bigint;
    ranges: IovaRange[];
  } {
    const capacity = u32(args.capacity ?? 16);
    const failed = (errno: number) => ({ errno, numIovas: capacity, alignment: 0n, ranges: [] });
    if (args.reserved) return failed(EOPNOTSUPP);
    const ioas = this.getIoas(args.ioasId);
    if (!ioas) return failed(ENOENT);
    const all = ioas.iopt.usableRanges();
    return {
      errno: all.length > capacity ? EMSGSIZE : 0,
      numIovas: all.length,
      alignment: ioas.iopt.iovaAlignment,
      ranges: all.slice(0, capacity).map((r) => ({ start: r.start, last: r.last })),
    };
  }

  /** ioas.c:iommufd_ioas_allow_iovas + iommufd_ioas_load_iovas */
  ioasAllowIovas(args: { ioasId: number; ranges: { start: U64; last: U64 }[]; reserved?: number }): Errno {
    if (args.reserved) return { errno: EOPNOTSUPP };
    const ioas = this.getIoas(args.ioasId);
    if (!ioas) return { errno: ENOENT };
    const list: IovaRange[] = [];
    for (const r of args.ranges) {
      const start = u64(r.start);
      const last = u64(r.last);
      if (start >= last) return { errno: EINVAL };
      // An overlap with an earlier range of the same list; adjacent ranges are fine.
      if (list.some((o) => o.start <= last && start <= o.last)) return { errno: EINVAL };
      list.push({ start, last });
    }
    return { errno: ioas.iopt.setAllowed(list) };
  }

  /**
   * io_pagetable.c:iopt_map_user_pages: new IoPages for the user range
   * (accounted USER, or MM if the context says so, NONE with CAP_IPC_LOCK),
   * then iopt_map_pages. `iova` null allocates one.
   */
  mapUserPages(iopt: IoPageTable, uptr: bigint, length: bigint, iommuProt: number, iova: bigint | null): { errno: number; iova: bigint } {
    const pages = IoPages.alloc(this.process, uptr, length, (iommuProt & IOMMU_WRITE) !== 0, this.behaviour.userPagesOverflowFirst);
    if (typeof pages === 'number') return { errno: pages, iova: iova ?? 0n };
    if (this.accountMode === ACCOUNT_MM && pages.accountMode === ACCOUNT_USER) pages.accountMode = ACCOUNT_MM;
    const r = iopt.mapPages([{ pages, startByte: uptr - pages.uptr, length }], length, iova, iommuProt);
    if (r.errno === 0) pages.refs--;
    return r;
  }

  /** ioas.c:iommufd_ioas_map */
  ioasMap(args: { ioasId: number; flags: number; userVa: U64; length: U64; iova?: U64; reserved?: number }): Errno & { iova: bigint } {
    const flags = u32(args.flags);
    const iova = u64(args.iova);
    const length = u64(args.length);
    const fail = (errno: number) => ({ errno, iova });
    if (flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE) || args.reserved) return fail(EOPNOTSUPP);
    if (iova >= ULONG_MAX || length >= ULONG_MAX) return fail(EOVERFLOW);
    if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return fail(EINVAL);
    const ioas = this.getIoas(args.ioasId);
    if (!ioas) return fail(ENOENT);
    const r = this.mapUserPages(ioas.iopt, u64(args.userVa), length, convIommuProt(flags), flags & IOMMU_IOAS_MAP_FIXED_IOVA ? iova : null);
    return r.errno ? fail(r.errno) : { errno: 0, iova: r.iova };
  }

  // ---------------------------------------------------------------- IOMMU_IOAS_MAP_FILE (7.x)

  /**
   * ioas.c:iommufd_ioas_map_file: IOMMU_IOAS_MAP's checks (MAP_FILE has no
   * __reserved), then io_pagetable.c:iopt_map_file_pages: a zero length is
   * EINVAL and a range that wraps EOVERFLOW; a dma-buf fd maps the dma-buf
   * (pages.c:iopt_alloc_dmabuf_pages), any other file its pages
   * (iopt_alloc_file_pages; EBADF without a file), then iopt_map_common as
   * for user memory (ACCOUNT_USER raised to the context's ACCOUNT_MM).
   * `file`: what the fd is (null: no open file).
   */
  ioasMapFile(args: { ioasId: number; flags: number; file: MapFileTarget; start: U64; length: U64; iova?: U64 }): Errno & { iova: bigint } {
    const flags = u32(args.flags);
    const iova = u64(args.iova);
    const length = u64(args.length);
    const start = u64(args.start);
    const fail = (errno: number) => ({ errno, iova });
    if (flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) return fail(EOPNOTSUPP);
    if (iova >= ULONG_MAX || length >= ULONG_MAX) return fail(EOVERFLOW);
    if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return fail(EINVAL);
    const ioas = this.getIoas(args.ioasId);
    if (!ioas) return fail(ENOENT);
    // iopt_map_file_pages
    if (!length) return fail(EINVAL);
    if (start + length - 1n > ULONG_MAX) return fail(EOVERFLOW);
    const startByte = start % PAGE_SIZE;
    const iommuProt = convIommuProt(flags);
    const writable = (iommuProt & IOMMU_WRITE) !== 0;
    const file = args.file;
    if (!file) return fail(EBADF);
    const pages =
      file.kind === 'dmabuf'
        ? IoPages.allocDmabuf(this.process, file.dmabuf, startByte, start, length, writable)
        : IoPages.allocFile(this.process, file.kind === 'memfd' ? file.file : null, startByte, start, length, writable);
    if (typeof pages === 'number') return fail(pages);
    // io_pagetable.c:iopt_map_common
    if (this.accountMode === ACCOUNT_MM && pages.accountMode === ACCOUNT_USER) pages.accountMode = ACCOUNT_MM;
    const r = ioas.iopt.mapPages([{ pages, startByte, length }], length, flags & IOMMU_IOAS_MAP_FIXED_IOVA ? iova : null, iommuProt);
    // On failure iopt_put_pages drops the last reference (a dma-buf is detached); on success the area holds it.
    if (--pages.refs === 0) pages.released();
    return r.errno ? fail(r.errno) : { errno: 0, iova: r.iova };
  }

  /** selftest.c:iommufd_test_dmabuf_get: a new dma-buf of the page-aligned length; its fd is the caller's to install. */
  testDmabufGet(args: { length: number; openFlags?: number }): Errno & { dmabuf: DmaBuf | null } {
    const size = testDmabufLength(args.length);
    if (size === null) return { errno: EINVAL, dmabuf: null };
    return { errno: 0, dmabuf: new DmaBuf(this.process.memory, size) };
  }

  /**
   * selftest.c:iommufd_test_dmabuf_revoke: dma_buf_get of the fd (EBADF
   * without a file, EINVAL for a file that is no dma-buf), then the revoked
   * flag and the invalidation of every attachment (DmaBuf.setRevoked).
   */
  testDmabufRevoke(args: { file: MapFileTarget; revoked: number }): Errno {
    if (!args.file) return { errno: EBADF };
    if (args.file.kind !== 'dmabuf') return { errno: EINVAL };
    args.file.dmabuf.setRevoked(u32(args.revoked) !== 0);
    return { errno: 0 };
  }

  /** ioas.c:iommufd_ioas_copy */
  ioasCopy(args: { dstIoasId: number; srcIoasId: number; flags: number; length: U64; dstIova?: U64; srcIova: U64 }): Errno & { dstIova: bigint } {
    let flags = u32(args.flags);
    let srcIova = u64(args.srcIova);
    const dstIova = u64(args.dstIova);
    const length = u64(args.length);
    const fail = (errno: number) => ({ errno, dstIova });
    // selftest.c:iommufd_test_syz_conv_iova_id: the syzkaller flag turns src_iova into {nth area, offset}.
    if (flags & MOCK_FLAGS_ACCESS_SYZ) {
      flags &= ~MOCK_FLAGS_ACCESS_SYZ >>> 0;
      const src = this.getIoas(args.srcIoasId);
      if (src) srcIova = syzConvIova(src.iopt, srcIova);
    }
    if (flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) return fail(EOPNOTSUPP);
    if (length >= ULONG_MAX || srcIova >= ULONG_MAX || dstIova >= ULONG_MAX) return fail(EOVERFLOW);
    if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return fail(EINVAL);
    const src = this.getIoas(args.srcIoasId);
    if (!src) return fail(ENOENT);
    const got = src.iopt.getPages(srcIova, length);
    if (got.errno) return fail(got.errno);
    const dst = this.getIoas(args.dstIoasId);
    if (!dst) return fail(ENOENT);
    const r = dst.iopt.mapPages(got.slices, length, flags & IOMMU_IOAS_MAP_FIXED_IOVA ? dstIova : null, convIommuProt(flags));
    return r.errno ? fail(r.errno) : { errno: 0, dstIova: r.iova };
  }

  /** ioas.c:iommufd_ioas_unmap: ENOENT (without writing back) if nothing was unmapped, except for unmap-all. */
  ioasUnmap(args: { ioasId: number; iova: U64; length: U64 }): Errno & { length: bigint } {
    const iova = u64(args.iova);
    const length = u64(args.length);
    const fail = (errno: number) => ({ errno, length });
    const ioas = this.getIoas(args.ioasId);
    if (!ioas) return fail(ENOENT);
    if (iova === 0n && length === U64_MAX) {
      const r = ioas.iopt.unmapAll();
      return r.errno ? fail(r.errno) : { errno: 0, length: r.unmapped };
    }
    if (iova >= ULONG_MAX || length >= ULONG_MAX) return fail(EOVERFLOW);
    const r = ioas.iopt.unmapIova(iova, length);
    if (r.errno) return fail(r.errno);
    if (r.unmapped === 0n) return fail(ENOENT);
    return { errno: 0, length: r.unmapped };
  }

  // ---------------------------------------------------------------- options and compat

  /** main.c:iommufd_option; ioas.c:iommufd_option_rlimit_mode, iommufd_ioas_option. val64 is copied back only on success. */
  option(args: { optionId: number; op: number; objectId?: number; val64?: U64; reserved?: number }): Errno & { val64: bigint } {
    const val64 = u64(args.val64);
    const op = args.op;
    const fail = (errno: number) => ({ errno, val64 });
    if (args.reserved) return fail(EOPNOTSUPP);
    switch (u32(args.optionId)) {
      case IOMMU_OPTION_RLIMIT_MODE: {
        if (u32(args.objectId)) return fail(EOPNOTSUPP);
        if (op === IOMMU_OPTION_OP_GET) return { errno: 0, val64: this.accountMode === ACCOUNT_MM ? 1n : 0n };
        if (op === IOMMU_OPTION_OP_SET) {
          if (!this.process.credentials.sysResource) return fail(EPERM);
          if (!this.objects.isEmpty) return fail(EBUSY);
          if (val64 === 0n) this.accountMode = ACCOUNT_USER;
          else if (val64 === 1n) this.accountMode = ACCOUNT_MM;
          else return fail(EINVAL);
          return { errno: 0, val64 };
        }
        return fail(EOPNOTSUPP);
      }
      case IOMMU_OPTION_HUGE_PAGES: {
        const ioas = this.getIoas(u32(args.objectId));
        if (!ioas) return fail(ENOENT);
        if (op === IOMMU_OPTION_OP_GET) return { errno: 0, val64: ioas.iopt.disableLargePages ? 0n : 1n };
        if (op === IOMMU_OPTION_OP_SET) {
          if (val64 === 0n) {
            const rc = ioas.iopt.disableLarge();
            return rc ? fail(rc) : { errno: 0, val64 };
          }
          if (val64 === 1n) {
            ioas.iopt.enableLarge();
            return { errno: 0, val64 };
          }
          return fail(EINVAL);
        }
        return fail(EOPNOTSUPP);
      }
      default:
        return fail(EOPNOTSUPP);
    }
  }

  /** vfio_compat.c:iommufd_vfio_ioas. SET takes no reference: the IOAS stays destroyable. */
  vfioIoas(args: { op: number; ioasId?: number; reserved?: number }): Errno & { ioasId: number } {
    const ioasId = u32(args.ioasId);
    if (args.reserved) return { errno: EOPNOTSUPP, ioasId };
    switch (args.op) {
      case IOMMU_VFIO_IOAS_GET: {
        const ioas = this.compatIoas();
        return ioas ? { errno: 0, ioasId: ioas.id } : { errno: ENODEV, ioasId };
      }
      case IOMMU_VFIO_IOAS_SET: {
        const ioas = this.getIoas(ioasId);
        if (!ioas) return { errno: ENOENT, ioasId };
        this.#vfioIoas = ioas;
        return { errno: 0, ioasId };
      }
      case IOMMU_VFIO_IOAS_CLEAR:
        this.#vfioIoas = null;
        return { errno: 0, ioasId };
      default:
        return { errno: EOPNOTSUPP, ioasId };
    }
  }

  /**
   * vfio_compat.c:iommufd_vfio_compat_ioas_create, run when a VFIO group's
   * SET_CONTAINER names this fd: a fresh IOAS becomes the compat IOAS unless
   * a live one exists (then the reserved ID is released again).
   */
  vfioGroupAttached(): Errno & { ioasId: number } {
    const ioas = new IoasObject();
    const rc = this.objects.reserve(ioas);
    if (rc) return { errno: rc, ioasId: 0 };
    const current = this.compatIoas();
    if (current) {
      this.objects.abort(ioas);
      return { errno: 0, ioasId: current.id };
    }
    this.#vfioIoas = ioas;
    this.objects.finalize(ioas);
    return { errno: 0, ioasId: ioas.id };
  }

  /**
   * A real (non-mock) device bound to this context and attached to `ptId`
   * (an IOAS gets an automatic domain), as vfio's iommufd compat attach does
   * (iommufd_device_bind + iommufd_device_attach). The device's reserved
   * regions are reserved in the IOAS with the device as owner. iommufd_device_bind refuses a device
   * whose MSIs are not isolated (EPERM) unless iommufd's allow_unsafe_interrupts is set, before
   * vfio_iommufd_compat_attach_ioas looks for the compat IOAS (`ptId` null: none, ENODEV).
   */
  attachHardwareDevice(spec: HardwareDomainSpec, ptId: number | null, msi: { isolated: boolean; allowUnsafeInterrupts: boolean }): Errno & { devId: number; hwptId: number } {
    if (!msi.isolated && !msi.allowUnsafeInterrupts) return { errno: EPERM, devId: 0, hwptId: 0 };
    if (ptId === null) return { errno: ENODEV, devId: 0, hwptId: 0 };
    const idev = new DeviceObject(null, spec);
    const rc = this.objects.reserve(idev);
    if (rc) return { errno: rc, devId: 0, hwptId: 0 };
    this.objects.finalize(idev);
    idev.users++;
    const r = this.#changePt(idev, u32(ptId), 'attach');
    if (r.errno) {
      this.#deviceUnbind(idev);
      return { errno: r.errno, devId: 0, hwptId: 0 };
    }
    idev.users++;
    return { errno: 0, devId: idev.id, hwptId: r.ptId };
  }

  /** Detaches and unbinds a device made by attachHardwareDevice (the VFIO group left the container). */
  detachHardwareDevice(devId: number): Errno {
    const idev = this.objects.get<DeviceObject>(u32(devId), 'device');
    if (!idev || !idev.hardware) return { errno: ENOENT };
    this.#deviceDetach(idev);
    this.#deviceUnbind(idev);
    return { errno: 0 };
  }

  // ---------------------------------------------------------------- VFIO device cdev: a real device bound and attached by hand (issue 14, native iommufd)

  /**
   * device.c:iommufd_device_bind of a real device, as VFIO_DEVICE_BIND_IOMMUFD on its cdev makes it
   * (vfio/iommufd.c:vfio_iommufd_physical_bind): without isolated MSI (interrupt remapping) the bind
   * fails with EPERM unless iommufd's allow_unsafe_interrupts is set. The device is bound, not attached.
   */
  bindHardwareDevice(spec: HardwareDomainSpec, msi: { isolated: boolean; allowUnsafeInterrupts: boolean }): Errno & { devId: number } {
    if (!msi.isolated && !msi.allowUnsafeInterrupts) return { errno: EPERM, devId: 0 };
    const idev = new DeviceObject(null, spec);
    const rc = this.objects.reserve(idev);
    if (rc) return { errno: rc, devId: 0 };
    this.objects.finalize(idev);
    // "The calling driver is a user until iommufd_device_unbind()"
    idev.users++;
    return { errno: 0, devId: idev.id };
  }

  /**
   * vfio/iommufd.c:vfio_iommufd_physical_attach_ioas: iommufd_device_attach the first time,
   * iommufd_device_replace once attached (VFIO_DEVICE_ATTACH_IOMMUFD_PT). An IOAS gets an automatic
   * domain; the returned ptId is that HWPT's.
   */
  hardwareDeviceAttach(devId: number, ptId: number): Errno & { ptId: number } {
    const idev = this.objects.get<DeviceObject>(u32(devId), 'device');
    if (!idev || !idev.hardware) return { errno: ENOENT, ptId };
    const attached = idev.hwpt !== null;
    const r = this.#changePt(idev, u32(ptId), attached ? 'replace' : 'attach');
    if (r.errno) return { errno: r.errno, ptId };
    // iommufd_device_attach holds the device for the attachment (iommufd_device_detach drops it)
    if (!attached) idev.users++;
    return { errno: 0, ptId: r.ptId };
  }

  /** vfio/iommufd.c:vfio_iommufd_physical_detach_ioas: nothing to do when not attached. */
  hardwareDeviceDetach(devId: number): Errno {
    const idev = this.objects.get<DeviceObject>(u32(devId), 'device');
    if (!idev || !idev.hardware) return { errno: ENOENT };
    this.#deviceDetach(idev);
    return { errno: 0 };
  }

  /** vfio/iommufd.c:vfio_iommufd_physical_unbind: detach if attached, then iommufd_device_unbind. */
  unbindHardwareDevice(devId: number): Errno {
    return this.detachHardwareDevice(devId);
  }

  // ---------------------------------------------------------------- attach machinery (device.c, hw_pagetable.c)

  /** device.c:iommufd_hw_pagetable_attach */
  #hwptAttach(hwpt: Hwpt, idev: DeviceObject, pasid = IOMMU_NO_PASID): number {
    if (pasid !== IOMMU_NO_PASID) return this.#hwptAttachPasid(hwpt, idev, pasid);
    if (idev.hwpt !== null && idev.hwpt !== hwpt) return EINVAL;
    if (hwpt instanceof HwptPagingObject) {
      const rc = this.#enforceResvRegions(hwpt.ioas.iopt, idev);
      if (rc) return rc;
    }
    // iommufd_hwpt_attach_device: iommufd_hwpt_pasid_compat, then the driver
    const rc = this.#hwptPasidCompat(hwpt, idev, IOMMU_NO_PASID) || domainAttachErrno(hwpt, idev);
    if (rc) {
      if (hwpt instanceof HwptPagingObject) hwpt.ioas.iopt.removeReserved(idev);
      return rc;
    }
    mockAttachViommu(hwpt, idev);
    idev.hwpt = hwpt;
    hwpt.users++;
    return 0;
  }

  /** io_pagetable.c:iopt_table_enforce_dev_resv_regions */
  #enforceResvRegions(iopt: IoPageTable, idev: DeviceObject): number {
    for (const r of idev.hardware?.reservedRegions ?? []) {
      const rc = iopt.reserve(r.start, r.last, idev);
      if (rc) {
        iopt.removeReserved(idev);
        return rc;
      }
    }
    return 0;
  }

  /** device.c:iommufd_device_do_replace: returns the old hwpt for the caller to put, or null for "no change". */
  #hwptReplace(hwpt: Hwpt, idev: DeviceObject, pasid = IOMMU_NO_PASID): { errno: number; old: Hwpt | null } {
    if (pasid !== IOMMU_NO_PASID) return this.#hwptReplacePasid(hwpt, idev, pasid);
    const old = idev.hwpt;
    if (!old) return { errno: EINVAL, old: null };
    if (hwpt === old) return { errno: 0, old: null };
    const newPaging = hwpt instanceof HwptPagingObject ? hwpt : null;
    const oldPaging = old instanceof HwptPagingObject ? old : null;
    if (newPaging && (!oldPaging || newPaging.ioas !== oldPaging.ioas)) {
      const rc = this.#enforceResvRegions(newPaging.ioas.iopt, idev);
      if (rc) return { errno: rc, old: null };
    }
    // iommufd_hwpt_replace_device: iommufd_hwpt_pasid_compat, then the driver
    const rc = this.#hwptPasidCompat(hwpt, idev, IOMMU_NO_PASID) || domainAttachErrno(hwpt, idev);
    if (rc) {
      if (newPaging) newPaging.ioas.iopt.removeReserved(idev);
      return { errno: rc, old: null };
    }
    if (oldPaging && (!newPaging || newPaging.ioas !== oldPaging.ioas)) oldPaging.ioas.iopt.removeReserved(idev);
    mockAttachViommu(hwpt, idev);
    idev.hwpt = hwpt;
    hwpt.users++;
    this.#autoResponseFaults(old, idev, IOMMU_NO_PASID);
    return { errno: 0, old };
  }

  /**
   * hw_pagetable.c:iommufd_hwpt_paging_alloc. `immediate` attaches the device
   * before the domain joins the IOAS (the auto-domain attach path).
   */
  #hwptPagingAlloc(
    ioas: IoasObject,
    idev: DeviceObject,
    flags: number,
    immediate: boolean,
    userData: Uint8Array | null,
    pasid = IOMMU_NO_PASID,
  ): { errno: number; hwpt: HwptPagingObject | null } {
    // KernelBehaviour.hwptPagingFault: 7.x takes FAULT_ID_VALID here (the fault is looked up by hwptAlloc after).
    const validFlags =
      IOMMU_HWPT_ALLOC_NEST_PARENT |
      IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
      (this.behaviour.pasid ? IOMMU_HWPT_ALLOC_PASID : 0) |
      (this.behaviour.hwptPagingFault ? IOMMU_HWPT_FAULT_ID_VALID : 0);
    const dirtyCapable = idev.mock ? idev.mock.dirtyCapable : false;
    if (flags & ~validFlags) return { errno: EOPNOTSUPP, hwpt: null };
    if (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING && !dirtyCapable) return { errno: EOPNOTSUPP, hwpt: null };
    if (flags & IOMMU_HWPT_FAULT_ID_VALID && flags & IOMMU_HWPT_ALLOC_NEST_PARENT) return { errno: EOPNOTSUPP, hwpt: null };
    let domain: MockDomain | HardwareDomain;
    // The object (ID) and the IOAS reference are taken before domain_alloc_user
    // runs; when it fails both are undone, which leaves no trace.
    if (idev.mock) {
      // selftest.c:mock_domain_alloc_user (no parent); with the generic page table mock,
      // mock_domain_alloc_paging_flags, which reads struct iommu_hwpt_selftest's pagetable_type.
      let pagetableType = MOCK_IOMMUPT_DEFAULT;
      if (userData) {
        if (!this.behaviour.mockGenericPt) return { errno: EOPNOTSUPP, hwpt: null };
        const cfg = this.#selftestData(userData);
        if (cfg.errno) return { errno: cfg.errno, hwpt: null };
        pagetableType = cfg.pagetableType;
        if (pagetableType !== MOCK_IOMMUPT_DEFAULT && pagetableType !== MOCK_IOMMUPT_HUGE) return { errno: EOPNOTSUPP, hwpt: null };
      }
      domain = new MockDomain(idev.mock, (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0, this.behaviour.mockGenericPt ? { pagetableType } : null);
    } else {
      domain = new HardwareDomain(idev.hardware!);
    }
    const hwpt = new HwptPagingObject(ioas, domain, (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0);
    hwpt.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
    const rc0 = this.objects.reserve(hwpt);
    if (rc0) return { errno: rc0, hwpt: null };
    ioas.users++;
    if (idev.enforceCacheCoherency) hwpt.enforceCacheCoherency = true;
    if (immediate) {
      const rc = this.#hwptAttach(hwpt, idev, pasid);
      if (rc) return this.#abortHwpt(hwpt, rc);
    }
    if (domain instanceof MockDomain) domain.iopt = ioas.iopt;
    const rc = ioas.iopt.addDomain(domain);
    if (rc) {
      if (domain instanceof MockDomain) domain.iopt = null;
      if (immediate) {
        // iommufd_hw_pagetable_detach: the device leaves; the abort frees the hwpt with its reference.
        if (pasid !== IOMMU_NO_PASID) {
          idev.pasids.delete(pasid);
        } else {
          idev.hwpt = null;
          ioas.iopt.removeReserved(idev);
        }
      }
      return this.#abortHwpt(hwpt, rc);
    }
    ioas.hwpts.push(hwpt);
    return { errno: 0, hwpt };
  }

  /** iommufd_object_abort_and_destroy for a hwpt that never joined its IOAS. */
  #abortHwpt(hwpt: HwptPagingObject, errno: number): { errno: number; hwpt: null } {
    hwpt.ioas.users--;
    this.objects.abort(hwpt);
    return { errno, hwpt: null };
  }

  /** device.c:iommufd_device_auto_get_domain */
  #autoGetDomain(idev: DeviceObject, ioas: IoasObject, mode: 'attach' | 'replace', pasid = IOMMU_NO_PASID): { errno: number; ptId: number; destroy: Hwpt | null } {
    // Under fault injection (absorbedFault): iopt_table_enforce_dev_resv_regions
    // fails with -EINVAL at its iommufd_should_fail() point, which this loop
    // takes for "incompatible" and goes on to the next auto domain or a new
    // one. The call then succeeds on another domain than the one it would
    // have used: when the kernel reports another one (MOCK_DOMAIN's
    // out_hwpt_id, MOCK_DOMAIN_REPLACE's pt_id), the first attach that would
    // have been tried is the one that failed. Only one site fails per call.
    const kernel = this.absorbedFault?.kernel as { errno?: number; hwptId?: number; ptId?: number } | undefined;
    let injectedIncompatible = kernel?.errno === 0 ? (kernel.hwptId ?? kernel.ptId) : undefined;
    for (const hwpt of ioas.hwpts) {
      if (!hwpt.autoDomain || hwpt.users === 0) continue;
      if (injectedIncompatible !== undefined && injectedIncompatible !== hwpt.id) {
        injectedIncompatible = undefined;
        continue;
      }
      let errno: number;
      let destroy: Hwpt | null = null;
      if (mode === 'attach') errno = this.#hwptAttach(hwpt, idev, pasid);
      else ({ errno, old: destroy } = this.#hwptReplace(hwpt, idev, pasid));
      // "-EINVAL means the domain is incompatible with the device."
      if (errno === EINVAL) continue;
      if (errno) return { errno, ptId: 0, destroy: null };
      return { errno: 0, ptId: hwpt.id, destroy };
    }
    const r = this.#hwptPagingAlloc(ioas, idev, 0, mode === 'attach', null, pasid);
    if (r.errno) return { errno: r.errno, ptId: 0, destroy: null };
    const hwpt = r.hwpt!;
    let destroy: Hwpt | null = null;
    if (mode === 'replace') {
      const rr = this.#hwptReplace(hwpt, idev, pasid);
      if (rr.errno) {
        // iommufd_object_abort_and_destroy → iommufd_hwpt_paging_abort: the domain leaves the IOAS again.
        ioas.hwpts.splice(ioas.hwpts.indexOf(hwpt), 1);
        ioas.iopt.removeDomain(hwpt.domain);
        this.#abortHwpt(hwpt, rr.errno);
        return { errno: rr.errno, ptId: 0, destroy: null };
      }
      destroy = rr.old;
    }
    hwpt.autoDomain = true;
    this.objects.finalize(hwpt);
    return { errno: 0, ptId: hwpt.id, destroy };
  }

  /** device.c:iommufd_device_change_pt */
  #changePt(idev: DeviceObject, ptId: number, mode: 'attach' | 'replace', pasid = IOMMU_NO_PASID): { errno: number; ptId: number } {
    const pt = this.objects.get(ptId);
    if (!pt) return { errno: ENOENT, ptId };
    let destroy: Hwpt | null = null;
    let outId = ptId;
    if (pt instanceof HwptPagingObject || pt instanceof HwptNestedObject) {
      if (mode === 'attach') {
        const rc = this.#hwptAttach(pt, idev, pasid);
        if (rc) return { errno: rc, ptId };
      } else {
        const r = this.#hwptReplace(pt, idev, pasid);
        if (r.errno) return { errno: r.errno, ptId };
        destroy = r.old;
      }
    } else if (pt instanceof IoasObject) {
      const r = this.#autoGetDomain(idev, pt, mode, pasid);
      if (r.errno) return { errno: r.errno, ptId };
      destroy = r.destroy;
      outId = r.ptId;
    } else {
      return { errno: EINVAL, ptId };
    }
    if (destroy) this.#hwptPut(destroy);
    return { errno: 0, ptId: outId };
  }

  // ---------------------------------------------------------------- PASID (7.x: device.c's pasid paths, selftest.c's mock ops)

  /**
   * device.c:iommufd_hwpt_pasid_compat. The RID may take a HWPT without
   * IOMMU_HWPT_ALLOC_PASID only while no PASID is attached; a PASID takes
   * only a PASID-compatible HWPT, and only while the RID's HWPT is one too.
   */
  #hwptPasidCompat(hwpt: Hwpt, idev: DeviceObject, pasid: number): number {
    if (pasid === IOMMU_NO_PASID) return !hwpt.pasidCompat && idev.pasids.size > 0 ? EINVAL : 0;
    if (!hwpt.pasidCompat) return EINVAL;
    if (idev.hwpt && !idev.hwpt.pasidCompat) return EINVAL;
    return 0;
  }

  /**
   * iommu.c:__iommu_set_group_pasid for the device's one-device group: the
   * domain's set_dev_pasid (selftest.c:mock_domain_set_dev_pasid_nop, which
   * every mock domain, paging or nested, and the blocked domain use) runs
   * only on a device with PASIDs (max_pasids > 0); a device without them is
   * skipped and the call succeeds. The mock fails every second non-blocking
   * set of PASID 1024 with ENOMEM (IOMMU_TEST_PASID_RESERVED, to test the
   * core's rollback); a blocking one (detach) clears that.
   */
  #setDevPasid(idev: DeviceObject, pasid: number, blocked: boolean): number {
    if (!(idev.mock && idev.mock.flags & MOCK_FLAGS_DEVICE_PASID)) return 0;
    if (pasid !== IOMMU_TEST_PASID_RESERVED) return 0;
    if (blocked) {
      idev.pasid1024FakeError = false;
      return 0;
    }
    if (idev.pasid1024FakeError) {
      idev.pasid1024FakeError = false;
      return ENOMEM;
    }
    idev.pasid1024FakeError = true;
    return 0;
  }

  /**
   * device.c:iommufd_hw_pagetable_attach for a PASID: the device already in
   * this PASID's device_array is xa_insert's EBUSY (attach never overwrites),
   * then iommufd_hwpt_attach_device: the compat check, and
   * iommu.c:iommu_attach_device_pasid (a domain of another driver is
   * EINVAL; a PASID at or above a PASID-capable device's max_pasids, 2^20
   * for the mock, is EINVAL), then set_dev_pasid.
   */
  #hwptAttachPasid(hwpt: Hwpt, idev: DeviceObject, pasid: number): number {
    if (idev.pasids.has(pasid)) return EBUSY;
    let rc = this.#hwptPasidCompat(hwpt, idev, pasid);
    if (rc) return rc;
    if (!idev.mock || !(hwpt.domain instanceof MockDomain || hwpt.domain instanceof MockNestedDomain)) return EINVAL;
    if (idev.mock.flags & MOCK_FLAGS_DEVICE_PASID && pasid >= 1 << MOCK_PASID_WIDTH) return EINVAL;
    rc = this.#setDevPasid(idev, pasid, false);
    if (rc) return rc;
    idev.pasids.set(pasid, hwpt);
    hwpt.users++;
    return 0;
  }

  /**
   * device.c:iommufd_device_do_replace for a PASID: nothing attached there
   * is EINVAL, the same HWPT changes nothing; then
   * iommufd_hwpt_replace_device (compat check) and
   * iommu.c:iommu_replace_device_pasid (no max_pasids check; set_dev_pasid,
   * whose failure keeps the old domain).
   */
  #hwptReplacePasid(hwpt: Hwpt, idev: DeviceObject, pasid: number): { errno: number; old: Hwpt | null } {
    const old = idev.pasids.get(pasid);
    if (!old) return { errno: EINVAL, old: null };
    if (hwpt === old) return { errno: 0, old: null };
    let rc = this.#hwptPasidCompat(hwpt, idev, pasid);
    if (!rc && (!idev.mock || !(hwpt.domain instanceof MockDomain || hwpt.domain instanceof MockNestedDomain))) rc = EINVAL;
    if (!rc) rc = this.#setDevPasid(idev, pasid, false);
    if (rc) return { errno: rc, old: null };
    idev.pasids.set(pasid, hwpt);
    hwpt.users++;
    this.#autoResponseFaults(old, idev, pasid);
    return { errno: 0, old };
  }

  /** selftest.c:iommufd_test_get_selftest_obj */
  #selftestDevice(stdevId: number): { errno: number; idev: DeviceObject | null } {
    const sobj = this.objects.get<SelftestObject>(u32(stdevId), 'selftest');
    return sobj ? { errno: 0, idev: sobj.idev } : { errno: ENOENT, idev: null };
  }

  /** selftest.c:iommufd_test_pasid_attach → device.c:iommufd_device_attach(idev, pasid, &pt_id) */
  testPasidAttach(args: { stdevId: number; pasid: number; ptId: number }): Errno & { ptId: number } {
    const ptId = u32(args.ptId);
    const { errno, idev } = this.#selftestDevice(args.stdevId);
    if (errno) return { errno, ptId };
    const r = this.#changePt(idev!, ptId, 'attach', u32(args.pasid));
    if (r.errno) return { errno: r.errno, ptId };
    idev!.users++; // "Pairs with iommufd_device_detach()"
    return { errno: 0, ptId: r.ptId };
  }

  /** selftest.c:iommufd_test_pasid_replace → device.c:iommufd_device_replace(idev, pasid, &pt_id) */
  testPasidReplace(args: { stdevId: number; pasid: number; ptId: number }): Errno & { ptId: number } {
    const ptId = u32(args.ptId);
    const { errno, idev } = this.#selftestDevice(args.stdevId);
    if (errno) return { errno, ptId };
    const r = this.#changePt(idev!, ptId, 'replace', u32(args.pasid));
    return r.errno ? { errno: r.errno, ptId } : { errno: 0, ptId: r.ptId };
  }

  /**
   * selftest.c:iommufd_test_pasid_detach → device.c:iommufd_device_detach:
   * a PASID with nothing attached is no error (iommufd_hw_pagetable_detach
   * finds no attach and returns NULL). IOMMU_NO_PASID detaches the RID.
   */
  testPasidDetach(args: { stdevId: number; pasid: number }): Errno {
    const { errno, idev } = this.#selftestDevice(args.stdevId);
    if (errno) return { errno };
    const pasid = u32(args.pasid);
    if (pasid === IOMMU_NO_PASID) {
      this.#deviceDetach(idev!);
      return { errno: 0 };
    }
    const hwpt = idev!.pasids.get(pasid);
    if (!hwpt) return { errno: 0 };
    idev!.pasids.delete(pasid);
    // iommu_detach_device_pasid → iommu_remove_dev_pasid: the blocked domain's set_dev_pasid
    this.#setDevPasid(idev!, pasid, true);
    this.#autoResponseFaults(hwpt, idev!, pasid);
    this.#hwptPut(hwpt);
    idev!.users--;
    return { errno: 0 };
  }

  /**
   * selftest.c:iommufd_test_pasid_check_hwpt: the domain in the group's
   * pasid_array at `pasid` (iommu_attach_handle_get; IOMMU_NO_PASID holds
   * the RID's, iommufd attaching it with a handle) must be `hwptId`'s;
   * hwptId 0 asks that nothing is attached. iommufd_get_hwpt: an ID that is
   * no HWPT is EINVAL.
   */
  testPasidCheckHwpt(args: { stdevId: number; pasid: number; hwptId: number }): Errno {
    const { errno, idev } = this.#selftestDevice(args.stdevId);
    if (errno) return { errno };
    const pasid = u32(args.pasid);
    const attached = pasid === IOMMU_NO_PASID ? idev!.hwpt : (idev!.pasids.get(pasid) ?? null);
    const hwptId = u32(args.hwptId);
    if (!hwptId) return { errno: attached ? EINVAL : 0 };
    const obj = this.objects.get(hwptId);
    if (!obj) return { errno: ENOENT };
    if (!(obj instanceof HwptPagingObject || obj instanceof HwptNestedObject)) return { errno: EINVAL };
    return { errno: attached === obj ? 0 : EINVAL };
  }

  // ---------------------------------------------------------------- IOMMU_IOAS_CHANGE_PROCESS (7.x)

  /**
   * ioas.c:iommufd_ioas_change_process: every area of every IOAS must be a
   * file mapping (IOMMU_IOAS_MAP_FILE) or the call is EINVAL and nothing
   * changes (an area without pages, mid-unmap, would be EBUSY: a
   * single-threaded caller never sees one). Each iopt_pages charged to
   * another process (need_charge_update: ACCOUNT_MM when its mm is not the
   * caller's, ACCOUNT_USER when its mm or uid is not; never ACCOUNT_NONE) is
   * counted once; the caller is charged the sums per mode first
   * (charge_current: USER then MM, against the caller's RLIMIT_MEMLOCK,
   * undone on ENOMEM), then each such iopt_pages is un-charged from its old
   * process, and every iopt_pages, charged or not, gets the caller as its
   * source (change_mm), so later pins and unpins charge the caller.
   */
  ioasChangeProcess(args: { reserved?: number } = {}): Errno {
    if (u32(args.reserved)) return { errno: EOPNOTSUPP };
    const all: IoPages[] = [];
    for (const obj of this.objects.objects()) {
      if (!(obj instanceof IoasObject)) continue;
      for (const area of obj.iopt.areas) {
        if (area.pages.type !== 'file') return { errno: EINVAL };
        all.push(area.pages);
      }
    }
    const current = this.process;
    const moves = (pages: IoPages) => pages.accountMode !== ACCOUNT_NONE && pages.process !== current;
    const distinct = [...new Set(all)];
    const npinned: bigint[] = [0n, 0n, 0n];
    for (const pages of distinct) if (moves(pages)) npinned[pages.accountMode]! += pages.npinned;
    const charged: AccountMode[] = [];
    for (const mode of [ACCOUNT_NONE, ACCOUNT_USER, ACCOUNT_MM] as const) {
      if (!npinned[mode]) continue;
      const rc = chargePinned(current, mode, npinned[mode]!);
      if (rc) {
        for (const m of charged) unchargePinned(current, m, npinned[m]!);
        return { errno: rc };
      }
      charged.push(mode);
    }
    let errno = 0;
    for (const pages of distinct) {
      const rc = pages.changeProcess(current, moves(pages));
      if (rc) errno = rc;
    }
    return { errno };
  }

  // ---------------------------------------------------------------- HWPT and device info

  /** hw_pagetable.c:iommufd_hwpt_alloc */
  hwptAlloc(args: { flags?: number; devId: number; ptId: number; dataType?: number; data?: Uint8Array; faultId?: number; dataFault?: boolean }): Errno & { hwptId: number } {
    const flags = u32(args.flags);
    const dataType = u32(args.dataType ?? IOMMU_HWPT_DATA_NONE);
    const data = args.data && args.data.byteLength > 0 ? args.data : null;
    const dataLen = args.data?.byteLength ?? 0;
    const fail = (errno: number) => ({ errno, hwptId: 0 });
    if ((dataType === IOMMU_HWPT_DATA_NONE && dataLen) || (dataType !== IOMMU_HWPT_DATA_NONE && !dataLen)) return fail(EINVAL);
    const idev = this.objects.get<DeviceObject>(u32(args.devId), 'device');
    if (!idev) return fail(ENOENT);
    const pt = this.objects.get(u32(args.ptId));
    // "pt_obj lookup failure" is reported as EINVAL, not ENOENT.
    if (!pt) return fail(EINVAL);
    let hwpt: Hwpt;
    if (pt instanceof IoasObject) {
      const r = this.#hwptPagingAlloc(pt, idev, flags, false, data);
      if (r.errno) return fail(r.errno);
      hwpt = r.hwpt!;
    } else if (pt instanceof HwptPagingObject) {
      const r = this.#hwptNestedAlloc(pt, idev, flags, dataType, data, args.dataFault ?? false);
      if (r.errno) return fail(r.errno);
      hwpt = r.hwpt!;
    } else if (pt instanceof ViommuObject) {
      const r = this.#viommuAllocHwptNested(pt, idev, flags, dataType, data, args.dataFault ?? false);
      if (r.errno) return fail(r.errno);
      hwpt = r.hwpt!;
    } else {
      return fail(EINVAL);
    }
    if (flags & IOMMU_HWPT_FAULT_ID_VALID) {
      const fault = this.objects.get<FaultObject>(u32(args.faultId), 'fault');
      if (!fault) {
        this.#abortAndDestroy(hwpt);
        return fail(ENOENT);
      }
      hwpt.fault = fault;
      fault.users++;
    }
    this.objects.finalize(hwpt);
    return { errno: 0, hwptId: hwpt.id };
  }

  #abortAndDestroy(hwpt: Hwpt): void {
    this.#destroyObject(hwpt);
    this.objects.abort(hwpt);
  }

  /** hw_pagetable.c:iommufd_hwpt_nested_alloc + selftest.c:mock_domain_alloc_user (with a parent) */
  #hwptNestedAlloc(
    parent: HwptPagingObject,
    idev: DeviceObject,
    flags: number,
    dataType: number,
    data: Uint8Array | null,
    dataFault = false,
  ): { errno: number; hwpt: HwptNestedObject | null } {
    const fail = (errno: number) => ({ errno, hwpt: null });
    const pasidFlag = this.behaviour.pasid ? IOMMU_HWPT_ALLOC_PASID : 0;
    if (flags & ~(IOMMU_HWPT_FAULT_ID_VALID | pasidFlag) || !data || !idev.mock) return fail(EOPNOTSUPP);
    if (parent.autoDomain || !parent.nestParent || !(parent.domain instanceof MockDomain)) return fail(EINVAL);
    // The object is allocated (ID reserved, parent referenced) before the driver looks at the data.
    // selftest.c:mock_domain_alloc_nested gets flags without FAULT_ID_VALID: IOMMU_HWPT_ALLOC_PASID is all it takes.
    if (dataType !== IOMMU_HWPT_DATA_SELFTEST || flags & ~(IOMMU_HWPT_FAULT_ID_VALID | pasidFlag)) return fail(EOPNOTSUPP);
    const cfg = this.#selftestData(data);
    if (cfg.errno) return fail(cfg.errno);
    // ...then copy_struct_from_user from data_uptr, which faults on a bad pointer (the ABI layer knows).
    if (dataFault) return fail(EFAULT);
    const iotlb = cfg.iotlb;
    const hwpt = new HwptNestedObject(parent, new MockNestedDomain(parent.domain, iotlb));
    hwpt.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
    const rc = this.objects.reserve(hwpt);
    if (rc) return fail(rc);
    parent.users++;
    return { errno: 0, hwpt };
  }

  /**
   * hw_pagetable.c:iommufd_viommu_alloc_hwpt_nested + selftest.c:mock_viommu_alloc_domain_nested (7.x):
   * the nested HWPT holds the vIOMMU; its parent is the vIOMMU's HWPT.
   */
  #viommuAllocHwptNested(
    viommu: ViommuObject,
    idev: DeviceObject,
    flags: number,
    dataType: number,
    data: Uint8Array | null,
    dataFault: boolean,
  ): { errno: number; hwpt: HwptNestedObject | null } {
    const fail = (errno: number) => ({ errno, hwpt: null });
    // viommu->iommu_dev != __iommu_get_iommu_dev(idev->dev): the mock vIOMMU takes mock devices
    if (!idev.mock) return fail(EINVAL);
    if (flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)) return fail(EOPNOTSUPP);
    if (!data) return fail(EOPNOTSUPP);
    // __mock_domain_alloc_nested
    if (dataType !== IOMMU_HWPT_DATA_SELFTEST) return fail(EOPNOTSUPP);
    const cfg = this.#selftestData(data);
    if (cfg.errno) return fail(cfg.errno);
    if (dataFault) return fail(EFAULT);
    if (!(viommu.hwpt.domain instanceof MockDomain)) return fail(EINVAL);
    const hwpt = new HwptNestedObject(viommu.hwpt, new MockNestedDomain(viommu.hwpt.domain, cfg.iotlb, viommu));
    hwpt.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
    const rc = this.objects.reserve(hwpt);
    if (rc) return fail(rc);
    viommu.users++;
    return { errno: 0, hwpt };
  }

  /**
   * iommu_copy_struct_from_user(&user_cfg, user_data, IOMMU_HWPT_DATA_SELFTEST, iotlb):
   * from offsetofend(iotlb) up to sizeof(struct iommu_hwpt_selftest), which is
   * 4, or 8 since the generic page table mock added pagetable_type.
   */
  #selftestData(data: Uint8Array): { errno: number; iotlb: number; pagetableType: number } {
    const size = this.behaviour.mockGenericPt ? 8 : 4;
    if (data.byteLength < 4 || data.byteLength > size) return { errno: EINVAL, iotlb: 0, pagetableType: 0 };
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return { errno: 0, iotlb: dv.getUint32(0, true), pagetableType: data.byteLength >= 8 ? dv.getUint32(4, true) : MOCK_IOMMUPT_DEFAULT };
  }

  /** device.c:iommufd_get_hw_info */
  getHwInfo(args: { devId: number; dataLen?: number; flags?: number; data?: Uint8Array; inDataType?: number }): Errno & {
    dataLen: number;
    dataType: number;
    capabilities: bigint;
    maxPasidLog2: number;
    data: Uint8Array;
  } {
    // `data`: the caller's buffer (data_len is its length), written in place as the kernel writes user memory.
    const dataLen = u32(args.data?.byteLength ?? args.dataLen ?? 64);
    const data = args.data ?? new Uint8Array(dataLen);
    const fail = (errno: number) => ({ errno, dataLen, dataType: 0, capabilities: 0n, maxPasidLog2: 0, data });
    if (u32(args.flags)) return fail(EOPNOTSUPP);
    const idev = this.objects.get<DeviceObject>(u32(args.devId), 'device');
    if (!idev) return fail(ENOENT);
    if (!idev.mock) return fail(EOPNOTSUPP); // real drivers' hw_info is not modelled; never reached by the typed API
    // selftest.c:mock_domain_hw_info: only IOMMU_HW_INFO_TYPE_DEFAULT (0) or _SELFTEST as an input type.
    const inType = u32(args.inDataType);
    if (inType !== 0 && inType !== IOMMU_HW_INFO_TYPE_SELFTEST) return fail(EOPNOTSUPP);
    // selftest.c:mock_domain_hw_info: struct iommu_test_hw_info { flags = 0, test_reg = 0xdeadbeef }
    const info = new Uint8Array(8);
    new DataView(info.buffer).setUint32(4, IOMMU_HW_INFO_SELFTEST_REGVAL, true);
    // copy_to_user() of min(data_len, the driver's length), then clear_user() of the rest of the user's buffer.
    const copyLen = Math.min(dataLen, info.length);
    data.set(info.subarray(0, copyLen));
    data.fill(0, copyLen, dataLen);
    return {
      errno: 0,
      dataLen: info.length,
      dataType: IOMMU_HW_INFO_TYPE_SELFTEST,
      capabilities:
        (idev.mock.dirtyCapable ? IOMMU_HW_CAP_DIRTY_TRACKING : 0n) |
        // KernelBehaviour.hwInfoAtsNotSupported: mock_domain_capable never reports IOMMU_CAP_PCI_ATS_SUPPORTED.
        (this.behaviour.hwInfoAtsNotSupported ? IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED : 0n),
      // dev->iommu->max_pasids from the device's "pasid-num-bits" (KernelBehaviour.mockDevicePasid).
      maxPasidLog2: idev.mock.flags & MOCK_FLAGS_DEVICE_PASID ? MOCK_PASID_WIDTH : 0,
      data,
    };
  }

  /** hw_pagetable.c:iommufd_hwpt_set_dirty_tracking → io_pagetable.c:iopt_set_dirty_tracking */
  hwptSetDirtyTracking(args: { hwptId: number; enable: boolean; flags?: number }): Errno {
    const flags = u32(args.flags ?? (args.enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0));
    if (flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) return { errno: EOPNOTSUPP };
    const hwpt = this.objects.get<HwptPagingObject>(u32(args.hwptId), 'hwpt_paging');
    if (!hwpt) return { errno: ENOENT };
    const domain = hwpt.domain;
    if (!(domain instanceof MockDomain) || !domain.dirtyOps) return { errno: EOPNOTSUPP };
    const enable = (flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0;
    // iopt_clear_dirty_data: "Clear dirty bits from PTEs to ensure a clean snapshot"
    if (enable) domain.dirty.clear();
    domain.tracking = enable;
    return { errno: 0 };
  }

  /**
   * hw_pagetable.c:iommufd_hwpt_get_dirty_bitmap → io_pagetable.c:
   * iopt_read_and_clear_dirty_data. Dirty bits are OR-ed into `bitmap`.
   * iommu_read_and_clear_dirty ignores what iova_bitmap_for_each returns, so
   * once the range checks pass the ioctl succeeds, even if the walk stopped
   * (a hole in the areas, tracking off).
   */
  hwptGetDirtyBitmap(args: { hwptId: number; flags?: number; iova: U64; length: U64; pageSize: U64; bitmap: Uint8Array }): Errno {
    const flags = u32(args.flags);
    if (flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) return { errno: EOPNOTSUPP };
    const hwpt = this.objects.get<HwptPagingObject>(u32(args.hwptId), 'hwpt_paging');
    if (!hwpt) return { errno: ENOENT };
    const iopt = hwpt.ioas.iopt;
    const iova = u64(args.iova);
    const length = u64(args.length);
    const pageSize = u64(args.pageSize);
    // io_pagetable.c:iommufd_check_iova_range (u64 arithmetic: length - 1 wraps where length 0 gets this far:
    // only at IOVA 0, any other IOVA overflows. The walk below then runs from IOVA 0 to ULONG_MAX, but
    // iopt_for_each_contig_area stops at the first IOVA no area covers: it reads the areas contiguous
    // from IOVA 0, and none where IOVA 0 is unmapped, as under every mock domain but MOCK_IOMMUPT_HUGE.)
    if (!length && !this.behaviour.dirtyBitmapZeroLength) return { errno: EINVAL };
    const last = iova + BigInt.asUintN(64, length - 1n);
    if (last > ULONG_MAX) return { errno: EOVERFLOW };
    const align = iopt.iovaAlignment;
    const end = BigInt.asUintN(64, last + 1n);
    if (iova & (align - 1n) || end & (align - 1n)) return { errno: EINVAL };
    if (!pageSize) return { errno: EINVAL };
    if (iova & (pageSize - 1n) || end & (pageSize - 1n)) return { errno: EINVAL };
    const domain = hwpt.domain;
    if (!(domain instanceof MockDomain) || !domain.dirtyOps) return { errno: EOPNOTSUPP };
    const shift = BigInt((pageSize & -pageSize).toString(2).length - 1);
    const record = (at: bigint, size: bigint) => {
      // iova_bitmap_set: bits for [at, at+size-1] relative to the bitmap's iova
      const firstBit = (at - iova) >> shift;
      const lastBit = (at + size - 1n - iova) >> shift;
      if (lastBit < BigInt(args.bitmap.length) * 8n) {
        // Within the bitmap (every read but KF-0004's): the same bits, counted in doubles.
        for (let b = Number(firstBit), l = Number(lastBit); b <= l; b++) args.bitmap[b >> 3]! |= 1 << (b & 7);
        return;
      }
      for (let b = firstBit; b <= lastBit; b++) {
        const byte = Number(b >> 3n);
        if (byte < args.bitmap.length) args.bitmap[byte]! |= 1 << Number(b & 7n);
        // KernelBehaviour.dirtyBitmapZeroLength (KF-0004): a length of 0 bounds nothing
        // (iova_bitmap_alloc's mapped_total_index is U64_MAX's), so the kernel writes this bit
        // into whatever user memory follows the buffer: memory the model was not given.
        else if (!length) throw new ModelCannotAnswer(DIRTY_BITMAP_ZERO_LENGTH_PAST_BUFFER);
      }
    };
    for (const step of iopt.contig(iova, last).steps) {
      // selftest.c:mock_domain_read_and_clear_dirty over [cur, step.last]
      if (!domain.tracking) break; // EINVAL, swallowed
      if (domain.genericPt) {
        // iommu_pt.h:__read_and_clear_dirty: a dirty leaf is recorded from the walk's
        // position to the leaf's end (record_dirty), and cleaned whole.
        for (let at = step.cur; at <= step.last; ) {
          const leaf = domain.leafOf(at);
          const end = leaf.last < step.last ? leaf.last : step.last;
          if (domain.leafDirty(leaf)) {
            if (!(flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)) domain.cleanLeaf(leaf);
            let length = end - at + 1n;
            // KernelBehaviour.dirtyContigLeafShort (KF-0002): a multi-item leaf loses its last item;
            // a zero length (the read starts at that item) is not modelled: KF-0002's test covers it.
            if (this.behaviour.dirtyContigLeafShort && leaf.last > leaf.start + MOCK_IO_PAGE_SIZE - 1n) {
              const lastItem = leaf.last - MOCK_IO_PAGE_SIZE + 1n;
              length = (lastItem < end + 1n ? lastItem : end + 1n) - at;
            }
            if (length > 0n) record(at, length);
          }
          at = end + 1n;
        }
        continue;
      }
      if (!(domain.pgsizeBitmap & MOCK_HUGE_PAGE_SIZE)) {
        // No 1 MiB IOPTE in this domain, ever: the walk below would visit the chunks of [cur, last] one by one,
        // recording at `cur + k * 2048` each that has an entry and is dirty. The dirty ones are found from
        // whichever is smaller, the dirty set or the range, and taken in the walk's order.
        const first = step.cur / MOCK_IO_PAGE_SIZE;
        const offset = step.cur - first * MOCK_IO_PAGE_SIZE;
        const firstChunk = Number(first);
        const lastChunk = Number(first + (step.last - step.cur) / MOCK_IO_PAGE_SIZE);
        const dirty: number[] = [];
        if (domain.dirty.size <= lastChunk - firstChunk + 1) {
          for (const c of domain.dirty) if (c >= firstChunk && c <= lastChunk) dirty.push(c);
          dirty.sort((a, b) => a - b);
        } else {
          for (let c = firstChunk; c <= lastChunk; c++) if (domain.dirty.has(c)) dirty.push(c);
        }
        for (const c of dirty) {
          if (!domain.hasEntry(c)) continue;
          if (!(flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)) domain.dirty.delete(c);
          record(BigInt(c) * MOCK_IO_PAGE_SIZE + offset, MOCK_IO_PAGE_SIZE);
        }
        continue;
      }
      const stop = step.last + 1n;
      let at = step.cur;
      do {
        if (!domain.hasEntry(Number(at / MOCK_IO_PAGE_SIZE))) {
          at += MOCK_IO_PAGE_SIZE;
          continue;
        }
        // A MOCK_PFN_HUGE_IOVA entry: mock_test_and_clear_dirty over its whole 1 MiB IOPTE, recorded from `at`.
        const huge = domain.hugeAt(at);
        if (huge === null) throw new HugeIoptesUnknown();
        const pgsize = huge ? MOCK_HUGE_PAGE_SIZE : MOCK_IO_PAGE_SIZE;
        const head = at - (at % pgsize);
        let dirty = false;
        for (let c = Number(head / MOCK_IO_PAGE_SIZE), end = Number((head + pgsize) / MOCK_IO_PAGE_SIZE); c < end; c++) {
          if (!domain.dirty.has(c) || !domain.hasEntry(c)) continue;
          dirty = true;
          if (!(flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)) domain.dirty.delete(c);
        }
        if (dirty) record(at, pgsize);
        at += pgsize;
      } while (at < stop);
    }
    return { errno: 0 };
  }

  /** hw_pagetable.c:iommufd_hwpt_invalidate → selftest.c:mock_domain_cache_invalidate_user. entry_num reports how many were handled, also on failure. */
  hwptInvalidate(args: { hwptId: number; dataType: number; entryLen: number; entryNum: number; entries: Uint8Array | null }): Errno & { entryNum: number } {
    const entryLen = u32(args.entryLen);
    const entryNum = u32(args.entryNum);
    const hasPtr = !!args.entries && args.entries.byteLength > 0;
    if (entryNum && (!hasPtr || !entryLen || entryLen > Number(PAGE_SIZE) || entryNum > IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX)) {
      return { errno: EINVAL, entryNum: 0 };
    }
    // KernelBehaviour.hwptInvalidateAnyObject: iommufd_get_object(IOMMUFD_OBJ_ANY), then
    // a nested HWPT or a vIOMMU (the model has none); any other object is EINVAL.
    const obj = this.behaviour.hwptInvalidateAnyObject ? this.objects.get(u32(args.hwptId)) : null;
    // vIOMMU (7.x): hw_pagetable.c:iommufd_hwpt_invalidate → viommu->ops->cache_invalidate
    if (obj instanceof ViommuObject) return viommuCacheInvalidate(obj, args);
    if (obj && !(obj instanceof HwptNestedObject)) return { errno: EINVAL, entryNum: 0 };
    const hwpt = this.objects.get<HwptNestedObject>(u32(args.hwptId), 'hwpt_nested');
    if (!hwpt) return { errno: ENOENT, entryNum: 0 };
    if (u32(args.dataType) !== IOMMU_HWPT_INVALIDATE_DATA_SELFTEST) return { errno: EINVAL, entryNum: 0 };
    let processed = 0;
    const bytes = args.entries!;
    for (let i = 0; i < entryNum; i++) {
      // iommu_copy_struct_from_user_array: entry_len must be exactly sizeof(struct iommu_hwpt_invalidate_selftest) = 8
      if (entryLen !== 8) return { errno: EINVAL, entryNum: processed };
      const off = i * entryLen;
      if (off + 8 > bytes.byteLength) return { errno: EFAULT, entryNum: processed };
      const dv = new DataView(bytes.buffer, bytes.byteOffset + off, 8);
      const invFlags = dv.getUint32(0, true);
      const iotlbId = dv.getUint32(4, true);
      if (invFlags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) return { errno: EOPNOTSUPP, entryNum: processed };
      if (iotlbId > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX) return { errno: EINVAL, entryNum: processed };
      if (invFlags & IOMMU_TEST_INVALIDATE_FLAG_ALL) hwpt.domain.iotlb.fill(0);
      else hwpt.domain.iotlb[iotlbId] = 0;
      processed++;
    }
    return { errno: 0, entryNum: processed };
  }

  /** fault.c:iommufd_fault_alloc: the fault object is busy while its fd is open. */
  faultQueueAlloc(args: { flags?: number } = {}): Errno & { faultId: number; faultFd: number } {
    if (u32(args.flags)) return { errno: EOPNOTSUPP, faultId: 0, faultFd: 0 };
    const fault = new FaultObject(this.#nextFd++);
    const rc = this.objects.reserve(fault);
    if (rc) return { errno: rc, faultId: 0, faultFd: 0 };
    fault.users++;
    this.#files.set(fault.fd, fault);
    this.objects.finalize(fault);
    return { errno: 0, faultId: fault.id, faultFd: fault.fd };
  }

  // ---------------------------------------------------------------- vIOMMU (7.x)

  /** What lib/model/iommufd/viommu.ts and eventq.ts use of this context's private machinery. */
  get viommuContext(): ViommuContext {
    return (this.#viommuContext ??= {
      ctx: this,
      mmaps: this.#mmaps,
      // An internal access is an access without an fd or an unmap op: the same attach and detach.
      accessChangeIoas: (access, ioas) => this.#accessChangeIoas(access as unknown as AccessObject, ioas),
      nextFileNumber: () => this.#nextFd++,
      openFile: (q) => void this.#files.set(q.fd, q),
    });
  }

  /** read(2) of a vEVENTQ or fault fd this model handed out (eventq.c:iommufd_veventq_fops_read, iommufd_fault_fops_read). */
  readFile(fd: number, count: number): { ret: number; bytes: Uint8Array } {
    const file = this.#files.get(fd);
    if (!file) return { ret: -EBADF, bytes: new Uint8Array(0) };
    if (file instanceof FaultObject) return faultRead(file, count);
    if (!(file instanceof VeventqObject)) throw new ModelCannotAnswer('read of an access fd');
    return veventqRead(file, count);
  }

  /** write(2) of a fault fd (iommufd_fault_fops_write); a vEVENTQ's file has no write. */
  writeFile(fd: number, bytes: Uint8Array): number {
    const file = this.#files.get(fd);
    if (!file) return -EBADF;
    if (file instanceof FaultObject) return faultWrite(file, bytes);
    if (!(file instanceof VeventqObject)) throw new ModelCannotAnswer('write of an access fd');
    return WRITE_WITHOUT_OP;
  }

  /** poll(2) of a vEVENTQ or fault fd (eventq.c:iommufd_eventq_fops_poll; 6.12 fault.c:iommufd_fault_fops_poll). */
  pollFile(fd: number, events: number): number {
    const file = this.#files.get(fd);
    if (!file) return 0x20; // POLLNVAL
    if (file instanceof FaultObject) return faultPoll(file, events);
    if (!(file instanceof VeventqObject)) throw new ModelCannotAnswer('poll of an access fd');
    return veventqPoll(file, events);
  }

  /** mmap(2) of this iommufd (main.c:iommufd_fops_mmap): a handle for munmap, or the errno. */
  mmap(args: { length: bigint; shared: boolean; exec: boolean; offset: bigint }): { errno: number; handle: object | null } {
    const r = iommufdMmap(this.viommuContext, args);
    if (r.errno) return { errno: r.errno, handle: null };
    const handle = { region: r.region! };
    this.#mapped.add(handle);
    return { errno: 0, handle };
  }

  /** munmap(2) of a whole mapping mmap made: the region's owner is let go, and a closed context may be released. */
  munmap(handle: object): void {
    const h = handle as { region: MmapRegion };
    if (!this.#mapped.delete(h)) return;
    iommufdMunmap(h.region);
    if (this.#closed && this.#files.size === 0 && this.#mapped.size === 0 && !this.#released) this.#release();
  }

  // ---------------------------------------------------------------- IOMMU_TEST_CMD

  /** selftest.c:iommufd_test_add_reserved */
  testAddReserved(args: { ioasId: number; start: U64; length: U64 }): Errno {
    const start = u64(args.start);
    const length = u64(args.length);
    if (!length) return { errno: EINVAL };
    const last = start + length - 1n;
    if (last > ULONG_MAX) return { errno: EOVERFLOW };
    const ioas = this.getIoas(args.ioasId);
    if (!ioas) return { errno: ENOENT };
    return { errno: ioas.iopt.reserve(start, last, null) };
  }

  /** selftest.c:iommufd_test_mock_domain with dev_flags 0 */
  testMockDomain(args: { ptId: number }): Errno & { stdevId: number; hwptId: number; idevId: number } {
    return this.#mockDomain(u32(args.ptId), 0);
  }

  testMockDomainFlags(args: { ptId: number; devFlags: number }): Errno & { stdevId: number; hwptId: number; idevId: number } {
    return this.#mockDomain(u32(args.ptId), u32(args.devFlags));
  }

  /**
   * selftest.c:iommufd_test_mock_domain: the selftest object takes the first
   * ID, the bound device the next, an automatic HWPT (if one is made) the
   * third. Every failure releases them all.
   */
  #mockDomain(ptId: number, devFlags: number): Errno & { stdevId: number; hwptId: number; idevId: number } {
    const fail = (errno: number) => ({ errno, stdevId: 0, hwptId: 0, idevId: 0 });
    const sobj = new SelftestObject();
    const rc = this.objects.reserve(sobj);
    if (rc) return fail(rc);
    // selftest.c:mock_dev_create valid_flags: NO_DIRTY | HUGE_IOVA, or NO_DIRTY | PASID since
    // HUGE_IOVA gave way to MOCK_IOMMUPT_HUGE (KernelBehaviour.mockGenericPt, mockDevicePasid).
    const validDevFlags =
      MOCK_FLAGS_DEVICE_NO_DIRTY | (this.behaviour.mockGenericPt ? 0 : MOCK_FLAGS_DEVICE_HUGE_IOVA) | (this.behaviour.mockDevicePasid ? MOCK_FLAGS_DEVICE_PASID : 0);
    if (devFlags & ~validDevFlags) {
      this.objects.abort(sobj);
      return fail(EINVAL);
    }
    // device.c:iommufd_device_bind: finalized at once, with the driver's reference
    const idev = new DeviceObject(new MockDevice(devFlags), null);
    const rcBind = this.objects.reserve(idev);
    if (rcBind) {
      this.objects.abort(sobj);
      return fail(rcBind);
    }
    this.objects.finalize(idev);
    idev.users++;
    const r = this.#changePt(idev, ptId, 'attach');
    if (r.errno) {
      this.#deviceUnbind(idev);
      this.objects.abort(sobj);
      return fail(r.errno);
    }
    idev.users++; // iommufd_device_attach: "Pairs with iommufd_device_detach()"
    sobj.idev = idev;
    this.objects.finalize(sobj);
    return { errno: 0, stdevId: sobj.id, hwptId: r.ptId, idevId: idev.id };
  }

  /** selftest.c:iommufd_test_mock_domain_replace → device.c:iommufd_device_replace */
  testMockDomainReplace(args: { stdevId: number; ptId: number }): Errno & { ptId: number } {
    const ptId = u32(args.ptId);
    const sobj = this.objects.get<SelftestObject>(u32(args.stdevId), 'selftest');
    if (!sobj) return { errno: ENOENT, ptId };
    const r = this.#changePt(sobj.idev, ptId, 'replace');
    return r.errno ? { errno: r.errno, ptId } : { errno: 0, ptId: r.ptId };
  }

  /** The mock domain behind a HWPT_PAGING id (selftest.c:get_md_pagetable). */
  #mockPagetable(id: number): { errno: number; domain: MockDomain | null } {
    const hwpt = this.objects.get<HwptPagingObject>(u32(id), 'hwpt_paging');
    if (!hwpt) return { errno: ENOENT, domain: null };
    if (!(hwpt.domain instanceof MockDomain)) return { errno: EINVAL, domain: null };
    return { errno: 0, domain: hwpt.domain };
  }

  /** get_user_pages_fast(addr, 1, 0): the page now under the VA, or null (EFAULT). */
  #gupRead(address: bigint): number | null {
    const m = this.process.memory.mappingAt(address);
    if (!m || (m.prot & 3) === 0) return null;
    return this.process.memory.pageAt(address)?.id ?? null;
  }

  /** selftest.c:iommufd_test_md_check_pa: every 2048-byte chunk must map the page now under the user VA. */
  testCheckMap(args: { hwptId: number; iova: U64; length: U64; uptr: U64 }): Errno {
    let iova = u64(args.iova);
    let length = u64(args.length);
    let uptr = u64(args.uptr);
    const { errno, domain } = this.#mockPagetable(args.hwptId);
    if (errno) return { errno };
    // page_size = 1 << __ffs(pgsize_bitmap): 2048, or PAGE_SIZE for a MOCK_IOMMUPT_HUGE domain.
    const step = domain!.checkPageSize;
    if (iova % step || length % step || uptr % step || uptr + length > ULONG_MAX) return { errno: EINVAL };
    for (; length; length -= step) {
      const page = this.#gupRead(uptr - (uptr % PAGE_SIZE));
      if (page === null) return { errno: EFAULT };
      const ent = domain!.entryAt(iova / MOCK_IO_PAGE_SIZE);
      if (!ent || ent.pageId !== page || ent.offset !== uptr % PAGE_SIZE) return { errno: EINVAL };
      iova += step;
      uptr += step;
    }
    return { errno: 0 };
  }

  /** selftest.c:iommufd_test_md_check_refs: the pin count of every page must equal `refs`. */
  testCheckRefs(args: { length: U64; uptr: U64; refs: number }): Errno {
    let length = u64(args.length);
    let uptr = u64(args.uptr);
    if (length % PAGE_SIZE || uptr % PAGE_SIZE || uptr + length > ULONG_MAX) return { errno: EINVAL };
    for (; length; length -= PAGE_SIZE) {
      const page = this.#gupRead(uptr);
      if (page === null) return { errno: EFAULT };
      // "if (!PageCompound(pages[0]))": a hugetlbfs memfd's pages are compound, their count unchecked.
      const file = this.process.memory.mappingAt(uptr)?.file;
      if (!file?.hugetlb && this.process.pinsOf(page) !== u32(args.refs)) return { errno: EIO };
      uptr += PAGE_SIZE;
    }
    return { errno: 0 };
  }

  /**
   * selftest.c:iommufd_test_create_access. The access object takes an ID that
   * is never reported; the caller gets an fd (this model's own number).
   */
  testCreateAccess(args: { ioasId: number; flags?: number }): Errno & { accessFd: number } {
    const flags = u32(args.flags);
    if (flags & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) return { errno: EOPNOTSUPP, accessFd: 0 };
    const access = new AccessObject(this.#nextFd, (flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0);
    const rc = this.objects.reserve(access);
    if (rc) return { errno: rc, accessFd: 0 };
    this.objects.finalize(access);
    access.users++;
    // device.c:iommufd_access_attach
    const ioas = this.getIoas(args.ioasId);
    const rcAttach = ioas ? this.#accessChangeIoas(access, ioas) : ENOENT;
    if (rcAttach) {
      access.users--;
      this.objects.erase(access);
      return { errno: rcAttach, accessFd: 0 };
    }
    this.#nextFd++;
    this.#files.set(access.fd, access);
    return { errno: 0, accessFd: access.fd };
  }

  /** device.c:iommufd_access_change_ioas */
  #accessChangeIoas(access: AccessObject, next: IoasObject | null): number {
    const cur = access.ioas;
    if (cur === next) return 0;
    if (next) {
      const rc = next.iopt.addAccess(access);
      if (rc) return rc;
      next.users++;
    }
    if (cur) {
      access.notifyUnmap(0n, U64_MAX);
      cur.iopt.removeAccess(access);
      cur.users--;
    }
    access.ioas = next;
    return 0;
  }

  /** selftest.c:iommufd_access_get: anything but a live access fd is EBADFD. */
  #access(fd: number): AccessObject | null {
    const f = this.#files.get(fd);
    return f instanceof AccessObject ? f : null;
  }

  /** selftest.c:iommufd_test_access_item_destroy */
  testDestroyAccessPages(args: { accessFd: number; accessPagesId: number }): Errno {
    const access = this.#access(args.accessFd);
    if (!access) return { errno: EBADFD };
    const item = access.items.find((i) => i.id === u32(args.accessPagesId));
    if (!item) return { errno: ENOENT };
    access.items.splice(access.items.indexOf(item), 1);
    unpinItem(item);
    return { errno: 0 };
  }

  /** selftest.c:iommufd_test_access_pages → device.c:iommufd_access_pin_pages, then the page comparison against `uptr`. */
  testAccessPages(args: { accessFd: number; flags?: number; iova: U64; length: U64; uptr: U64 }): Errno & { accessPagesId: number } {
    const flags = u32(args.flags);
    let iova = u64(args.iova);
    const length = u64(args.length);
    const uptr = u64(args.uptr);
    const fail = (errno: number) => ({ errno, accessPagesId: 0 });
    if (length > ACCESS_MAX_LENGTH) return fail(ENOMEM);
    if (flags & ~(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ)) return fail(EOPNOTSUPP);
    const access = this.#access(args.accessFd);
    if (!access) return fail(EBADFD);
    if (!access.needsPinPages) return fail(EOPNOTSUPP);
    if (flags & MOCK_FLAGS_ACCESS_SYZ) iova = access.ioas ? syzConvIova(access.ioas.iopt, iova) : 0n;
    const write = (flags & MOCK_FLAGS_ACCESS_WRITE) !== 0;

    // device.c:iommufd_access_pin_pages
    if (!length) return fail(EINVAL);
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return fail(EOVERFLOW);
    if (!access.ioas) return fail(ENOENT);
    const { steps, done } = access.ioas.iopt.contig(iova, last);
    const segments: AccessItem['segments'] = [];
    const unwind = (errno: number) => {
      unpinItem({ id: -1, iova, length, segments });
      return fail(errno);
    };
    for (let i = 0; i < steps.length; i++) {
      const { area, cur, last: segLast } = steps[i]!;
      const isDone = last <= area.last; // iopt_area_contig_done
      // iopt_area_contig_is_aligned: page-aligned start, and a non-final area must end on a page boundary
      if (area.startByteOf(cur) % PAGE_SIZE) return unwind(EINVAL);
      if (!isDone && area.startByteOf(area.last) % PAGE_SIZE !== PAGE_SIZE - 1n) return unwind(EINVAL);
      if (!(area.iommuProt & (write ? IOMMU_WRITE : IOMMU_READ))) return unwind(EPERM);
      // pages.c:iopt_area_add_access
      if (write && !area.pages.writable) return unwind(EPERM);
      if (area.pages.type === 'dmabuf') return unwind(EINVAL);
      const range = { start: area.indexOf(cur), last: area.indexOf(segLast) };
      const rc = area.pages.hold([range]);
      if (rc) return unwind(rc);
      area.numAccesses++;
      segments.push({ area, range });
    }
    if (!done) return unwind(ENOENT);

    // selftest.c:iommufd_test_check_pages: "For syzkaller allow uptr to be NULL to skip this check"
    if (uptr) {
      const pinned = segments.flatMap((s) => {
        const ids: number[] = [];
        for (let i = s.range.start; i <= s.range.last; i++) ids.push(s.area.pages.pinned.get(i)!);
        return ids;
      });
      let at = uptr - (iova % PAGE_SIZE);
      for (const id of pinned) {
        const page = this.#gupRead(at);
        if (page === null) return unwind(EFAULT);
        if (page !== id) return unwind(EBADE);
        at += PAGE_SIZE;
      }
    }
    const item: AccessItem = { id: access.nextItemId++, iova, length, segments };
    access.items.push(item);
    return { errno: 0, accessPagesId: item.id };
  }

  /**
   * selftest.c:iommufd_test_access_rw → device.c:iommufd_access_rw →
   * pages.c:iopt_pages_rw_access. The model has no memory contents: it
   * answers the errno only.
   */
  testAccessRw(args: { accessFd: number; iova: U64; length: U64; uptr: U64; flags?: number }): Errno {
    const flags = u32(args.flags);
    let iova = u64(args.iova);
    const length = u64(args.length);
    const uptr = u64(args.uptr);
    if (length > ACCESS_MAX_LENGTH) return { errno: ENOMEM };
    if (flags & ~(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ)) return { errno: EOPNOTSUPP };
    const access = this.#access(args.accessFd);
    if (!access) return { errno: EBADFD };
    const write = (flags & MOCK_ACCESS_RW_WRITE) !== 0;
    // Writing to the IOVA first reads the caller's buffer (copy_from_user).
    if (write && !this.#userRangeOk(uptr, length, false)) return { errno: EFAULT };
    if (flags & MOCK_FLAGS_ACCESS_SYZ) iova = access.ioas ? syzConvIova(access.ioas.iopt, iova) : 0n;
    if (!length) return { errno: EINVAL };
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return { errno: EOVERFLOW };
    if (!access.ioas) return { errno: ENOENT };
    const { steps, done } = access.ioas.iopt.contig(iova, last);
    for (const { area, cur, last: segLast } of steps) {
      if (!(area.iommuProt & (write ? IOMMU_WRITE : IOMMU_READ))) return { errno: EPERM };
      const rc = this.#pagesRwAccess(area.pages, area.startByteOf(cur), segLast - cur + 1n, flags);
      if (rc) return { errno: rc };
    }
    if (!done) return { errno: ENOENT };
    // Reading from the IOVA ends with copy_to_user into the caller's buffer.
    if (!write && !this.#userRangeOk(uptr, length, true)) return { errno: EFAULT };
    return { errno: 0 };
  }

  /**
   * pages.c:iopt_pages_rw_access. From another mm than the pages' (a forked
   * child mapped them: change_mm), or with the selftest's SLOW_PATH flag,
   * a one-page access pins the page remotely (iopt_pages_rw_page) and a
   * longer one reads through a pfn_reader (iopt_pages_rw_slow); a source mm
   * that is gone sends both to the pfn_reader.
   */
  #pagesRwAccess(pages: IoPages, startByte: bigint, length: bigint, flags: number): number {
    const write = (flags & MOCK_ACCESS_RW_WRITE) !== 0;
    if (write && !pages.writable) return EPERM;
    if (pages.type === 'dmabuf') return EINVAL;
    const startIndex = Number(startByte / PAGE_SIZE);
    const lastIndex = Number((startByte + length - 1n) / PAGE_SIZE);
    // "if (pages->type != IOPT_ADDRESS_USER) return iopt_pages_rw_slow(...)": a file is read through a pfn_reader.
    if (pages.type === 'file') return pages.temporaryPinErrno(startIndex, lastIndex);
    const changeMm = pages.process !== this.process || (flags & MOCK_ACCESS_RW_SLOW_PATH) !== 0;
    if (changeMm) {
      if (startIndex === lastIndex && !pages.process.exited) {
        // iopt_pages_rw_page: pin_user_pages_remote with FOLL_WRITE only for a write
        const page = pages.process.memory.pageAt(pages.addressOf(startIndex));
        if (!page || (write ? !page.writable : !page.readable)) return EFAULT;
        return 0;
      }
      // iopt_pages_rw_slow: a pfn_reader, pinning with the pages' own gup flags
      return pages.temporaryPinErrno(startIndex, lastIndex);
    }
    // The fast path copies through the user VA (copy_to_user / copy_from_user).
    return this.#userRangeOk(pages.uptr + startByte, length, write) ? 0 : EFAULT;
  }

  /** Whether copy_{from,to}_user over [addr, addr+length) would succeed. */
  #userRangeOk(addr: bigint, length: bigint, write: boolean): boolean {
    if (length === 0n) return true;
    const end = addr + length;
    for (let p = addr - (addr % PAGE_SIZE); p < end; p += PAGE_SIZE) {
      const m = this.process.memory.mappingAt(p);
      if (!m || (write ? !(m.prot & 2) : !(m.prot & 1))) return false;
    }
    return true;
  }

  /** selftest.c iommufd_test case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: a global batch size, no semantic effect. */
  testSetTempMemoryLimit(args: { limit: number }): Errno {
    // "Protect _batch_init(), can not be less than elmsz"
    return { errno: u32(args.limit) < 12 ? EINVAL : 0 };
  }

  /** selftest.c:iommufd_test_access_replace_ioas → device.c:iommufd_access_replace */
  testAccessReplaceIoas(args: { accessFd: number; ioasId: number }): Errno {
    const access = this.#access(args.accessFd);
    if (!access) return { errno: EBADFD };
    if (!access.ioas) return { errno: ENOENT };
    const ioas = this.getIoas(args.ioasId);
    if (!ioas) return { errno: ENOENT };
    return { errno: this.#accessChangeIoas(access, ioas) };
  }

  /**
   * selftest.c:iommufd_test_dirty: marks chunks dirty from a user bitmap.
   * The model cannot read user memory, so the caller passes the bitmap's
   * bytes as `bits` (what the kernel would copy_from_user from `uptr`).
   * Note the selftest indexes the mock xarray with cur / page_size (not
   * cur / MOCK_IO_PAGE_SIZE): with page_size != 2048 it marks other chunks.
   */
  testDirty(args: { hwptId: number; flags?: number; iova: U64; length: U64; pageSize: U64; uptr: U64; bits?: Uint8Array }): Errno & { nrDirty: bigint } {
    const iova = u64(args.iova);
    const length = u64(args.length);
    const pageSize = u64(args.pageSize);
    const uptr = u64(args.uptr);
    const fail = (errno: number) => ({ errno, nrDirty: 0n });
    if (!pageSize || !length || iova % pageSize || length % pageSize || !uptr) return fail(EINVAL);
    const max = length / pageSize;
    if (max > 16n * 1024n * 1024n * 8n) return fail(EOVERFLOW);
    const { errno, domain } = this.#mockPagetable(args.hwptId);
    if (errno) return fail(errno);
    if (!domain!.tracking) return fail(EINVAL);
    if (!this.#userRangeOk(uptr, (max + 7n) / 8n, false)) return fail(EFAULT);
    if (!args.bits) throw new Error('IommufdModel.testDirty needs `bits`: the bytes of the user bitmap at uptr');
    let count = 0n;
    // max is at most 2^27 (the EOVERFLOW above): the bit index counts in a double. The xarray index of bit i is
    // (iova + i * page_size) / page_size = iova / page_size + i, iova being a multiple of page_size (EINVAL
    // above); past MAX_CHUNK it is an IOVA past ULONG_MAX, where nothing is mapped.
    const bits = Number(max);
    const base = iova / pageSize;
    const baseChunk = base + max - 1n <= MAX_CHUNK ? Number(base) : -1;
    const chunkOf = (i: number): number => {
      if (baseChunk >= 0) return baseChunk + i;
      const chunk = base + BigInt(i);
      return chunk <= MAX_CHUNK ? Number(chunk) : -1;
    };
    for (let i = 0; i < bits; i++) {
      const byte = args.bits[i >> 3] ?? 0;
      if (!(byte & (1 << (i & 7)))) continue;
      if (domain!.genericPt) {
        // mock->iommu.ops->set_dirty(iova + i * page_size) marks the leaf holding it
        // (iommu_pt.h:__set_dirty; -ENOENT where nothing is mapped), and every bit counts.
        const leafChunk = (iova + BigInt(i) * pageSize) / MOCK_IO_PAGE_SIZE;
        if (leafChunk <= MAX_CHUNK && domain!.hasEntry(Number(leafChunk))) domain!.dirty.add(Number(leafChunk));
        count++;
        continue;
      }
      const chunk = chunkOf(i);
      if (chunk >= 0 && domain!.hasEntry(chunk)) {
        domain!.dirty.add(chunk);
        count++;
      }
    }
    return { errno: 0, nrDirty: count };
  }

  /**
   * selftest.c:iommufd_test_trigger_iopf: a page fault reported for a mock
   * device (iommu_report_device_fault). The result is the device lookup's;
   * what the fault fd then delivers is read() from it, not an ioctl.
   */
  testTriggerIopf(args: { devId: number; pasid?: number; grpid?: number; perm?: number; addr?: U64 }): Errno {
    const idev = this.objects.get<DeviceObject>(u32(args.devId), 'device');
    if (!idev) return { errno: ENOENT };
    if (!idev.mock) return { errno: EINVAL };
    // iommu_report_device_fault: no handler is no error to the ioctl (the mock's page_response answers it)
    const request = mockPageRequest({ pasid: u32(args.pasid), grpid: u32(args.grpid), perm: u32(args.perm), addr: BigInt.asUintN(64, BigInt(args.addr ?? 0)) });
    const handler = this.#findFaultHandler(idev, request.pasid);
    // Under fault injection the group's allocation may have failed (io-pgfault.c answers the request itself).
    if (handler && this.absorbedFault) throw new ModelCannotAnswer(PAGE_FAULT_UNDER_FAULT_INJECTION);
    if (handler?.hwpt.fault) faultIopfHandler(handler.hwpt.fault, { handle: { devId: idev.id, pasid: handler.pasid, hwpt: handler.hwpt }, faults: [request], cookie: 0 });
    return { errno: 0 };
  }

  /**
   * io-pgfault.c:find_fault_handler: the attach handle at the fault's PASID
   * (IOMMU_NO_PASID without PASID_VALID); for a PASID with none, the mock
   * driver (ops->user_pasid_table, in 6.12 and 7.x) falls back to the RID's
   * handle if its domain is a nested one. A handle whose domain has no
   * iopf_handler (a HWPT allocated without a fault ID) is none. 6.12 keeps a
   * handle only for a fault-capable HWPT and 7.x one for every attach: either
   * way, what delivers is a HWPT with a fault, which is what `hwpt.fault` says.
   */
  #findFaultHandler(idev: DeviceObject, pasid: number): { hwpt: Hwpt; pasid: number } | null {
    let found: { hwpt: Hwpt; pasid: number } | null = null;
    if (pasid !== IOMMU_NO_PASID) {
      const at = idev.pasids.get(pasid);
      if (at) found = { hwpt: at, pasid };
      else if (idev.hwpt instanceof HwptNestedObject) found = { hwpt: idev.hwpt, pasid: IOMMU_NO_PASID };
    } else if (idev.hwpt) {
      found = { hwpt: idev.hwpt, pasid: IOMMU_NO_PASID };
    }
    return found && found.hwpt.fault ? found : null;
  }

  /** iommufd_auto_response_faults(hwpt, handle) for the attach of `idev` at `pasid` on `hwpt` that ends. */
  #autoResponseFaults(hwpt: Hwpt, idev: DeviceObject, pasid: number): void {
    if (hwpt.fault) faultAutoResponse(hwpt.fault, { devId: idev.id, pasid, hwpt });
  }

  /** selftest.c:iommufd_test_md_check_iotlb */
  testCheckIotlb(args: { hwptId: number; iotlbId: number; iotlb: number }): Errno {
    const hwpt = this.objects.get<HwptNestedObject>(u32(args.hwptId), 'hwpt_nested');
    if (!hwpt) return { errno: ENOENT };
    const id = u32(args.iotlbId);
    if (id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX || hwpt.domain.iotlb[id] !== u32(args.iotlb)) return { errno: EINVAL };
    return { errno: 0 };
  }
}

/** A HUGE_IOVA mock domain over memory whose physical layout the model was not told (UserMemory.physicalAddress). */
export class HugeIoptesUnknown extends Error {
  override name = 'HugeIoptesUnknown';
  constructor() {
    super('the mock domain may use 1 MiB IOPTEs here, but the physical addresses of the pages are not known');
  }
}

/** ioas.c:conv_iommu_prot */
export function convIommuProt(flags: number): number {
  let prot = IOMMU_CACHE;
  if (flags & IOMMU_IOAS_MAP_WRITEABLE) prot |= IOMMU_WRITE;
  if (flags & IOMMU_IOAS_MAP_READABLE) prot |= IOMMU_READ;
  return prot;
}

/** selftest.c:__iommufd_test_syz_conv_iova: {u32 nth_area, u32 offset} → that area's iova + offset, or 0. */
function syzConvIova(iopt: IoPageTable, value: bigint): bigint {
  let nth = Number(value & 0xffff_ffffn);
  const offset = value >> 32n;
  for (const area of iopt.areas) {
    if (nth === 0) return BigInt.asUintN(64, area.start + offset);
    nth--;
  }
  return 0n;
}

/**
 * vIOMMU (7.x): selftest.c:mock_domain_nop_attach records the vIOMMU of the domain a mock device
 * attaches to, and the device's virt_id on it (TRIGGER_VEVENT reports for that pair).
 */
function mockAttachViommu(hwpt: Hwpt, idev: DeviceObject): void {
  const mdev = idev.mock;
  if (!mdev) return;
  const viommu = hwpt instanceof HwptNestedObject ? (hwpt.domain.viommu as ViommuObject | null) : null;
  if (viommu === mdev.viommu) return;
  mdev.viommu = viommu;
  mdev.vdevId = viommu ? (viommuGetVdevId(viommu, mdev) ?? 0n) : 0n;
}

/** The driver's attach_dev for a hwpt's domain (selftest.c:mock_domain_nop_attach; real domains accept). */
function domainAttachErrno(hwpt: Hwpt, idev: DeviceObject): number {
  if (hwpt instanceof HwptPagingObject && hwpt.domain instanceof MockDomain) {
    if (!idev.mock) return EINVAL;
    return hwpt.domain.attachErrno(idev.mock);
  }
  if (hwpt instanceof HwptNestedObject) {
    if (!idev.mock) return EINVAL;
    // vIOMMU (7.x): iommufd_viommu_get_vdev_id: a nested domain of a vIOMMU takes only a device with a vDEVICE on it
    const viommu = hwpt.domain.viommu as ViommuObject | null;
    if (viommu && viommuGetVdevId(viommu, idev.mock) === null) return ENOENT;
    return 0;
  }
  // A hardware domain only takes hardware devices.
  return idev.mock ? EINVAL : 0;
}

