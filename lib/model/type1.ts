// Reference model of the real VFIO container (drivers/vfio/container.c) with
// the type1 IOMMU driver (drivers/vfio/vfio_iommu_type1.c), Linux 6.12, and
// the group ioctls that attach groups to it (drivers/vfio/group.c). Pure: the
// platform (type1-platform.ts) and the process (process.ts) are inputs.
//
// Type1ContainerModel mirrors lib/kernel/vfio.ts VfioContainer method for
// method (same arguments, same result shapes); Type1GroupModel mirrors
// VfioGroup's container side. Checks run in the kernel's order, so the first
// failing one decides the errno.
//
// Not modelled: emulated (mdev) groups and pinning through the device
// interfaces (vfio_pin_pages, dma_rw), noiommu, mm changes of
// VFIO_DMA_MAP_FLAG_VADDR (one process), allocation failures, VM_PFNMAP and
// reserved pages (never charged), and the dirty bitmap's contents (only the
// errno: the bits go to user memory, outside the result shapes).
import * as U from '../uapi/index.ts';
import type { ModelProcess } from './process.ts';
import { PAGE_SIZE } from './process.ts';
import { domainsPgsizeBitmap, type Type1Platform, type Type1ReservedRegion } from './type1-platform.ts';

export type { Type1Platform, Type1ReservedRegion } from './type1-platform.ts';

const EPERM = 1, ENOENT = 2, EBADF = 9, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19,
  EINVAL = 22, ENOTTY = 25, ENOSPC = 28, EOVERFLOW = 75, EBADFD = 77;

const U64 = (1n << 64n) - 1n;
const u64 = (x: bigint) => x & U64;
const PAGE_MASK = u64(~(PAGE_SIZE - 1n));
/** DIRTY_BITMAP_PAGES_MAX: INT_MAX. */
const DIRTY_BITMAP_PAGES_MAX = 0x7fff_ffffn;
/** DIRTY_BITMAP_BYTES(n): ALIGN(n, 64) / 8. */
const dirtyBitmapBytes = (n: bigint) => ((n + 63n) / 64n) * 8n;
const DIRTY_BITMAP_SIZE_MAX = dirtyBitmapBytes(DIRTY_BITMAP_PAGES_MAX);
/** __ffs: index of the lowest set bit (x != 0). */
const ffs = (x: bigint) => {
  if (x === 0n) throw new Error('__ffs(0) is undefined');
  let n = 0n;
  while (((x >> n) & 1n) === 0n) n++;
  return n;
};

export interface Errno {
  errno: number;
}

export type Type1Info = Errno & U.Type1InfoFields;

export interface Type1ModelOptions {
  /** USER_PTR_MAX, the bound access_ok() checks (type1-platform.ts readUserPtrMax); default 4-level paging. */
  userPtrMax?: bigint;
  /**
   * The range checks of later kernels (probed: lib/kernel/features.ts type1WrapOverflow): "vfio/type1:
   * sanitize for overflow using check_*_overflow()" and "vfio/type1: handle DMA map/unmap up to the
   * addressable limit" made a range that wraps EOVERFLOW, checked right after a zero size and before
   * the protection and alignment checks (vfio_dma_do_map, vfio_dma_do_unmap,
   * vfio_iommu_type1_dirty_pages). Default: 6.12's, where a wrap is EINVAL after them.
   */
  wrapOverflow?: boolean;
  /**
   * Whether type1 still claims VFIO_TYPE1_NESTING_IOMMU (6.12: CHECK_EXTENSION 1, SET_IOMMU opens a v2
   * container that fails the attach). Later kernels removed it ("vfio: Remove VFIO_TYPE1_NESTING_IOMMU":
   * __VFIO_RESERVED_TYPE1_NESTING_IOMMU in vfio_iommu_type1.c): CHECK_EXTENSION 0, SET_IOMMU ENODEV.
   * Probed: lib/kernel/features.ts vfio.type1Nesting. Default: 6.12's.
   */
  nesting?: boolean;
  /**
   * Whether VFIO_IOMMU_GET_INFO pads each capability to 8 bytes: "vfio: align capability structures"
   * (vfio_main.c:vfio_info_cap_add, `size = ALIGN(size, sizeof(u64))`). Without it (6.1) the chain is
   * packed: dma_avail takes 12 bytes, so the iova_range capability starts 4 bytes earlier and argsz is
   * 4 bytes less. Probed: lib/kernel/features.ts type1InfoCapsAligned. Default: 6.12's (aligned).
   * 6.1.192 (the published 6.1.192 audit parts, GET_INFO's argsz 116 where 6.12.117's is 120):
   * drivers/vfio/vfio_main.c:vfio_info_cap_add, lines 1711 and 1733, `buf = krealloc(caps->buf, caps->size
   * + size, GFP_KERNEL);` ... `caps->size += size;` (no ALIGN), and vfio_iommu_type1.c:
   * vfio_iommu_dma_avail_build_caps, lines 2855-2856, adds `sizeof(cap_dma_avail)` (12 bytes).
   */
  capsAligned?: boolean;
  /**
   * Where a read-only pin of a never-written private page pins the shared zero page itself (kernels
   * before "mm/gup: reliable R/O long-term pinning in COW mappings", 6.2: probed by lib/kernel/features.ts
   * type1ReadOnlyPinsZeroPage), whether the page at a user address is that zero page, as the platform
   * shows it after the kernel's pin (/proc/self/pagemap). The zero page is PageReserved, so
   * vfio_pin_pages_remote finds it is_invalid_reserved_pfn and neither limits nor charges it ("Reserved
   * pages aren't counted against the user"); put_pfn never unpins it. Unset (6.12: GUP unshares it
   * into a new anonymous page): every pinned page is charged. 6.1.192: drivers/vfio/vfio_iommu_type1.c:
   * vfio_pin_pages_remote, lines 733-737, "Reserved pages aren't counted against the user" ... `if (!rsvd &&
   * !vfio_find_vpfn(dma, iova)) {`.
   */
  zeroPage?: ((address: bigint) => boolean) | null;
  /**
   * KF-0006 (docs/findings/KF-0006.md; probed: lib/kernel/features.ts type1UnmapEndWrapLeaks): removing a
   * mapping whose last byte is IOVA 2^64 - 1 neither unmaps nor unpins nor uncharges it. 6.12.117
   * drivers/vfio/vfio_iommu_type1.c:vfio_unmap_unpin computes `end = dma->iova + dma->size`, which wraps to
   * 0, so `while (iova < end)` never runs: `unlocked` stays 0 and `vfio_lock_acct(dma, -unlocked, true)`
   * gives nothing back to the mapping's mm. 7.2.13 walks `pos` from 0 to `dma->size` instead. Default: 6.12's
   * (it leaks).
   */
  unmapEndWrapLeaks?: boolean;
}

