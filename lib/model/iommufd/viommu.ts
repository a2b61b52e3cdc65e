// viommu.c (7.x) beside the model: the vIOMMU, vDEVICE and HW queue objects,
// their ioctls at the ABI (IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC,
// IOMMU_HW_QUEUE_ALLOC), their destroy ops, the vIOMMU's cache invalidation
// (IOMMU_HWPT_INVALIDATE on a vIOMMU ID) and its mmap regions (driver.c:
// _iommufd_alloc_mmap, main.c: iommufd_fops_mmap), with the mock driver's
// side of each (selftest.c: mock_viommu_*, mock_hw_queue_*).
//
// Object lifetimes, as the kernel counts them in obj->users:
// - a vIOMMU holds its nesting parent HWPT; every vDEVICE, vEVENTQ, HW queue
//   and nested HWPT allocated on it holds the vIOMMU, and so does every live
//   mapping of its mmap region (iommufd_fops_vma_open);
// - a vDEVICE holds no user reference on its device (only wait_cnt): the
//   device can be destroyed, and then its vDEVICE is destroyed with it and
//   its ID left a tombstone (device.c:iommufd_device_remove_vdev);
// - a HW queue at index i > 0 holds the one at i - 1 (iommufd_hw_queue_depend),
//   and pins its guest queue's pages through an internal access that locks
//   the IOAS areas against unmap (EBUSY) and takes an object ID of its own.
import { EEXIST, EFAULT, EINVAL, EIO, ENOENT, ENOMEM, ENXIO, EOPNOTSUPP, EOVERFLOW, EPERM, ERANGE, E2BIG } from '../errno.ts';
import { IOMMU_READ, type AccessLike, type Area } from '../io-pagetable.ts';
import type { DeviceObject, HwptPagingObject, IoasObject, IommufdModel } from '../iommufd.ts';
import type { MockDevice } from '../mock.ts';
import { IommufdObject } from '../objects.ts';
import { ULONG_MAX, U64_MAX } from '../pages.ts';
import { PAGE_SIZE } from '../process.ts';
import { ModelCannotAnswer } from '../uaccess.ts';
import { VeventqObject } from './eventq.ts';
import { field, iommufdUcmdRespond, setField, type Ucmd } from './ucmd.ts';

// include/uapi/linux/iommufd.h
const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
// iommufd_test.h
const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1;
const MOCK_DEV_CACHE_ID_MAX = 3;
const MOCK_DEV_CACHE_NUM = 4;
const IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
const IOMMU_TEST_HW_QUEUE_MAX = 2;
/** sizeof(struct iommu_viommu_selftest), offsetofend(.., out_data) */
const VIOMMU_SELFTEST_SIZE = 24;
const VIOMMU_SELFTEST_MIN = 8;
/** sizeof(struct iommu_viommu_invalidate_selftest) */
const VIOMMU_INVALIDATE_SELFTEST_SIZE = 12;

const u32 = (v: number | undefined): number => (v ?? 0) >>> 0;

// ------------------------------------------------------------------ objects

/** struct iommufd_mmap: a region of the iommufd's mmap space, owned by an object (mt_mmap). */
export interface MmapRegion {
  readonly owner: IommufdObject;
  /** The offset userspace passes to mmap (vm_pgoff << PAGE_SHIFT). */
  readonly offset: bigint;
  readonly length: bigint;
}

/** struct iommufd_viommu + struct mock_viommu */
export class ViommuObject extends IommufdObject {
  readonly type = 'viommu' as const;
  /** viommu->vdevs: virt_id -> vDEVICE */
  readonly vdevs = new Map<bigint, VdeviceObject>();
  /** viommu->veventqs, in allocation order */
  readonly veventqs: VeventqObject[] = [];
  /** mock_viommu->hw_queue[IOMMU_TEST_HW_QUEUE_MAX] */
  readonly hwQueues: (HwQueueObject | null)[] = [null, null];
  /** mock_viommu->mmap_offset, when the vIOMMU was allocated with data */
  mmap: MmapRegion | null = null;
  /** *mock_viommu->page: what a mapping of the region reads at offset 0 */
  pageWord = 0;
  constructor(
    readonly hwpt: HwptPagingObject,
    readonly viommuType: number,
  ) {
    super();
  }
}

