// struct io_pagetable (io_pagetable.c, io_pagetable.h): the IOVA space of one
// IOAS. Areas map IOVA ranges onto slices of IoPages; reserved ranges (domain
// apertures, device reserved regions, test ADD_RESERVED) and allowed ranges
// (IOMMU_IOAS_ALLOW_IOVAS) constrain it; every attached domain mirrors every
// area, and iova_alignment follows the domains, accesses and huge-page mode.
import { doubleSpanHoles, IntervalNode, IntervalTree } from './interval-tree.ts';
import { EADDRINUSE, EBUSY, EDEADLK, EEXIST, EINVAL, ENOENT, ENOSPC, EOPNOTSUPP, EOVERFLOW, EPERM } from './errno.ts';
import { IoPages, ULONG_MAX, type IndexRange } from './pages.ts';
import { PAGE_SIZE } from './process.ts';

/** CONFIG_TRANSPARENT_HUGEPAGE=y on x86-64: iopt_alloc_iova caps its alignment at HPAGE_SIZE. */
export const HPAGE_SIZE = 2n * 1024n * 1024n;

/** include/linux/iommu.h IOMMU_READ/WRITE/CACHE */
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
export const IOMMU_CACHE = 4;

/** What the io_pagetable needs from an iommu_domain. */
export interface IommuDomainLike {
  /** Its bits in pgsizeBitsUnknown are 0 here. */
  readonly pgsizeBitmap: bigint;
  /** Bits of pgsize_bitmap the model cannot tell (Type1Platform.pgsizeBitsUnknown); absent: none. */
  readonly pgsizeBitsUnknown?: bigint;
  /** domain->geometry, inclusive. */
  readonly aperture: { start: bigint; last: bigint };
  /** Called when [iova, last] stops being mapped in this domain (iommu_unmap). */
  unmapped(iova: bigint, last: bigint): void;
  /**
   * The driver's map_pages refusing an area's protection (iommu_map of pages already pinned):
   * the errno, or 0. Absent: the driver maps any protection (the selftest mock does).
   */
  mapErrno?(iommuProt: number): number;
}

/** What the io_pagetable needs from an in-kernel access (struct iommufd_access). */
export interface AccessLike {
  /** PAGE_SIZE for accesses that pin pages (needs_pin_pages), else 1. */
  readonly iovaAlignment: bigint;
  /** iommufd_access_ops.unmap: the driver must drop its pins in [iova, iova+length-1]. */
  notifyUnmap(iova: bigint, length: bigint): void;
}

export class Area extends IntervalNode {
  /** pages->pages; never null in the model (no operation is in flight between ioctls). */
  pages: IoPages;
  /** How many bytes into pages->uptr the area starts (iopt_area_start_byte of its first IOVA). */
  startByte: bigint;
  readonly iommuProt: number;
  /** Set while an area is filled into the IOAS's domains (area->storage_domain). */
  storageDomain: IommuDomainLike | null = null;
  /** area->num_accesses: access pins over this area. */
  numAccesses = 0;
  /** area->num_locks (7.x): pins of internal accesses (a HW queue's), which refuse unmap with EBUSY. */
  numLocks = 0;

  constructor(iova: bigint, last: bigint, pages: IoPages, startByte: bigint, iommuProt: number) {
    super(iova, last);
    this.pages = pages;
    this.startByte = startByte;
    this.iommuProt = iommuProt;
  }

  get length(): bigint {
    return this.last - this.start + 1n;
  }
  /** area->page_offset */
  get pageOffset(): bigint {
    return this.startByte % PAGE_SIZE;
  }
  /** iopt_area_index .. iopt_area_last_index */
  get indexRange(): IndexRange {
    return { start: Number(this.startByte / PAGE_SIZE), last: Number((this.startByte + this.length - 1n) / PAGE_SIZE) };
  }
  /** io_pagetable.h:iopt_area_start_byte */
  startByteOf(iova: bigint): bigint {
    return iova - this.start + this.startByte;
  }
  /** io_pagetable.h:iopt_area_iova_to_index */
  indexOf(iova: bigint): number {
    return Number(this.startByteOf(iova) / PAGE_SIZE);
  }
}