/** struct vfio_dma */
interface Dma {
  iova: bigint;
  size: bigint;
  vaddr: bigint;
  /** VFIO_DMA_MAP_FLAG_READ/WRITE bits (the same values as IOMMU_READ/WRITE). */
  prot: number;
  vaddrInvalid: boolean;
  /** capable(CAP_IPC_LOCK) at map time. */
  lockCap: boolean;
  /** Pages charged to mm->locked_vm for this dma. */
  lockedVm: bigint;
  /** dma->mm: the mm of the process that mapped it (vfio_dma_do_map: current->mm), which its pages are charged to. */
  mm: ModelProcess;
  iommuMapped: boolean;
  /** A dirty bitmap is allocated (dirty tracking was on). */
  hasBitmap: boolean;
}

/** struct vfio_domain: one IOMMU domain and the groups attached to it. */
interface Domain {
  platform: Type1Platform;
  groups: Type1GroupModel[];
  enforceCacheCoherency: boolean;
}

interface IovaRange {
  start: bigint;
  /** Inclusive. */
  end: bigint;
}

/** The user struct vfio_bitmap (pgsize, size, data). */
interface UserBitmap {
  pgsize: bigint;
  size: bigint;
  data: bigint;
}

class IoctlError extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/** struct vfio_iommu: the type1 driver's data, alive between SET_IOMMU and the last group's detach. */
class Type1Iommu {
  readonly domains: Domain[] = [];
  /** Sorted by iova, disjoint (the rb-tree dma_list). */
  dmas: Dma[] = [];
  iovaList: IovaRange[] = [];
  dmaAvail: number;
  vaddrInvalidCount = 0;
  pgsizeBitmap = PAGE_MASK;
  /** The bits of pgsizeBitmap the domains' platforms leave unknown (Type1Platform.pgsizeBitsUnknown), written as 0. */
  pgsizeBitsUnknown = 0n;
  dirtyPageTracking = false;

  constructor(
    readonly v2: boolean,
    readonly nesting: boolean,
    dmaEntryLimit: number,
    /** The calling process (current): the container's, or a forked child's (Type1ContainerModel.asProcess). */
    public process: ModelProcess,
    readonly wrapOverflow = false,
    /** Type1ModelOptions.nesting */
    readonly claimsNesting = true,
    /** Type1ModelOptions.capsAligned and .zeroPage */
    readonly older: Pick<Type1ModelOptions, 'capsAligned' | 'zeroPage' | 'unmapEndWrapLeaks'> = {},
  ) {
    this.dmaAvail = dmaEntryLimit;
  }

  /** 1 << __ffs(pgsize_bitmap): the unit every MAP/UNMAP must be aligned to. */
  get minPgsize(): bigint {
    return 1n << ffs(this.pgsizeBitmap);
  }

  /**
   * vfio_find_dma(start, size): a dma overlapping [start, start+size), with
   * the kernel's u64 arithmetic: when start+size wraps to 0 every node
   * compares "left" and nothing is found. Several dmas may overlap; callers
   * only use the answer in ways that do not depend on which one the tree
   * walk would meet.
   */
  findDma(start: bigint, size: bigint): Dma | null {
    if (!this.older.unmapEndWrapLeaks) {
      // 7.2.13 (the series that fixed KF-0006): inclusive ends, `start + size - 1 < dma->iova` and
      // `start > dma->iova + dma->size - 1`, which do not wrap for a range that ends at 2^64.
      const last = start + (size === 0n ? 1n : size) - 1n;
      return this.dmas.find((d) => !(last < d.iova) && !(start > d.iova + d.size - 1n)) ?? null;
    }
    const end = u64(start + size);
    if (size !== 0n && end === 0n) return null;
    for (const d of this.dmas) {
      if (end <= d.iova) continue;
      if (start >= u64(d.iova + d.size)) continue;
      return d;
    }
    return null;
  }

  /** vfio_find_dma_first_node: index of the lowest dma ending after start, unless it begins at or after start+size. */
  findFirstIndex(start: bigint, size: bigint): number {
    // 7.2.13: vfio_find_dma_first_node(iommu, start, end) with the inclusive end (U64_MAX for UNMAP_ALL),
    // `start <= dma->iova + dma->size - 1`.
    if (!this.older.unmapEndWrapLeaks) {
      const j = this.dmas.findIndex((d) => start <= d.iova + d.size - 1n);
      return j < 0 || this.dmas[j]!.iova > (size === 0n ? U64 : start + size - 1n) ? -1 : j;
    }
    // 6.12.117: `start < dma->iova + dma->size`, whose sum wraps to 0 for a dma that ends at 2^64: the walk
    // never finds it, so no UNMAP_DMA (not even UNMAP_ALL) can remove it (KF-0006).
    const i = this.dmas.findIndex((d) => start < u64(d.iova + d.size));
    if (i < 0) return -1;
    if (size !== 0n && this.dmas[i]!.iova >= u64(start + size)) return -1;
    return i;
  }

  linkDma(dma: Dma): void {
    this.dmas.push(dma);
    this.dmas.sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
  }

  /** vfio_remove_dma: unmap, unpin and uncharge (vfio_unmap_unpin with do_accounting), free the entry. */
  removeDma(dma: Dma): void {
    // KF-0006 (Type1ModelOptions.unmapEndWrapLeaks): vfio_unmap_unpin's `end` wraps to 0 for a dma ending at
    // 2^64 and its loop never runs, so the pages stay charged to dma->mm (and pinned) after the dma is gone.
    const endWraps = dma.size !== 0n && u64(dma.iova + dma.size) === 0n;
    if (!(endWraps && this.older.unmapEndWrapLeaks)) {
      dma.mm.mmLockedVm -= dma.lockedVm;
      dma.lockedVm = 0n;
    }
    this.dmas = this.dmas.filter((d) => d !== dma);
    if (dma.vaddrInvalid) this.vaddrInvalidCount--;
    this.dmaAvail++;
  }

  /** vfio_iommu_iova_dma_valid: inside one iova_list range, or the list is empty. */
  iovaValid(start: bigint, end: bigint): boolean {
    return this.iovaList.length === 0 || this.iovaList.some((r) => start >= r.start && end <= r.end);
  }

  /**
   * vfio_pin_map_dma → vfio_pin_pages_remote: pins page by page (a fault
   * stops the batch there, EFAULT), charging mm->locked_vm; without
   * CAP_IPC_LOCK a page that would take locked_vm past RLIMIT_MEMLOCK fails
   * with ENOMEM. With CAP_IPC_LOCK the charge is still made
   * (__account_locked_vm with bypass_rlim): VmLck grows, VmPin does not.
   * A failure removes the whole dma, uncharging what was charged.
   */
  pinMapDma(dma: Dma, size: bigint): number {
    const proc = dma.mm;
    const limit = proc.memlockLimitPages();
    const write = (dma.prot & U.VFIO_DMA_MAP_FLAG_WRITE) !== 0;
    let pending = 0n;
    let errno = 0;
    for (let off = 0n; off < size; off += PAGE_SIZE) {
      const page = proc.memory.pageAt(u64(dma.vaddr + off));
      // pin_user_pages_remote(FOLL_WRITE if IOMMU_WRITE): check_vma_flags wants VM_WRITE for a write pin, else VM_READ.
      if (!page || (write ? !page.writable : !page.readable)) {
        errno = EFAULT;
        break;
      }
      // A write pin (FOLL_WRITE) always breaks COW into a real page; a shared page is never the zero page.
      const mapping = write || !this.older.zeroPage ? null : proc.memory.mappingAt(u64(dma.vaddr + off));
      if (mapping && !mapping.shared && this.older.zeroPage!(u64(dma.vaddr + off))) continue; // rsvd: neither limited nor charged
      if (!dma.lockCap && proc.mmLockedVm + pending + 1n > limit) {
        errno = ENOMEM;
        break;
      }
      pending++;
    }
    proc.mmLockedVm += pending;
    dma.lockedVm += pending;
    dma.size = errno === 0 ? size : dma.size;
    dma.iommuMapped = true;
    if (errno !== 0) this.removeDma(dma);
    return errno;
  }