/** struct iommufd_vdevice */
export class VdeviceObject extends IommufdObject {
  readonly type = 'vdevice' as const;
  constructor(
    readonly viommu: ViommuObject,
    readonly idev: DeviceObject,
    readonly virtId: bigint,
  ) {
    super();
  }
}

/** struct iommufd_hw_queue + struct mock_hw_queue */
export class HwQueueObject extends IommufdObject {
  readonly type = 'hw_queue' as const;
  viommu: ViommuObject | null = null;
  /** The internal access pinning the queue's pages, and what it pinned. */
  access: InternalAccess | null = null;
  /** Set once mock_hw_queue_init_phys accepted the queue (hw_queue->destroy). */
  index: number | null = null;
  prev: HwQueueObject | null = null;
}

/** An internal iommufd_access (device.c:iommufd_access_create_internal): an IOMMUFD_OBJ_ACCESS with an ID, no fd. */
export class InternalAccess extends IommufdObject implements AccessLike {
  readonly type = 'access' as const;
  ioas: IoasObject | null = null;
  /** access->iova_alignment = PAGE_SIZE */
  readonly iovaAlignment = PAGE_SIZE;
  /** The per-area pins of iommufd_access_pin_pages with lock_area. */
  segments: { area: Area; range: { start: number; last: number } }[] = [];
  /** No unmap op: iommufd_access_notify_unmap skips an internal access. */
  notifyUnmap(): void {}
}

/** What IommufdModel lends these ops: its private machinery, by name. */
export interface ViommuContext {
  readonly ctx: IommufdModel;
  /** device.c:iommufd_access_change_ioas for an internal access (attach, or detach with null). */
  accessChangeIoas(access: InternalAccess, ioas: IoasObject | null): number;
  /** The ctx's mt_mmap. */
  readonly mmaps: MmapRegion[];
  /** The next number of a file (fd) the context hands out. */
  nextFileNumber(): number;
  /** A vEVENTQ's file is open (it holds a reference until closed). */
  openFile(veventq: VeventqObject): void;
}

// ------------------------------------------------------------------ IOMMU_VIOMMU_ALLOC

/**
 * viommu.c:iommufd_viommu_alloc_ioctl + selftest.c:mock_viommu_init. `data` is
 * the user's data_len bytes (null for data_len 0, or when data_uptr faults:
 * `dataFault`); on success `dataOut` is what iommu_copy_struct_to_user writes back.
 */