export class ReservedRange extends IntervalNode {
  /** The domain or device that reserved it; null for IOMMU_TEST_OP_ADD_RESERVED. */
  constructor(start: bigint, last: bigint, readonly owner: object | null) {
    super(start, last);
  }
}

/** A slice of IoPages, the model's struct iopt_pages_list element. */
export interface PagesSlice {
  pages: IoPages;
  startByte: bigint;
  length: bigint;
}

/** One step of iopt_for_each_contig_area. */
export interface ContigStep {
  area: Area;
  /** iter.cur_iova */
  cur: bigint;
  /** min(last_iova, area last) */
  last: bigint;
}

export class IoPageTable {
  readonly areas = new IntervalTree<Area>();
  readonly reserved = new IntervalTree<ReservedRange>();
  readonly allowed = new IntervalTree<IntervalNode>();
  /** iopt->domains in xarray index order (removal swaps the tail in, iopt_table_remove_domain). */
  readonly domains: IommuDomainLike[] = [];
  readonly accesses: AccessLike[] = [];
  /** iopt_init_table: software tables have no alignment restriction. */
  iovaAlignment = 1n;
  disableLargePages = false;

  // ------------------------------------------------------------ IOVA checks and allocation

  /** io_pagetable.c:iopt_check_iova (for FIXED maps). */
  checkIova(iova: bigint, length: bigint): number {
    if (iova & (this.iovaAlignment - 1n)) return EINVAL;
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return EOVERFLOW;
    if (this.reserved.iterFirst(iova, last)) return EINVAL;
    if (this.areas.iterFirst(iova, last)) return EEXIST;
    return 0;
  }

  /**
   * io_pagetable.c:iopt_alloc_iova: first fit, lowest address, over the
   * allowed spans (or [PAGE_SIZE, ULONG_MAX - PAGE_SIZE] when none), skipping
   * reserved ranges and areas, with an alignment taken from the user VA.
   */
  allocIova(uptr: bigint, length: bigint): { errno: number; iova: bigint } {
    const pageOffset = uptr % PAGE_SIZE;
    // "Protect roundup_pow-of_two() from overflow"
    if (length === 0n || length >= ULONG_MAX / 2n) return { errno: EOVERFLOW, iova: 0n };
    let alignment = roundupPowOfTwo(length);
    // "Keep alignment present in the uptr when building the IOVA"
    if (uptr !== 0n) {
      const low = uptr & -uptr;
      if (low < alignment) alignment = low;
    }
    if (alignment >= HPAGE_SIZE) alignment = HPAGE_SIZE;
    if (alignment < this.iovaAlignment) return { errno: EINVAL, iova: 0n };

    // __alloc_iova_check_range: align up (failing on overflow), OR in the page offset, then fit.
    const fit = (start: bigint, last: bigint): bigint | null => {
      let aligned = start + alignment - 1n;
      if (aligned > ULONG_MAX) return null;
      aligned = (aligned & ~(alignment - 1n)) | pageOffset;
      if (aligned >= last || last - aligned < length - 1n) return null;
      return aligned;
    };

    const lo = PAGE_SIZE;
    const hi = ULONG_MAX - PAGE_SIZE;
    const allowedSpans = this.allowed.empty
      ? [{ start: lo, last: hi }]
      : [...this.allowed.spans(lo, hi)].filter((s) => !s.isHole);
    for (const span of allowedSpans) {
      const start = fit(span.start, span.last);
      if (start === null) continue;
      for (const hole of doubleSpanHoles(this.reserved, this.areas, start, span.last)) {
        const iova = fit(hole.start, hole.last);
        if (iova !== null) return { errno: 0, iova };
      }
    }
    return { errno: ENOSPC, iova: 0n };
  }