  /** vfio_update_pgsize_bitmap: AND of the domains' bitmaps, sub-page sizes shown as PAGE_SIZE (domainsPgsizeBitmap). */
  updatePgsizeBitmap(): void {
    const { bitmap, unknown } = domainsPgsizeBitmap(this.domains.map((d) => d.platform));
    this.pgsizeBitmap = bitmap;
    this.pgsizeBitsUnknown = unknown;
  }

  // ------------------------------------------------------------ groups

  /** vfio_iommu_type1_attach_group for an IOMMU-backed group. Returns 0 or the errno. */
  attachGroup(group: Type1GroupModel): number {
    const platform = group.platform;
    if (this.vaddrInvalidCount > 0) return EBUSY; // attach may need to pin
    if (this.domains.some((d) => d.groups.includes(group))) return EINVAL;
    // iommu_enable_nesting: the Intel driver has no enable_nesting op → EINVAL.
    if (this.nesting) return EINVAL;
    const { start: aperStart, last: aperEnd } = platform.aperture;
    if (this.aperConflict(aperStart, aperEnd)) return EINVAL;
    const resv = platform.reservedRegions;
    if (resv.some((r) => r.type !== 'direct-relaxable' && this.findDma(r.start, r.last - r.start + 1n))) return EINVAL;
    const iovaCopy = aperResize(
      this.iovaList.map((r) => ({ ...r })),
      aperStart,
      aperEnd,
    );
    const excluded = resvExclude(iovaCopy, resv);
    if (excluded === null) return EINVAL;
    if (!platform.allowUnsafeInterrupts && !platform.interruptRemapping) return EPERM;
    const enforceCacheCoherency = platform.enforceCacheCoherency;
    // Join an existing compatible domain (same iommu_ops: every group here is behind the same IOMMU driver).
    const existing = this.domains.find((d) => d.enforceCacheCoherency === enforceCacheCoherency);
    if (existing) {
      existing.groups.unshift(group);
    } else {
      // vfio_iommu_replay: existing dmas are already pinned and mapped in the first domain
      // (every domain-less dma would be pinned here, but with only IOMMU-backed groups a
      // container never holds dmas without a domain).
      this.domains.unshift({ platform, groups: [group], enforceCacheCoherency });
      this.updatePgsizeBitmap();
    }
    this.iovaList = excluded;
    return 0;
  }

  /** vfio_iommu_aper_conflict */
  aperConflict(start: bigint, end: bigint): boolean {
    const list = this.iovaList;
    if (list.length === 0) return false;
    const first = list[0]!, last = list[list.length - 1]!;
    if (start > last.end || end < first.start) return true;
    if (start > first.start && this.findDma(first.start, start - first.start)) return true;
    if (end < last.end && this.findDma(end + 1n, last.end - end)) return true;
    return false;
  }

  /** vfio_iommu_type1_detach_group */
  detachGroup(group: Type1GroupModel): void {
    const domain = this.domains.find((d) => d.groups.includes(group));
    if (!domain) return;
    let iovaCopy = this.iovaList.map((r) => ({ ...r }));
    domain.groups = domain.groups.filter((g) => g !== group);
    if (domain.groups.length === 0) {
      // Last group of the last domain: every mapping goes (vfio_iommu_unmap_unpin_all).
      if (this.domains.length === 1) for (const d of [...this.dmas]) this.removeDma(d);
      this.domains.splice(this.domains.indexOf(domain), 1);
      // vfio_iommu_aper_expand: the smallest window among the remaining domains.
      if (iovaCopy.length > 0) {
        let start = 0n, end = U64;
        for (const d of this.domains) {
          if (d.platform.aperture.start > start) start = d.platform.aperture.start;
          if (d.platform.aperture.last < end) end = d.platform.aperture.last;
        }
        iovaCopy[0]!.start = start;
        iovaCopy[iovaCopy.length - 1]!.end = end;
      }
      this.updatePgsizeBitmap();
    }
    // vfio_iommu_resv_refresh: rebuild from the outer bounds minus the remaining groups' regions.
    if (iovaCopy.length > 0) {
      const start = iovaCopy[0]!.start, end = iovaCopy[iovaCopy.length - 1]!.end;
      const resv = this.domains.flatMap((d) => d.groups.flatMap((g) => g.platform.reservedRegions));
      const refreshed = resvExclude(aperResize([], start, end), resv);
      if (refreshed !== null) iovaCopy = refreshed;
      else iovaCopy = this.iovaList;
      this.iovaList = iovaCopy;
    }
  }

  /** vfio_iommu_type1_release: unpin everything. */
  release(): void {
    for (const d of [...this.dmas]) this.removeDma(d);
    this.domains.length = 0;
  }

  // ------------------------------------------------------------ ioctls

  /** vfio_iommu_type1_check_extension with a driver set. */
  checkExtension(ext: number): number {
    switch (ext) {
      case U.VFIO_TYPE1_IOMMU:
      case U.VFIO_TYPE1v2_IOMMU:
      case U.VFIO_UNMAP_ALL:
        return 1;
      case U.VFIO_TYPE1_NESTING_IOMMU:
        return this.claimsNesting ? 1 : 0;
      case U.VFIO_UPDATE_VADDR:
        return 1; // no emulated (mdev) groups
      case U.VFIO_DMA_CC_IOMMU:
        return this.domains.every((d) => d.enforceCacheCoherency) ? 1 : 0;
      default:
        return 0;
    }
  }

  /**
   * vfio_iommu_type1_get_info on the user's buffer `buf` (its length is
   * what the model may touch). Writes min(argsz, 24) bytes of the info
   * struct; the capability chain (MIGRATION, DMA_AVAIL, IOVA_RANGE, each
   * 8-aligned) only when argsz holds all of it, else argsz := the size
   * needed and nothing past the struct is written.
   */
  getInfoInto(buf: Uint8Array): number {
    if (buf.length < 16) throw new Error('GET_INFO reads 16 bytes of the user struct');
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let argsz = view.getUint32(0, true);
    if (argsz < 16) return EINVAL;
    const minsz = Math.min(argsz, U.vfio_iommu_type1_info.sizeof);
    const caps = this.buildInfoCaps(U.vfio_iommu_type1_info.sizeof);
    const INFO = U.vfio_iommu_type1_info.sizeof;
    let capOffset = 0;
    if (argsz < INFO + caps.length) {
      argsz = INFO + caps.length;
    } else {
      writeWithin(buf, INFO, caps);
      capOffset = INFO;
    }
    const info = U.vfio_iommu_type1_info.encode({
      argsz,
      flags: U.VFIO_IOMMU_INFO_PGSIZES | U.VFIO_IOMMU_INFO_CAPS,
      iova_pgsizes: this.pgsizeBitmap,
      cap_offset: capOffset,
      pad: 0,
    });
    writeWithin(buf, 0, info.subarray(0, minsz));
    return 0;
  }