export function viommuAlloc(
  vc: ViommuContext,
  args: { flags: number; type: number; devId: number; hwptId: number; dataLen: number; data: Uint8Array | null; dataFault: boolean },
): { errno: number; viommu: ViommuObject | null; dataOut: Uint8Array | null } {
  const { ctx } = vc;
  const fail = (errno: number) => ({ errno, viommu: null, dataOut: null });
  if (u32(args.flags) || u32(args.type) === IOMMU_VIOMMU_TYPE_DEFAULT) return fail(EOPNOTSUPP);
  const idev = ctx.objects.get<DeviceObject>(u32(args.devId), 'device');
  if (!idev) return fail(ENOENT);
  // mock_get_viommu_size: only IOMMU_VIOMMU_TYPE_SELFTEST; real drivers' vIOMMUs are not modelled
  if (!idev.mock) throw new ModelCannotAnswer('a vIOMMU of a real IOMMU driver');
  if (u32(args.type) !== IOMMU_VIOMMU_TYPE_SELFTEST) return fail(EOPNOTSUPP);
  const hwpt = ctx.objects.get<HwptPagingObject>(u32(args.hwptId), 'hwpt_paging');
  if (!hwpt) return fail(ENOENT);
  if (!hwpt.nestParent) return fail(EINVAL);
  // _iommufd_object_alloc_ucmd: the ID is taken now, released by the dispatcher on failure
  const viommu = new ViommuObject(hwpt, u32(args.type));
  const rc = ctx.objects.reserve(viommu);
  if (rc) return fail(rc);
  hwpt.users++;
  const abort = (errno: number) => {
    // iommufd_object_abort_and_destroy → iommufd_viommu_destroy (viommu->ops not yet set)
    hwpt.users--;
    ctx.objects.abort(viommu);
    return fail(errno);
  };
  let dataOut: Uint8Array | null = null;
  if (args.dataLen) {
    // iommu_copy_struct_from_user(&data, user_data, IOMMU_VIOMMU_TYPE_SELFTEST, out_data)
    if (args.dataLen < VIOMMU_SELFTEST_MIN || args.dataLen > VIOMMU_SELFTEST_SIZE) return abort(EINVAL);
    if (args.dataFault || !args.data) return abort(EFAULT);
    const data = new Uint8Array(VIOMMU_SELFTEST_SIZE);
    data.set(args.data.subarray(0, args.dataLen));
    const dv = new DataView(data.buffer);
    const inData = dv.getUint32(0, true);
    // iommufd_viommu_alloc_mmap(.., PAGE_SIZE * 2, &mmap_offset)
    const offset = mmapAllocRange(vc.mmaps, 2n * PAGE_SIZE);
    viommu.mmap = { owner: viommu, offset, length: 2n * PAGE_SIZE };
    vc.mmaps.push(viommu.mmap);
    viommu.pageWord = inData;
    dv.setUint32(4, inData, true);
    dv.setBigUint64(8, offset, true);
    dv.setBigUint64(16, 2n * PAGE_SIZE, true);
    // iommu_copy_struct_to_user → copy_struct_to_user(uptr, data_len, &data, sizeof(data))
    dataOut = data.slice(0, args.dataLen);
  }
  // finalized (or aborted) by the dispatcher, as ucmd->new_obj
  return { errno: 0, viommu, dataOut };
}

/** viommu.c:iommufd_viommu_destroy + selftest.c:mock_viommu_destroy */
export function viommuDestroy(vc: ViommuContext, viommu: ViommuObject): void {
  if (viommu.mmap) {
    const i = vc.mmaps.indexOf(viommu.mmap);
    if (i >= 0) vc.mmaps.splice(i, 1);
    viommu.mmap = null;
  }
  viommu.hwpt.users--;
  viommu.vdevs.clear();
}

/** maple tree mtree_alloc_range(&mt_mmap, .., length, PAGE_SIZE, ULONG_MAX): the lowest free range from PAGE_SIZE on. */
function mmapAllocRange(regions: readonly MmapRegion[], length: bigint): bigint {
  let start = PAGE_SIZE;
  for (const r of [...regions].sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0))) {
    if (start + length <= r.offset) break;
    if (r.offset + r.length > start) start = r.offset + r.length;
  }
  return start;
}

// ------------------------------------------------------------------ mmap of the iommufd

/**
 * main.c:iommufd_fops_mmap, after the mm core (which rounds the length up to
 * pages): only the exact region, shared and not executable. On success the
 * owner is referenced until the mapping goes (iommufd_fops_vma_close).
 */
export function iommufdMmap(vc: ViommuContext, args: { length: bigint; shared: boolean; exec: boolean; offset: bigint }): { errno: number; region: MmapRegion | null } {
  const length = (args.length + PAGE_SIZE - 1n) & ~(PAGE_SIZE - 1n);
  if (!args.shared) return { errno: EINVAL, region: null };
  if (args.exec) return { errno: EPERM, region: null };
  // mtree_load(vm_pgoff << PAGE_SHIFT): the region containing the offset
  const region = vc.mmaps.find((r) => args.offset >= r.offset && args.offset < r.offset + r.length);
  if (!region || region.owner.users === 0) return { errno: ENXIO, region: null };
  // "only allow the exact immap thing to be mapped"
  if (args.offset !== region.offset || length !== region.length) return { errno: ENXIO, region: null };
  region.owner.users++;
  return { errno: 0, region };
}

/** main.c:iommufd_fops_vma_close */
export function iommufdMunmap(region: MmapRegion): void {
  region.owner.users--;
}

// ------------------------------------------------------------------ IOMMU_VDEVICE_ALLOC