  // ------------------------------------------------------------ mapping

  /**
   * io_pagetable.c:iopt_map_pages (iopt_alloc_area_pages, iopt_insert_area,
   * iopt_fill_domains_pages). `iova` null asks for IOPT_ALLOC_IOVA.
   * On success the new areas take a reference on their pages.
   */
  mapPages(slices: PagesSlice[], length: bigint, iova: bigint | null, iommuProt: number): { errno: number; iova: bigint } {
    if (length & (this.iovaAlignment - 1n) || length === 0n) return { errno: EINVAL, iova: iova ?? 0n };
    let dst: bigint;
    if (iova === null) {
      // "Use the first entry to guess the ideal IOVA alignment": the user VA, or the file or dma-buf offset.
      const first = slices[0]!;
      const r = this.allocIova(first.pages.alignmentHint(first.startByte), length);
      if (r.errno) return { errno: r.errno, iova: 0n };
      dst = r.iova;
    } else {
      const rc = this.checkIova(iova, length);
      if (rc) return { errno: rc, iova };
      dst = iova;
    }

    // iopt_insert_area for each slice; a failure aborts every area inserted so far.
    const areas: Area[] = [];
    let cur = dst;
    for (const s of slices) {
      let rc = 0;
      if (iommuProt & IOMMU_WRITE && !s.pages.writable) rc = EPERM;
      else if ((s.startByte % PAGE_SIZE) & (this.iovaAlignment - 1n)) rc = EINVAL;
      else if (cur + s.length - 1n > ULONG_MAX || s.startByte + s.length - 1n > ULONG_MAX) rc = EOVERFLOW;
      if (rc) {
        for (const a of areas) this.areas.remove(a);
        return { errno: rc, iova: iova ?? dst };
      }
      const area = new Area(cur, cur + s.length - 1n, s.pages, s.startByte, iommuProt);
      this.areas.insert(area);
      areas.push(area);
      cur += s.length;
    }

    // iopt_fill_domains_pages → iopt_area_fill_domains: nothing to do (and no
    // pin, no VA check) without a domain; otherwise pin and charge, undoing
    // earlier slices on failure.
    if (this.domains.length) {
      for (let i = 0; i < areas.length; i++) {
        const a = areas[i]!;
        let rc = a.pages.hold([a.indexRange]);
        // pages.c:iopt_area_fill_domains maps what it pinned into every domain; a driver that refuses
        // the protection (VT-d without READ or WRITE) fails the map after the pin, which is undone.
        const refused = rc ? 0 : this.#mapErrno(a.iommuProt, this.domains);
        if (refused) {
          a.pages.release([a.indexRange]);
          rc = refused;
        }
        if (rc) {
          for (let j = 0; j < i; j++) this.#unfillArea(areas[j]!);
          for (const x of areas) this.areas.remove(x);
          return { errno: rc, iova: iova ?? dst };
        }
        a.storageDomain = this.domains[0]!;
      }
    }
    for (const a of areas) a.pages.refs++;
    return { errno: 0, iova: dst };
  }