  /** The capability chain as vfio_info_cap_add builds it, already shifted to start at `base`. */
  buildInfoCaps(base: number): Uint8Array {
    const parts: Uint8Array[] = [];
    const mig = U.vfio_iommu_type1_info_cap_migration.encode({
      header: { id: U.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, version: 1, next: 0 },
      flags: 0,
      pgsize_bitmap: this.minPgsize,
      max_dirty_bitmap_size: DIRTY_BITMAP_SIZE_MAX,
    });
    parts.push(mig);
    parts.push(
      U.vfio_iommu_type1_info_dma_avail.encode({ header: { id: U.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, next: 0 }, avail: this.dmaAvail }),
    );
    if (this.iovaList.length > 0) {
      parts.push(
        U.vfio_iommu_type1_info_cap_iova_range.encode({
          header: { id: U.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, next: 0 },
          nr_iovas: this.iovaList.length,
          reserved: 0,
          iova_ranges: this.iovaList.map((r) => ({ start: r.start, end: r.end })),
        }),
      );
    }
    const sizes = parts.map((p) => (this.older.capsAligned ?? true ? Math.ceil(p.length / 8) * 8 : p.length));
    const total = sizes.reduce((a, b) => a + b, 0);
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    let off = 0;
    parts.forEach((p, i) => {
      out.set(p, off);
      const next = i + 1 < parts.length ? base + off + sizes[i]! : 0;
      view.setUint32(off + 4, next, true);
      off += sizes[i]!;
    });
    return out;
  }

  /** vfio_iommu_type1_map_dma → vfio_dma_do_map */
  mapDma(m: { argsz: number; flags: number; vaddr: bigint; iova: bigint; size: bigint }): number {
    const mask = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE | U.VFIO_DMA_MAP_FLAG_VADDR;
    if (m.argsz < U.vfio_iommu_type1_dma_map.sizeof || (m.flags & ~mask) !== 0) return EINVAL;
    const setVaddr = (m.flags & U.VFIO_DMA_MAP_FLAG_VADDR) !== 0;
    const prot = m.flags & (U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE);
    const { iova, vaddr, size } = m;
    if (this.wrapOverflow) {
      if (size === 0n) return EINVAL;
      if (u64(iova + size - 1n) < iova || u64(vaddr + size - 1n) < vaddr) return EOVERFLOW;
    }
    if ((prot !== 0 && setVaddr) || (prot === 0 && !setVaddr)) return EINVAL;
    const pgsize = this.minPgsize;
    if (size === 0n || ((size | iova | vaddr) & (pgsize - 1n)) !== 0n) return EINVAL;
    if (u64(iova + size - 1n) < iova || u64(vaddr + size - 1n) < vaddr) return EINVAL;
    const found = this.findDma(iova, size);
    if (setVaddr) {
      if (!found) return ENOENT;
      if (!found.vaddrInvalid || found.iova !== iova || found.size !== size) return EINVAL;
      // vfio_change_dma_owner: same mm (one process), nothing to re-account.
      found.vaddr = vaddr;
      found.vaddrInvalid = false;
      this.vaddrInvalidCount--;
      return 0;
    }
    if (found) return EEXIST;
    if (this.dmaAvail === 0) return ENOSPC;
    if (!this.iovaValid(iova, iova + size - 1n)) return EINVAL;
    this.dmaAvail--;
    const dma: Dma = {
      iova, vaddr, size: 0n, prot, vaddrInvalid: false, lockCap: this.process.credentials.ipcLock,
      lockedVm: 0n, mm: this.process, iommuMapped: false, hasBitmap: false,
    };
    this.linkDma(dma);
    let errno = 0;
    if (this.domains.length === 0) dma.size = size;
    else errno = this.pinMapDma(dma, size);
    if (errno === 0 && this.dirtyPageTracking) {
      // vfio_dma_bitmap_alloc
      if (dma.size / pgsize > DIRTY_BITMAP_PAGES_MAX) {
        this.removeDma(dma);
        return EINVAL;
      }
      dma.hasBitmap = true;
    }
    return errno;
  }