/** viommu.c:iommufd_vdevice_alloc_ioctl */
export function vdeviceAlloc(vc: ViommuContext, args: { viommuId: number; devId: number; virtId: bigint }): { errno: number; vdeviceId: number } {
  const { ctx } = vc;
  const fail = (errno: number) => ({ errno, vdeviceId: 0 });
  // "virt_id indexes an xarray"
  if (args.virtId > ULONG_MAX) return fail(EINVAL);
  const viommu = ctx.objects.get<ViommuObject>(u32(args.viommuId), 'viommu');
  if (!viommu) return fail(ENOENT);
  const idev = ctx.objects.get<DeviceObject>(u32(args.devId), 'device');
  if (!idev) return fail(ENOENT);
  // viommu->iommu_dev != __iommu_get_iommu_dev(idev->dev): every mock device sits on the one mock IOMMU
  if (!idev.mock) return fail(EINVAL);
  if (idev.vdev) return fail(EEXIST);
  const vdev = new VdeviceObject(viommu, idev, args.virtId);
  const rc = ctx.objects.reserve(vdev);
  if (rc) return fail(rc);
  viommu.users++;
  idev.vdev = vdev;
  // xa_insert(&viommu->vdevs, virt_id): -EBUSY is reported as EEXIST; then iommufd_vdevice_abort
  if (viommu.vdevs.has(args.virtId)) {
    viommu.users--;
    idev.vdev = null;
    ctx.objects.abort(vdev);
    return fail(EEXIST);
  }
  viommu.vdevs.set(args.virtId, vdev);
  ctx.objects.finalize(vdev);
  return { errno: 0, vdeviceId: vdev.id };
}

/** viommu.c:iommufd_vdevice_destroy → iommufd_vdevice_abort */
export function vdeviceDestroy(vdev: VdeviceObject): void {
  if (vdev.viommu.vdevs.get(vdev.virtId) === vdev) vdev.viommu.vdevs.delete(vdev.virtId);
  vdev.viommu.users--;
  vdev.idev.vdev = null;
}

/**
 * device.c:iommufd_device_pre_destroy → iommufd_device_remove_vdev: a device
 * destroyed under its vDEVICE takes the vDEVICE with it, and the vDEVICE's ID
 * stays reserved (iommufd_object_tombstone_user): IOMMU_DESTROY of it is ENOENT.
 */
export function deviceRemoveVdev(vc: ViommuContext, idev: DeviceObject): void {
  const vdev = idev.vdev;
  if (!vdev) return;
  vc.ctx.objects.tombstone(vdev);
  vdeviceDestroy(vdev);
}

/** drivers/iommu/iommufd/driver.c:iommufd_viommu_get_vdev_id: the device's virt_id on this vIOMMU, or null (ENOENT). */
export function viommuGetVdevId(viommu: ViommuObject, mock: MockDevice): bigint | null {
  for (const [virtId, vdev] of viommu.vdevs) if (vdev.idev.mock === mock) return virtId;
  return null;
}

// ------------------------------------------------------------------ cache invalidation on a vIOMMU

/**
 * selftest.c:mock_viommu_cache_invalidate, with iommu_copy_struct_from_full_user_array:
 * `entries` are the user's entry_num entries of entry_len bytes (each read with
 * copy_struct_from_user's rules when entry_len is not sizeof the struct).
 * Returns the errno and how many entries were handled.
 */