  /** The first refusal among the domains' drivers to map an area with this protection, or 0. */
  #mapErrno(iommuProt: number, domains: readonly IommuDomainLike[]): number {
    for (const d of domains) {
      const rc = d.mapErrno?.(iommuProt) ?? 0;
      if (rc) return rc;
    }
    return 0;
  }

  /** iopt_area_unfill_domains: unmap from every domain, then drop the storage pins. */
  #unfillArea(area: Area): void {
    if (!area.storageDomain) return;
    for (const d of this.domains) d.unmapped(area.start, area.last);
    area.pages.release([area.indexRange]);
    area.storageDomain = null;
  }

  /** io_pagetable.c:iopt_area_contig_init/next: contiguous, fully initialised areas covering [iova, last] from iova. */
  contig(iova: bigint, last: bigint): { steps: ContigStep[]; done: boolean } {
    const steps: ContigStep[] = [];
    let area = this.areas.iterFirst(iova, iova);
    let cur = iova;
    while (area) {
      steps.push({ area, cur, last: last < area.last ? last : area.last });
      if (last <= area.last) return { steps, done: true };
      cur = area.last + 1n;
      const next = this.areas.iterNext(area, cur, last);
      if (!next || next.start !== cur) return { steps, done: false };
      area = next;
    }
    return { steps, done: false };
  }

  /** io_pagetable.c:iopt_get_pages: the slices under [iova, iova+length-1] for IOMMU_IOAS_COPY. */
  getPages(iova: bigint, length: bigint): { errno: number; slices: PagesSlice[] } {
    if (length === 0n) return { errno: EINVAL, slices: [] };
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return { errno: EOVERFLOW, slices: [] };
    const { steps, done } = this.contig(iova, last);
    if (!done) return { errno: ENOENT, slices: [] };
    return {
      errno: 0,
      slices: steps.map((s) => ({ pages: s.area.pages, startByte: s.area.startByteOf(s.cur), length: s.last - s.cur + 1n })),
    };
  }

  // ------------------------------------------------------------ unmapping

  /**
   * io_pagetable.c:iopt_unmap_iova_range. Not atomic: areas fully inside the
   * range are removed one by one from the lowest, and the first area that
   * sticks out of [start, last] stops the walk with ENOENT, leaving the
   * earlier removals done. Accesses pinning an area are told to let go first.
   */
  unmapRange(start: bigint, last: bigint): { errno: number; unmapped: bigint } {
    let unmapped = 0n;
    let tries = 0;
    for (let area = this.areas.iterFirst(start, last); area; area = this.areas.iterFirst(start, last)) {
      const first = area.start;
      const areaLast = area.last;
      // "The area is locked by an object that has not been destroyed" (7.x: a HW queue's pins)
      if (area.numLocks) return { errno: EBUSY, unmapped };
      if (first < start || areaLast > last) return { errno: ENOENT, unmapped };
      if (first !== start) tries = 0;
      if (area.numAccesses) {
        start = first;
        for (const a of [...this.accesses]) a.notifyUnmap(first, area.length);
        // "Something is not responding to unmap requests."
        if (++tries > 100) return { errno: EDEADLK, unmapped };
        continue;
      }
      this.#unfillArea(area);
      this.areas.remove(area);
      if (--area.pages.refs === 0) area.pages.released();
      unmapped += areaLast - first + 1n;
      if (areaLast >= last) break;
      start = areaLast + 1n;
    }
    return { errno: 0, unmapped };
  }

  /** io_pagetable.c:iopt_unmap_iova */
  unmapIova(iova: bigint, length: bigint): { errno: number; unmapped: bigint } {
    if (length === 0n) return { errno: EINVAL, unmapped: 0n };
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return { errno: EOVERFLOW, unmapped: 0n };
    return this.unmapRange(iova, last);
  }

  /** io_pagetable.c:iopt_unmap_all: an empty table succeeds too. */
  unmapAll(): { errno: number; unmapped: bigint } {
    return this.unmapRange(0n, ULONG_MAX);
  }

  // ------------------------------------------------------------ reserved and allowed ranges

  /** io_pagetable.c:iopt_reserve_iova: may not cover an area or an allowed range. */
  reserve(start: bigint, last: bigint, owner: object | null): number {
    if (this.areas.iterFirst(start, last) || this.allowed.iterFirst(start, last)) return EADDRINUSE;
    this.reserved.insert(new ReservedRange(start, last, owner));
    return 0;
  }

  /** io_pagetable.c:__iopt_remove_reserved_iova */
  removeReserved(owner: object | null): void {
    for (const r of [...this.reserved]) if (r.owner === owner) this.reserved.remove(r);
  }

  /** io_pagetable.c:iopt_set_allow_iova: swap in the new list unless a reserved range intersects it. */
  setAllowed(ranges: { start: bigint; last: bigint }[]): number {
    for (const r of ranges) if (this.reserved.iterFirst(r.start, r.last)) return EADDRINUSE;
    this.allowed.clear();
    for (const r of ranges) this.allowed.insert(new IntervalNode(r.start, r.last));
    return 0;
  }

  /** The usable IOVA ranges: holes of the reserved ranges over [0, ULONG_MAX] (IOMMU_IOAS_IOVA_RANGES, compat IOVA cap). */
  usableRanges(): { start: bigint; last: bigint }[] {
    return [...this.reserved.holes(0n, ULONG_MAX)];
  }

  // ------------------------------------------------------------ alignment, domains and accesses

  /** io_pagetable.c:iopt_check_iova_alignment */
  #checkAlignment(alignment: bigint): number {
    const mask = alignment - 1n;
    for (const a of this.areas) if (a.start & mask || a.length & mask || a.pageOffset & mask) return EADDRINUSE;
    return 0;
  }

  /** io_pagetable.c:iopt_calculate_iova_alignment */
  #recalculateAlignment(): number {
    let alignment = this.disableLargePages ? PAGE_SIZE : 1n;
    for (const d of this.domains) {
      const low = d.pgsizeBitmap & -d.pgsizeBitmap;
      if (low > alignment) alignment = low;
    }
    for (const a of this.accesses) if (a.iovaAlignment > alignment) alignment = a.iovaAlignment;
    if (alignment > this.iovaAlignment) {
      const rc = this.#checkAlignment(alignment);
      if (rc) return rc;
    }
    this.iovaAlignment = alignment;
    return 0;
  }

  /**
   * io_pagetable.c:iopt_table_add_domain: alignment (EINVAL above PAGE_SIZE,
   * EADDRINUSE for misaligned areas), then the aperture reservations
   * (EADDRINUSE), then filling every area (EFAULT/ENOMEM), all undone on failure.
   */
  addDomain(domain: IommuDomainLike): number {
    const low = domain.pgsizeBitmap & -domain.pgsizeBitmap;
    const alignment = low > this.iovaAlignment ? low : this.iovaAlignment;
    if (alignment > PAGE_SIZE) return EINVAL;
    if (alignment !== this.iovaAlignment) {
      const rc = this.#checkAlignment(alignment);
      if (rc) return rc;
    }
    const undoReserved = (rc: number): number => {
      this.removeReserved(domain);
      return rc;
    };
    if (domain.aperture.start !== 0n) {
      const rc = this.reserve(0n, domain.aperture.start - 1n, domain);
      if (rc) return undoReserved(rc);
    }
    if (domain.aperture.last !== ULONG_MAX) {
      const rc = this.reserve(domain.aperture.last + 1n, ULONG_MAX, domain);
      if (rc) return undoReserved(rc);
    }
    // iopt_fill_domain: with another domain present the pfns come from its storage; the first domain pins.
    const filled: Area[] = [];
    const unfill = () => {
      for (const f of filled) {
        f.pages.release([f.indexRange]);
        f.storageDomain = null;
      }
    };
    for (const a of this.areas) {
      // Every area is mapped into the new domain (pinned first unless another domain stores it);
      // a driver refusing the area's protection fails the attach (VT-d: an area mapped with no
      // READ or WRITE, which VFIO compat's MAP_DMA with flags 0 makes).
      const refused = this.#mapErrno(a.iommuProt, [domain]);
      if (a.storageDomain) {
        if (refused) return (unfill(), undoReserved(refused));
        continue;
      }
      const rc = a.pages.hold([a.indexRange]);
      if (rc || refused) {
        if (!rc) a.pages.release([a.indexRange]);
        unfill();
        return undoReserved(rc || refused);
      }
      a.storageDomain = domain;
      filled.push(a);
    }
    this.iovaAlignment = alignment;
    this.domains.push(domain);
    return 0;
  }

  /** io_pagetable.c:iopt_table_remove_domain */
  removeDomain(domain: IommuDomainLike): void {
    const index = this.domains.indexOf(domain);
    if (index < 0) return;
    const tail = this.domains.pop()!;
    if (index !== this.domains.length) this.domains[index] = tail;
    // iopt_unfill_domain: another domain keeps the pfns (storage moves to domains[0]); otherwise unpin.
    for (const a of this.areas) {
      domain.unmapped(a.start, a.last);
      if (this.domains.length) {
        if (a.storageDomain === domain) a.storageDomain = this.domains[0]!;
      } else if (a.storageDomain) {
        a.pages.release([a.indexRange]);
        a.storageDomain = null;
      }
    }
    this.removeReserved(domain);
    this.#recalculateAlignment();
  }

  /** io_pagetable.c:iopt_add_access */
  addAccess(access: AccessLike): number {
    this.accesses.push(access);
    const rc = this.#recalculateAlignment();
    if (rc) this.accesses.pop();
    return rc;
  }

  /** io_pagetable.c:iopt_remove_access */
  removeAccess(access: AccessLike): void {
    const i = this.accesses.indexOf(access);
    if (i >= 0) this.accesses.splice(i, 1);
    this.#recalculateAlignment();
  }

  /** io_pagetable.c:iopt_disable_large_pages */
  disableLarge(): number {
    if (this.disableLargePages) return 0;
    // "Won't do it if domains already have pages mapped in them"
    if (this.domains.length && !this.areas.empty) return EINVAL;
    this.disableLargePages = true;
    const rc = this.#recalculateAlignment();
    if (rc) this.disableLargePages = false;
    return rc;
  }

  /** io_pagetable.c:iopt_enable_large_pages */
  enableLarge(): void {
    this.disableLargePages = false;
    this.#recalculateAlignment();
  }

  // ------------------------------------------------------------ VFIO type1 (v1) splitting

  /** io_pagetable.c:iopt_area_split: `iova` becomes the last byte of the left part. */
  #split(area: Area, iova: bigint): number {
    const newStart = iova + 1n;
    if (iova === area.start || iova === area.last) return 0;
    // "Maintaining the domains_itree below is a bit complicated" for a dma-buf: not split.
    if (area.pages.type === 'dmabuf') return EOPNOTSUPP;
    const alignment = this.iovaAlignment;
    if (newStart & (alignment - 1n) || area.startByteOf(newStart) & (alignment - 1n)) return EINVAL;
    // "Splitting is not permitted if an access exists"
    if (area.numAccesses) return EINVAL;
    // "Splitting is not permitted if a domain could have been mapped with huge pages."
    if (area.storageDomain && !this.disableLargePages) return EINVAL;
    const lhs = new Area(area.start, iova, area.pages, area.startByte, area.iommuProt);
    const rhs = new Area(newStart, area.last, area.pages, area.startByteOf(newStart), area.iommuProt);
    lhs.storageDomain = rhs.storageDomain = area.storageDomain;
    if (area.storageDomain) {
      // domains_itree swaps the area's node for the two halves: hold the halves, then drop the whole.
      area.pages.hold([lhs.indexRange, rhs.indexRange]);
      area.pages.release([area.indexRange]);
    }
    this.areas.remove(area);
    this.areas.insert(lhs);
    this.areas.insert(rhs);
    area.pages.refs++;
    return 0;
  }

  /** io_pagetable.c:iopt_cut_iova: split at each point that falls strictly inside an area; stop at the first failure. */
  cut(iovas: bigint[]): number {
    for (const iova of iovas) {
      const area = this.areas.iterFirst(iova, iova);
      if (!area) continue;
      const rc = this.#split(area, iova);
      if (rc) return rc;
    }
    return 0;
  }
}

/** roundup_pow_of_two for 0 < n < 2^63. */
export function roundupPowOfTwo(n: bigint): bigint {
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}