  /** vfio_iommu_type1_unmap_dma → vfio_dma_do_unmap; returns the errno and, on success, the size written back. */
  unmapDma(u: { argsz: number; flags: number; iova: bigint; size: bigint; bitmap: UserBitmap | null }, userPtrMax: bigint): { errno: number; size: bigint } {
    const fail = (errno: number) => ({ errno, size: u.size });
    const mask = U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | U.VFIO_DMA_UNMAP_FLAG_VADDR | U.VFIO_DMA_UNMAP_FLAG_ALL;
    const minsz = U.vfio_iommu_type1_dma_unmap.sizeof;
    if (u.argsz < minsz || (u.flags & ~mask) !== 0) return fail(EINVAL);
    const getDirty = (u.flags & U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
    const unmapAll = (u.flags & U.VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
    const invalidateVaddr = (u.flags & U.VFIO_DMA_UNMAP_FLAG_VADDR) !== 0;
    if (getDirty && (unmapAll || invalidateVaddr)) return fail(EINVAL);
    const bitmap = u.bitmap ?? { pgsize: 0n, size: 0n, data: 0n };
    if (getDirty) {
      if (u.argsz < minsz + U.vfio_bitmap.sizeof) return fail(EINVAL);
      if (!accessOk(bitmap.data, bitmap.size, userPtrMax)) return fail(EINVAL);
      if (bitmap.pgsize === 0n) throw new Error('vfio_bitmap.pgsize 0: __ffs(0) is undefined in the kernel; not modelled');
      if (!verifyBitmapSize(u.size >> ffs(bitmap.pgsize), bitmap.size)) return fail(EINVAL);
    }
    // vfio_dma_do_unmap
    const pgsize = this.minPgsize;
    let iova = u.iova;
    let size = u.size;
    if ((iova & (pgsize - 1n)) !== 0n) return fail(EINVAL);
    if (unmapAll) {
      if (iova !== 0n || size !== 0n) return fail(EINVAL);
      size = U64;
    } else if (size === 0n || (size & (pgsize - 1n)) !== 0n) {
      return fail(EINVAL);
    } else if (u64(iova + size - 1n) < iova) {
      return fail(this.wrapOverflow ? EOVERFLOW : EINVAL);
    }
    if (getDirty && (!this.dirtyPageTracking || bitmap.pgsize !== pgsize)) return fail(EINVAL);
    if (this.v2 && !unmapAll) {
      const head = this.findDma(iova, 1n);
      if (head && head.iova !== iova) return fail(EINVAL);
      const tail = this.findDma(u64(iova + size - 1n), 0n);
      if (tail && u64(tail.iova + tail.size) !== u64(iova + size)) return fail(EINVAL);
    }
    // 6.12.117: `if (dma->iova >= iova + size) break;`, whose sum wraps to 0 for a range that ends at 2^64,
    // so UNMAP_DMA of exactly such a mapping finds nothing (KF-0006). 7.2.13: `if (dma->iova > iova_end)`.
    const endWraps = this.older.unmapEndWrapLeaks === true;
    const end = u64(iova + size);
    const last = unmapAll ? U64 : iova + size - 1n;
    let unmapped = 0n;
    const first = this.findFirstIndex(iova, unmapAll && !endWraps ? 0n : size);
    if (first < 0) return { errno: 0, size: 0n };
    const candidates = this.dmas.slice(first);
    const marked: Dma[] = [];
    for (const dma of candidates) {
      if (endWraps ? dma.iova >= end : dma.iova > last) break;
      if (!this.v2 && iova > dma.iova) break;
      if (invalidateVaddr) {
        if (dma.vaddrInvalid) {
          for (const d of marked) {
            d.vaddrInvalid = false;
            this.vaddrInvalidCount--;
          }
          return fail(EINVAL);
        }
        dma.vaddrInvalid = true;
        this.vaddrInvalidCount++;
        marked.push(dma);
        unmapped += dma.size;
        continue;
      }
      if (getDirty) {
        const errno = this.updateUserBitmap(bitmap.data, dma, iova, pgsize);
        if (errno !== 0) return fail(errno);
      }
      unmapped += dma.size;
      this.removeDma(dma);
    }
    return { errno: 0, size: unmapped };
  }

  /**
   * update_user_bitmap: copies the dma's bits into the user bitmap at its
   * bit offset from base_iova; an unaligned offset first reads the u64 it
   * merges into. Only the faults are modelled (EFAULT).
   */
  updateUserBitmap(data: bigint, dma: Dma, baseIova: bigint, pgsize: bigint): number {
    const pgshift = ffs(pgsize);
    const nbits = dma.size >> pgshift;
    const bitOffset = (dma.iova - baseIova) >> pgshift;
    const copyOffset = bitOffset / 64n;
    const shift = bitOffset % 64n;
    const at = u64(data + copyOffset * 8n);
    if (shift !== 0n && !this.userRangeOk(at, 8n, false)) return EFAULT;
    if (!this.userRangeOk(at, dirtyBitmapBytes(nbits + shift), true)) return EFAULT;
    return 0;
  }

  userRangeOk(address: bigint, length: bigint, write: boolean): boolean {
    if (length === 0n) return true;
    const firstPage = address - (address % PAGE_SIZE);
    for (let p = firstPage; p < address + length; p += PAGE_SIZE) {
      const m = this.process.memory.mappingAt(u64(p));
      if (!m) return false;
      if (write ? (m.prot & 2) === 0 : m.prot === 0) return false;
    }
    return true;
  }

  /** vfio_iommu_type1_dirty_pages */
  dirtyPages(d: { argsz: number; flags: number; range: { iova: bigint; size: bigint; bitmap: UserBitmap } }, userPtrMax: bigint): number {
    if (!this.v2) return EACCES;
    const minsz = 8;
    const mask = U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START | U.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP | U.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
    if (d.argsz < minsz || (d.flags & ~mask) !== 0) return EINVAL;
    // "only one flag": __ffs(flags) != __fls(flags); flags 0 was seen to give EINVAL too.
    if (d.flags === 0 || (d.flags & (d.flags - 1)) !== 0) return EINVAL;
    if (d.flags & U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START) {
      if (!this.dirtyPageTracking) {
        // vfio_dma_bitmap_alloc_all
        if (this.dmas.some((x) => x.size / this.minPgsize > DIRTY_BITMAP_PAGES_MAX)) return EINVAL;
        for (const x of this.dmas) x.hasBitmap = true;
        this.dirtyPageTracking = true;
      }
      return 0;
    }
    if (d.flags & U.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) {
      if (this.dirtyPageTracking) {
        this.dirtyPageTracking = false;
        for (const x of this.dmas) x.hasBitmap = false;
      }
      return 0;
    }
    // GET_BITMAP
    const dataSize = d.argsz - minsz;
    if (dataSize === 0 || dataSize < U.vfio_iommu_type1_dirty_bitmap_get.sizeof) return EINVAL;
    const { iova, size, bitmap } = d.range;
    if (this.wrapOverflow) {
      if (size === 0n) return EINVAL;
      if (u64(iova + size - 1n) < iova) return EOVERFLOW;
    } else if (u64(iova + size) < iova) return EINVAL;
    if (!accessOk(bitmap.data, bitmap.size, userPtrMax)) return EINVAL;
    if (bitmap.pgsize === 0n) throw new Error('vfio_bitmap.pgsize 0: __ffs(0) is undefined in the kernel; not modelled');
    if (!verifyBitmapSize(size >> ffs(bitmap.pgsize), bitmap.size)) return EINVAL;
    const pgsize = this.minPgsize;
    if (bitmap.pgsize !== pgsize) return EINVAL;
    if ((iova & (pgsize - 1n)) !== 0n) return EINVAL;
    if (size === 0n || (size & (pgsize - 1n)) !== 0n) return EINVAL;
    if (!this.dirtyPageTracking) return EINVAL;
    // vfio_iova_dirty_bitmap: the range must not bisect a dma.
    const head = this.findDma(iova, 1n);
    if (head && head.iova !== iova) return EINVAL;
    const tail = this.findDma(u64(iova + size - 1n), 0n);
    if (tail && u64(tail.iova + tail.size) !== u64(iova + size)) return EINVAL;
    for (const dma of this.dmas) {
      if (dma.iova < iova) continue;
      if (dma.iova > u64(iova + size - 1n)) break;
      const errno = this.updateUserBitmap(bitmap.data, dma, iova, pgsize);
      if (errno !== 0) return errno;
    }
    return 0;
  }
}

/** vfio_iommu_aper_resize on a copy of the iova list. */
function aperResize(list: IovaRange[], start: bigint, end: bigint): IovaRange[] {
  if (list.length === 0) return [{ start, end }];
  let out = [...list];
  // Adjust the start: drop nodes wholly below it, clip the one containing it.
  while (out.length > 0) {
    const node = out[0]!;
    if (start < node.start) break;
    if (start >= node.start && start < node.end) {
      node.start = start;
      break;
    }
    out.shift();
  }
  out = out.filter((node) => {
    if (end > node.end) return true;
    if (end > node.start && end <= node.end) {
      node.end = end;
      return true;
    }
    return false;
  });
  return out;
}

/** vfio_iommu_resv_exclude: cut the reserved regions out (direct-relaxable ones stay usable); null when nothing is left (EINVAL). */
function resvExclude(list: IovaRange[], resv: Type1ReservedRegion[]): IovaRange[] | null {
  let out = list.map((r) => ({ ...r }));
  for (const r of resv) {
    if (r.type === 'direct-relaxable') continue;
    const next: IovaRange[] = [];
    for (const n of out) {
      if (r.start > n.end || r.last < n.start) {
        next.push(n);
        continue;
      }
      if (r.start > n.start) next.push({ start: n.start, end: r.start - 1n });
      if (r.last < n.end) next.push({ start: r.last + 1n, end: n.end });
    }
    out = next;
  }
  return out.length === 0 ? null : out;
}

/** verify_bitmap_size */
function verifyBitmapSize(npages: bigint, bitmapSize: bigint): boolean {
  return !(npages === 0n || bitmapSize === 0n || bitmapSize > DIRTY_BITMAP_SIZE_MAX || bitmapSize < dirtyBitmapBytes(npages));
}

/** x86-64 __access_ok with a run-time size: ptr+size must not wrap and must be <= USER_PTR_MAX. */
function accessOk(ptr: bigint, size: bigint, userPtrMax: bigint): boolean {
  const sum = u64(ptr + size);
  return sum <= userPtrMax && sum >= ptr;
}

function writeWithin(buf: Uint8Array, offset: number, bytes: Uint8Array): void {
  if (offset >= buf.length) return;
  buf.set(bytes.subarray(0, buf.length - offset), offset);
}

function tailBytes(tail: Uint8Array | undefined, length: number): Uint8Array {
  const out = new Uint8Array(length);
  if (tail) out.set(tail.subarray(0, length));
  return out;
}

/**
 * A /dev/vfio/vfio container (struct vfio_container) of one process: groups,
 * and the IOMMU driver that SET_IOMMU opened. The container outlives its fd
 * while groups hold it (close() then only ends the ioctls).
 */
export class Type1ContainerModel {
  readonly kind = 'type1' as const;
  /** group_list, newest first (list_add). */
  readonly groups: Type1GroupModel[] = [];
  #iommu: Type1Iommu | null = null;
  #closed = false;
  readonly userPtrMax: bigint;
  readonly #wrapOverflow: boolean;
  readonly #older: Pick<Type1ModelOptions, 'capsAligned' | 'zeroPage' | 'unmapEndWrapLeaks'>;
  /** The extensions type1's check_extension claims whatever the container holds. */
  readonly #claimed: number[];

  constructor(readonly process: ModelProcess, options: Type1ModelOptions = {}) {
    this.userPtrMax = options.userPtrMax ?? (1n << 47n) - 4096n;
    this.#wrapOverflow = options.wrapOverflow ?? false;
    this.#older = { capsAligned: options.capsAligned ?? true, zeroPage: options.zeroPage ?? null, unmapEndWrapLeaks: options.unmapEndWrapLeaks ?? true };
    this.#claimed = [U.VFIO_TYPE1_IOMMU, U.VFIO_TYPE1v2_IOMMU, ...(options.nesting ?? true ? [U.VFIO_TYPE1_NESTING_IOMMU] : []), U.VFIO_UNMAP_ALL];
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs `fn` (an ioctl of this container) as another process holding the same file: a forked child
   * (lockstep's forkIoctl). type1 charges a mapping's pages to the mm of the process that mapped it
   * (vfio_dma_do_map: `dma->mm = current->mm`), and gives them back to that mm when it is removed.
   */
  asProcess<T>(process: ModelProcess, fn: () => T): T {
    const iommu = this.#iommu;
    if (!iommu) return fn();
    const own = iommu.process;
    iommu.process = process;
    try {
      return fn();
    } finally {
      iommu.process = own;
    }
  }

  /** Whether SET_IOMMU has opened the type1 driver (and no last-group detach released it). */
  get driverSet(): boolean {
    return this.#iommu !== null;
  }

  /** Pages this container's mappings charge to mm->locked_vm. */
  get lockedVm(): bigint {
    return this.#iommu?.dmas.reduce((a, d) => a + d.lockedVm, 0n) ?? 0n;
  }

  /** The current mappings (iova, size, vaddr, prot), sorted by iova. */
  get mappings(): { iova: bigint; size: bigint; vaddr: bigint; prot: number; vaddrInvalid: boolean }[] {
    return (this.#iommu?.dmas ?? []).map((d) => ({ iova: d.iova, size: d.size, vaddr: d.vaddr, prot: d.prot, vaddrInvalid: d.vaddrInvalid }));
  }

  #live(): void {
    if (this.#closed) throw new Error('/dev/vfio/vfio is closed');
  }

  /** container.c: every ioctl but the three container ones needs a driver (else EINVAL). */
  #driver(): Type1Iommu | IoctlError {
    this.#live();
    return this.#iommu ?? new IoctlError(EINVAL);
  }

  getApiVersion(): Errno & { version: number } {
    this.#live();
    return { errno: 0, version: U.VFIO_API_VERSION };
  }

  /**
   * vfio_container_ioctl_check_extension: with no driver, the registered
   * drivers (type1 only: no CONFIG_VFIO_NOIOMMU) answer with a NULL iommu,
   * which says 0 to UPDATE_VADDR and DMA_CC_IOMMU.
   */
  checkExtension(extension: number): Errno & { value: number } {
    this.#live();
    if (this.#iommu) return { errno: 0, value: this.#iommu.checkExtension(extension) };
    const ext = extension >>> 0 === extension ? extension : -1;
    const value = this.#claimed.includes(ext) ? 1 : 0;
    return { errno: 0, value };
  }

  /**
   * vfio_ioctl_set_iommu: EINVAL with no group or a driver already set; a
   * type type1's check_extension(NULL) does not claim → ENODEV; otherwise
   * vfio_iommu_type1_open (EINVAL for VFIO_UNMAP_ALL, which check_extension
   * claims but open rejects) and the attach of every group, unwound on error.
   */
  setIommu(type: number): Errno {
    this.#live();
    if (this.groups.length === 0 || this.#iommu) return { errno: EINVAL };
    const claimed = this.#claimed.includes(type);
    if (!claimed) return { errno: ENODEV };
    if (type === U.VFIO_UNMAP_ALL) return { errno: EINVAL };
    const v2 = type !== U.VFIO_TYPE1_IOMMU;
    const nesting = type === U.VFIO_TYPE1_NESTING_IOMMU;
    // dma_entry_limit is read at open; every group reports the same module parameter.
    const iommu = new Type1Iommu(v2, nesting, this.groups[0]!.platform.dmaEntryLimit, this.process, this.#wrapOverflow, this.#claimed.includes(U.VFIO_TYPE1_NESTING_IOMMU), this.#older);
    const attached: Type1GroupModel[] = [];
    for (const g of this.groups) {
      const errno = iommu.attachGroup(g);
      if (errno !== 0) {
        for (const a of attached.reverse()) iommu.detachGroup(a);
        iommu.release();
        return { errno };
      }
      attached.push(g);
    }
    this.#iommu = iommu;
    return { errno: 0 };
  }

  /** VFIO_IOMMU_GET_INFO with a buffer of `bufferSize` bytes (default 4 KiB) and argsz (default: the buffer size), as VfioContainer.getInfo. */
  getInfo(args: { argsz?: number; bufferSize?: number } = {}): Type1Info & { iovaPgsizesUnknown?: bigint } {
    const bufferSize = args.bufferSize ?? 4096;
    const argsz = args.argsz ?? bufferSize;
    const bytes = U.vfio_iommu_type1_info.encode({ argsz }, { length: Math.max(bufferSize, U.vfio_iommu_type1_info.sizeof) });
    const errno = this.getInfoInto(bytes);
    const unknown = errno === 0 ? this.iovaPgsizesUnknown() : 0n;
    return { errno, ...U.readType1Info(bytes, argsz), ...(unknown !== 0n ? { iovaPgsizesUnknown: unknown } : {}) };
  }

  /** The bits of the iova_pgsizes GET_INFO writes that the model cannot tell (Type1Platform.pgsizeBitsUnknown; written as 0). */
  iovaPgsizesUnknown(): bigint {
    const d = this.#driver();
    return d instanceof IoctlError ? 0n : d.pgsizeBitsUnknown;
  }

  /**
   * GET_INFO on a raw user buffer: writes what the kernel writes and leaves
   * the rest. Writes an argsz larger than the buffer would put past it go
   * nowhere here (the real kernel writes into whatever memory follows).
   */
  getInfoInto(bytes: Uint8Array): number {
    const d = this.#driver();
    if (d instanceof IoctlError) return d.errno;
    return d.getInfoInto(bytes);
  }

  /** VFIO_IOMMU_MAP_DMA; a `tail` after the struct is never read (copy_from_user of minsz only), it only lengthens the default argsz. */
  mapDma(args: { flags: number; vaddr: bigint | number; iova: bigint | number; size: bigint | number; argsz?: number; tail?: Uint8Array }): Errno {
    const d = this.#driver();
    if (d instanceof IoctlError) return { errno: d.errno };
    return {
      errno: d.mapDma({
        argsz: args.argsz ?? U.vfio_iommu_type1_dma_map.sizeof + (args.tail?.length ?? 0),
        flags: args.flags >>> 0,
        vaddr: u64(BigInt(args.vaddr)),
        iova: u64(BigInt(args.iova)),
        size: u64(BigInt(args.size)),
      }),
    };
  }

  /** VFIO_IOMMU_UNMAP_DMA; `size` is what the struct holds afterwards: type1 copies it back only on success. */
  unmapDma(args: { flags?: number; iova: bigint | number; size: bigint | number; argsz?: number; tail?: Uint8Array }): Errno & { size: bigint } {
    const size = u64(BigInt(args.size));
    const d = this.#driver();
    if (d instanceof IoctlError) return { errno: d.errno, size };
    const minsz = U.vfio_iommu_type1_dma_unmap.sizeof;
    const argsz = args.argsz ?? minsz + (args.tail?.length ?? 0);
    const flags = (args.flags ?? 0) >>> 0;
    // copy_from_user of the vfio_bitmap after the struct (zeros where the caller's tail ends).
    const bitmap = (flags & U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0 ? U.vfio_bitmap.decode(tailBytes(args.tail, U.vfio_bitmap.sizeof)) : null;
    return d.unmapDma({ argsz, flags, iova: u64(BigInt(args.iova)), size, bitmap }, this.userPtrMax);
  }

  dirtyPages(args: { flags: number; argsz?: number; tail?: Uint8Array }): Errno {
    const d = this.#driver();
    if (d instanceof IoctlError) return { errno: d.errno };
    const argsz = args.argsz ?? 8 + (args.tail?.length ?? 0);
    const range = U.vfio_iommu_type1_dirty_bitmap_get.decode(tailBytes(args.tail, U.vfio_iommu_type1_dirty_bitmap_get.sizeof));
    return { errno: d.dirtyPages({ argsz, flags: args.flags >>> 0, range }, this.userPtrMax) };
  }

  /**
   * A request by number, as DeviceFile.ioctl: the container's own three take
   * their argument by value; GET_INFO takes the raw user buffer
   * (getInfoInto); every other number — VFIO_IOMMU_ENABLE/DISABLE, unknown
   * ones — gets EINVAL before a driver is set (vfio_fops_unl_ioctl) and
   * ENOTTY after (vfio_iommu_type1_ioctl's default). MAP/UNMAP/DIRTY_PAGES
   * go through their typed methods.
   */
  ioctl(request: number, arg: number | Uint8Array = 0): Errno & { ret: number } {
    this.#live();
    const value = typeof arg === 'number' ? arg : -1;
    switch (request) {
      case U.VFIO_GET_API_VERSION:
        return { errno: 0, ret: this.getApiVersion().version };
      case U.VFIO_CHECK_EXTENSION:
        return { errno: 0, ret: this.checkExtension(value).value };
      case U.VFIO_SET_IOMMU:
        return { errno: this.setIommu(value).errno, ret: 0 };
    }
    const d = this.#driver();
    if (d instanceof IoctlError) return { errno: d.errno, ret: 0 };
    if (request === U.VFIO_IOMMU_GET_INFO && arg instanceof Uint8Array) return { errno: d.getInfoInto(arg), ret: 0 };
    if ([U.VFIO_IOMMU_GET_INFO, U.VFIO_IOMMU_MAP_DMA, U.VFIO_IOMMU_UNMAP_DMA, U.VFIO_IOMMU_DIRTY_PAGES].includes(request)) {
      throw new Error(`request 0x${request.toString(16)}: use its typed method`);
    }
    return { errno: ENOTTY, ret: 0 };
  }

  /** Closes the fd (vfio_fops_release): the container lives on while groups hold it. */
  close(): Errno {
    this.#closed = true;
    return { errno: 0 };
  }

  // ------------------------------------------------------------ group side (container.c)

  /** vfio_container_attach_group: with a driver set, the group is attached to it at once. */
  attachGroup(group: Type1GroupModel): number {
    if (this.#iommu) {
      const errno = this.#iommu.attachGroup(group);
      if (errno !== 0) return errno;
    }
    this.groups.unshift(group);
    return 0;
  }

  /** vfio_group_detach_container: the last group's detach releases the driver (the container is unset again). */
  detachGroup(group: Type1GroupModel): void {
    this.#iommu?.detachGroup(group);
    this.groups.splice(this.groups.indexOf(group), 1);
    if (this.#iommu && this.groups.length === 0) {
      this.#iommu.release();
      this.#iommu = null;
    }
  }
}

/** What a VFIO_GROUP_SET_CONTAINER fd can be besides a type1 container. */
export type Type1GroupTarget = Type1ContainerModel | 'iommufd' | 'other-file' | 'bad-fd';

/**
 * iommufd's side of a VFIO device opened through a group bound to an iommufd
 * (drivers/vfio/iommufd.c): the caller wires it to the iommufd model.
 */
export interface GroupIommufdBinding {
  /** First open: vfio_df_iommufd_bind, then vfio_iommufd_compat_attach_ioas. The errno and the device's object ID. */
  bindDevice(): { errno: number; devId: number };
  /** Last close: vfio_df_iommufd_unbind (detach from the compat IOAS, unbind). */
  unbindDevice(devId: number): void;
}

/** One device of the group while it has open fds (struct vfio_device open_count). */
interface OpenDevice {
  count: number;
  /** Opened through an iommufd: its device object ID there, and the binding that unbinds it. */
  iommufd: { devId: number; binding: GroupIommufdBinding } | null;
  /** Opened through a type1 container: the first open took a container user (vfio_group_use_container). */
  usesContainer: boolean;
}

/**
 * A /dev/vfio/N group fd of an IOMMU-backed group (drivers/vfio/group.c),
 * viable (its devices bound to vfio-pci), and the device fds opened through it.
 */
export class Type1GroupModel {
  #container: Type1ContainerModel | null = null;
  #iommufd = false;
  #binding: GroupIommufdBinding | null = null;
  #closed = false;
  /** Device fds (numbers of the model's own) → device name. */
  readonly #deviceFds = new Map<number, string>();
  readonly #open = new Map<string, OpenDevice>();
  #nextDeviceFd = 3000;

  /**
   * @param devices the names of the group's devices (/sys/kernel/iommu_groups/N/devices);
   *   null when not known, and then any name is taken as one of them
   */
  constructor(readonly id: number, readonly platform: Type1Platform, readonly devices: readonly string[] | null = null) {}

  get container(): Type1ContainerModel | null {
    return this.#container;
  }

  #live(): void {
    if (this.#closed) throw new Error(`/dev/vfio/${this.id} is closed`);
  }

  /** vfio_group_has_iommu */
  #hasIommu(): boolean {
    return this.#container !== null || this.#iommufd;
  }

  getStatus(): Errno & { flags: number; viable: boolean; containerSet: boolean } {
    this.#live();
    const containerSet = this.#hasIommu();
    const flags = U.VFIO_GROUP_FLAGS_VIABLE | (containerSet ? U.VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
    return { errno: 0, flags, viable: true, containerSet };
  }

  /**
   * vfio_group_ioctl_set_container: EBADF for a closed fd; EINVAL when the
   * group already has a container or iommufd; a file that is neither →
   * EBADFD; a type1 container while a device opened through an iommufd is
   * still open → EPERM (the device owns the group's DMA). An iommufd target only records the binding (its compat IOAS is
   * the iommufd model's business).
   */
  setContainer(target: Type1GroupTarget, binding: GroupIommufdBinding | null = null): Errno {
    this.#live();
    if (target === 'bad-fd' || (target instanceof Type1ContainerModel && target.closed)) return { errno: EBADF };
    if (this.#hasIommu()) return { errno: EINVAL };
    if (target instanceof Type1ContainerModel) {
      // container.c:vfio_container_attach_group → iommu_group_claim_dma_owner: EPERM while the group has a
      // DMA owner, which a device opened through an iommufd is until its last close (iommufd_device_bind
      // claimed it with iommu_device_claim_dma_owner; UNSET_CONTAINER let the iommufd go, not the device).
      for (const d of this.#open.values()) if (!d.usesContainer) return { errno: EPERM };
      const errno = target.attachGroup(this);
      if (errno === 0) this.#container = target;
      return { errno };
    }
    if (target === 'iommufd') {
      this.#iommufd = true;
      this.#binding = binding;
      return { errno: 0 };
    }
    return { errno: EBADFD };
  }

  /**
   * vfio_group_ioctl_unset_container: EINVAL when nothing is set; EBUSY while
   * an open device uses the type1 container (container_users != 1). An
   * iommufd is let go even with devices open: they stay bound to it.
   */
  unsetContainer(): Errno {
    this.#live();
    if (!this.#hasIommu()) return { errno: EINVAL };
    if (this.#container && this.#containerUsers() > 0) return { errno: EBUSY };
    this.#detach();
    return { errno: 0 };
  }

  /**
   * vfio_group_fops_release detaches the group from its container. A device
   * opened through a type1 container holds the group file
   * (vfio_group_use_container: get_file), so then the release waits for the
   * last such device to close.
   */
  close(): Errno {
    if (this.#closed) return { errno: 0 };
    this.#closed = true;
    if (this.#containerUsers() === 0) this.#detach();
    return { errno: 0 };
  }

  #containerUsers(): number {
    let n = 0;
    for (const d of this.#open.values()) if (d.usesContainer) n++;
    return n;
  }

  #detach(): void {
    if (this.#container) {
      this.#container.detachGroup(this);
      this.#container = null;
    }
    this.#iommufd = false;
    this.#binding = null;
  }

  /**
   * vfio_group_ioctl_get_device_fd: ENODEV for a name that is not one of the
   * group's devices (vfio_device_get_from_name); then vfio_df_group_open:
   * EINVAL with neither a container nor an iommufd. The first open
   * (open_count 0 → 1, vfio_df_device_first_open) of a type1 group needs the
   * container's driver (vfio_group_use_container: EINVAL before SET_IOMMU)
   * and takes a container user; through an iommufd it binds the device and
   * attaches it to the compat IOAS (the binding's errno fails the open).
   * Later opens only count.
   */
  getDeviceFd(name: string): Errno & { deviceFd: number } {
    this.#live();
    const fail = (errno: number) => ({ errno, deviceFd: -1 });
    if (this.devices && !this.devices.includes(name)) return fail(ENODEV);
    if (!this.#hasIommu()) return fail(EINVAL);
    let device = this.#open.get(name);
    if (!device) {
      if (this.#container) {
        if (!this.#container.driverSet) return fail(EINVAL);
        device = { count: 0, iommufd: null, usesContainer: true };
      } else {
        let iommufd: OpenDevice['iommufd'] = null;
        if (this.#binding) {
          const r = this.#binding.bindDevice();
          if (r.errno) return fail(r.errno);
          iommufd = { devId: r.devId, binding: this.#binding };
        }
        device = { count: 0, iommufd, usesContainer: false };
      }
      this.#open.set(name, device);
    }
    device.count++;
    const fd = this.#nextDeviceFd++;
    this.#deviceFds.set(fd, name);
    return { errno: 0, deviceFd: fd };
  }

  /**
   * close() of a device fd (vfio_device_fops_release → vfio_df_group_close):
   * the last close unbinds it from its iommufd or gives back its container
   * user, and then a group fd closed meanwhile is released.
   */
  closeDevice(deviceFd: number): Errno {
    const name = this.#deviceFds.get(deviceFd);
    if (name === undefined) return { errno: EBADF };
    this.#deviceFds.delete(deviceFd);
    const device = this.#open.get(name)!;
    if (--device.count > 0) return { errno: 0 };
    this.#open.delete(name);
    if (device.iommufd) device.iommufd.binding.unbindDevice(device.iommufd.devId);
    if (device.usesContainer && this.#closed && this.#containerUsers() === 0) this.#detach();
    return { errno: 0 };
  }
}