export function viommuCacheInvalidate(
  viommu: ViommuObject,
  args: { dataType: number; entryLen: number; entryNum: number; entries: Uint8Array | null },
): { errno: number; entryNum: number } {
  const { entryLen, entryNum } = args;
  // "A zero-length array is allowed to validate the array type"
  if (entryNum === 0 && u32(args.dataType) === IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST) return { errno: 0, entryNum: 0 };
  if (u32(args.dataType) !== IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST) return { errno: EINVAL, entryNum: 0 };
  if (!entryNum) return { errno: EINVAL, entryNum: 0 };
  const cmds: { flags: number; vdevId: number; cacheId: number }[] = [];
  const bytes = args.entries;
  for (let i = 0; i < entryNum; i++) {
    const at = i * entryLen;
    if (!bytes || at + entryLen > bytes.length) return { errno: EFAULT, entryNum: 0 };
    // copy_struct_from_user(kdst, 12, usrc, entry_len): a longer entry needs a zero tail
    if (entryLen > VIOMMU_INVALIDATE_SELFTEST_SIZE && bytes.subarray(at + VIOMMU_INVALIDATE_SELFTEST_SIZE, at + entryLen).some((b) => b !== 0)) {
      return { errno: E2BIG, entryNum: 0 };
    }
    const e = new Uint8Array(VIOMMU_INVALIDATE_SELFTEST_SIZE);
    e.set(bytes.subarray(at, at + Math.min(entryLen, VIOMMU_INVALIDATE_SELFTEST_SIZE)));
    const dv = new DataView(e.buffer);
    cmds.push({ flags: dv.getUint32(0, true), vdevId: dv.getUint32(4, true), cacheId: dv.getUint32(8, true) });
  }
  let done = 0;
  for (const cur of cmds) {
    if (cur.flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) return { errno: EOPNOTSUPP, entryNum: done };
    if (cur.cacheId > MOCK_DEV_CACHE_ID_MAX) return { errno: EINVAL, entryNum: done };
    const vdev = viommu.vdevs.get(BigInt(cur.vdevId));
    if (!vdev?.idev.mock) return { errno: EINVAL, entryNum: done };
    const cache = vdev.idev.mock.cache;
    if (cur.flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) cache.fill(0, 0, MOCK_DEV_CACHE_NUM);
    else cache[cur.cacheId] = 0;
    done++;
  }
  return { errno: 0, entryNum: done };
}

/** selftest.c:iommufd_test_dev_check_cache */
export function testDevCheckCache(ctx: IommufdModel, args: { devId: number; cacheId: number; cache: number }): { errno: number } {
  const idev = ctx.objects.get<DeviceObject>(u32(args.devId), 'device');
  if (!idev) return { errno: ENOENT };
  if (!idev.mock) throw new ModelCannotAnswer('IOMMU_TEST_OP_DEV_CHECK_CACHE on a device that is not a mock device');
  const id = u32(args.cacheId);
  if (id > MOCK_DEV_CACHE_ID_MAX || idev.mock.cache[id] !== u32(args.cache)) return { errno: EINVAL };
  return { errno: 0 };
}

// ------------------------------------------------------------------ IOMMU_HW_QUEUE_ALLOC

/** viommu.c:iommufd_hw_queue_alloc_ioctl + selftest.c:mock_hw_queue_init_phys */
export function hwQueueAlloc(
  vc: ViommuContext,
  args: { flags: number; viommuId: number; type: number; index: number; iova: bigint; length: bigint },
): { errno: number; hwQueue: HwQueueObject | null } {
  const { ctx } = vc;
  const fail = (errno: number) => ({ errno, hwQueue: null });
  if (u32(args.flags) || u32(args.type) === IOMMU_HW_QUEUE_TYPE_DEFAULT) return fail(EOPNOTSUPP);
  if (!args.length) return fail(EINVAL);
  // check_add_overflow(nesting_parent_iova, length - 1, &last)
  if (args.iova + args.length - 1n > U64_MAX) return fail(EOVERFLOW);
  const viommu = ctx.objects.get<ViommuObject>(u32(args.viommuId), 'viommu');
  if (!viommu) return fail(ENOENT);
  // mock_viommu_get_hw_queue_size: IOMMU_HW_QUEUE_TYPE_SELFTEST only
  if (u32(args.type) !== IOMMU_HW_QUEUE_TYPE_SELFTEST) return fail(EOPNOTSUPP);
  const q = new HwQueueObject();
  const rc = ctx.objects.reserve(q);
  if (rc) return fail(rc);
  const abort = (errno: number) => {
    // iommufd_object_abort_and_destroy → iommufd_hw_queue_destroy
    hwQueueDestroy(vc, q);
    ctx.objects.abort(q);
    return fail(errno);
  };

  // iommufd_hw_queue_alloc_phys
  const alignedIova = args.iova & ~(PAGE_SIZE - 1n);
  const offset = args.iova - alignedIova;
  if (offset + args.length > U64_MAX || offset + args.length + PAGE_SIZE - 1n > U64_MAX) return abort(ERANGE);
  const npages = (offset + args.length + PAGE_SIZE - 1n) / PAGE_SIZE;
  const length = npages * PAGE_SIZE;
  // kvzalloc_objs(*pages, max_npages, GFP_KERNEL | __GFP_NOWARN): beyond what kvmalloc allows, ENOMEM
  if (npages * 8n > 1n << 31n) return abort(ENOMEM);
  const access = new InternalAccess();
  const rcAccess = ctx.objects.reserve(access);
  if (rcAccess) return abort(rcAccess);
  ctx.objects.finalize(access);
  access.users++; // "The calling driver is a user until iommufd_access_destroy()"
  const destroyAccess = (errno: number) => {
    accessDestroyInternal(vc, access);
    return abort(errno);
  };
  const rcAttach = vc.accessChangeIoas(access, viommu.hwpt.ioas);
  if (rcAttach) return destroyAccess(rcAttach);
  const rcPin = accessPinPagesLocked(access, alignedIova, length);
  if (rcPin) return destroyAccess(rcPin);
  // "Validate if the underlying physical pages are contiguous"
  if (npages > 1n) {
    throw new ModelCannotAnswer('a HW queue over more than one page (whether its pages are physically contiguous)', `${npages} pages`);
  }
  q.viommu = viommu;
  viommu.users++;
  q.access = access;
  // mock_hw_queue_init_phys(hw_queue, index, base_pa)
  const index = u32(args.index);
  if (index >= IOMMU_TEST_HW_QUEUE_MAX) return abort(EINVAL);
  if (viommu.hwQueues[index]) return abort(EEXIST);
  let prev: HwQueueObject | null = null;
  if (index) {
    prev = viommu.hwQueues[index - 1] ?? null;
    if (!prev) return abort(EIO);
  }
  // base_addr_pa == iommu_iova_to_phys(s2_parent, base_addr): the core's translation is right (else a kernel bug, EFAULT)
  if (prev) prev.users++; // iommufd_hw_queue_depend
  q.prev = prev;
  q.index = index;
  viommu.hwQueues[index] = q;
  // finalized (or aborted) by the dispatcher, as ucmd->new_obj
  return { errno: 0, hwQueue: q };
}

/** viommu.c:iommufd_hw_queue_destroy (with mock_hw_queue_destroy once the queue was accepted) */
export function hwQueueDestroy(vc: ViommuContext, q: HwQueueObject): void {
  if (q.index !== null && q.viommu) {
    q.viommu.hwQueues[q.index] = null;
    if (q.prev) q.prev.users--; // iommufd_hw_queue_undepend
  }
  if (q.access) {
    // iommufd_hw_queue_destroy_access: unpin, detach, destroy the internal access
    accessUnpinPagesLocked(q.access);
    accessDestroyInternal(vc, q.access);
    q.access = null;
  }
  if (q.viommu) q.viommu.users--;
}

/** device.c:iommufd_access_pin_pages(access, iova, length, pages, 0) of an internal access (lock_area). */
function accessPinPagesLocked(access: InternalAccess, iova: bigint, length: bigint): number {
  const last = iova + length - 1n;
  if (last > ULONG_MAX) return EOVERFLOW;
  if (!access.ioas) return ENOENT;
  const { steps, done } = access.ioas.iopt.contig(iova, last);
  const unwind = (errno: number) => {
    accessUnpinPagesLocked(access);
    return errno;
  };
  for (const { area, cur, last: segLast } of steps) {
    const isDone = last <= area.last;
    if (area.startByteOf(cur) % PAGE_SIZE) return unwind(EINVAL);
    if (!isDone && area.startByteOf(area.last) % PAGE_SIZE !== PAGE_SIZE - 1n) return unwind(EINVAL);
    if (!(area.iommuProt & IOMMU_READ)) return unwind(EPERM);
    const range = { start: area.indexOf(cur), last: area.indexOf(segLast) };
    const rc = area.pages.hold([range]);
    if (rc) return unwind(rc);
    area.numAccesses++;
    area.numLocks++;
    access.segments.push({ area, range });
  }
  if (!done) return unwind(ENOENT);
  return 0;
}

/** device.c:iommufd_access_unpin_pages of an internal access (iopt_area_remove_access with unlock_area). */
function accessUnpinPagesLocked(access: InternalAccess): void {
  for (const s of access.segments) {
    s.area.pages.release([s.range]);
    s.area.numAccesses--;
    s.area.numLocks--;
  }
  access.segments = [];
}

/** iommufd_access_detach_internal + iommufd_access_destroy_internal (iommufd_object_destroy_user). */
function accessDestroyInternal(vc: ViommuContext, access: InternalAccess): void {
  vc.accessChangeIoas(access, null);
  access.users--;
  vc.ctx.objects.erase(access);
}

// ------------------------------------------------------------------ the ioctls at the ABI

/** IOMMU_VIOMMU_ALLOC */
export function iommufdViommuAllocIoctl(ucmd: Ucmd): number {
  const vc = ucmd.ctx.viommuContext;
  const dataLen = field(ucmd, 'data_len');
  const uptr = field<bigint>(ucmd, 'data_uptr');
  // Only a data_len the driver takes (8..24) is ever read from data_uptr.
  const taken = dataLen >= VIOMMU_SELFTEST_MIN && dataLen <= VIOMMU_SELFTEST_SIZE;
  const data = taken ? ucmd.user.read(uptr, dataLen) : null;
  const r = viommuAlloc(vc, {
    flags: field(ucmd, 'flags'),
    type: field(ucmd, 'type'),
    devId: field(ucmd, 'dev_id'),
    hwptId: field(ucmd, 'hwpt_id'),
    dataLen,
    data: data ? data.slice() : null,
    dataFault: taken && !data,
  });
  if (r.errno) return -r.errno;
  const viommu = r.viommu!;
  let rc = 0;
  // copy_to_user in mock_viommu_init (its failure destroys the region), then iommufd_ucmd_respond
  if (r.dataOut && !ucmd.user.write(uptr, r.dataOut)) rc = -EFAULT;
  if (!rc) {
    setField(ucmd, 'out_viommu_id', viommu.id);
    rc = iommufdUcmdRespond(ucmd);
  }
  if (rc) {
    viommuDestroy(vc, viommu);
    ucmd.ctx.objects.abort(viommu);
  } else {
    ucmd.ctx.objects.finalize(viommu);
  }
  return rc;
}

/** IOMMU_VDEVICE_ALLOC */
export function iommufdVdeviceAllocIoctl(ucmd: Ucmd): number {
  const r = vdeviceAlloc(ucmd.ctx.viommuContext, { viommuId: field(ucmd, 'viommu_id'), devId: field(ucmd, 'dev_id'), virtId: field<bigint>(ucmd, 'virt_id') });
  if (r.errno) return -r.errno;
  setField(ucmd, 'out_vdevice_id', r.vdeviceId);
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) ucmd.ctx.destroy(r.vdeviceId);
  return rc;
}

/** IOMMU_HW_QUEUE_ALLOC */
export function iommufdHwQueueAllocIoctl(ucmd: Ucmd): number {
  const vc = ucmd.ctx.viommuContext;
  const r = hwQueueAlloc(vc, {
    flags: field(ucmd, 'flags'),
    viommuId: field(ucmd, 'viommu_id'),
    type: field(ucmd, 'type'),
    index: field(ucmd, 'index'),
    iova: field<bigint>(ucmd, 'nesting_parent_iova'),
    length: field<bigint>(ucmd, 'length'),
  });
  if (r.errno) return -r.errno;
  const q = r.hwQueue!;
  setField(ucmd, 'out_hw_queue_id', q.id);
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) {
    hwQueueDestroy(vc, q);
    ucmd.ctx.objects.abort(q);
  } else {
    ucmd.ctx.objects.finalize(q);
  }
  return rc;
}
