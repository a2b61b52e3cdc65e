// The selftest mock IOMMU (selftest.c) and a plain "real hardware" domain.
//
// A mock paging domain (mock_domain_alloc_paging) has the aperture
// [MOCK_APERTURE_START, MOCK_APERTURE_LAST], pgsize_bitmap MOCK_IO_PAGE_SIZE
// (2048) plus MOCK_HUGE_PAGE_SIZE for a HUGE_IOVA device, and stores one
// xarray entry per 2048-byte IOVA chunk. The model does not copy that
// xarray: a domain always mirrors exactly the filled areas of its IOAS
// (iopt_fill_domain at attach, iopt_area_fill_domains at map, unfill at
// unmap), so an entry is looked up through the IOAS. Only the dirty bits
// (MOCK_PFN_DIRTY_IOVA) are domain state, kept per chunk index.
//
// A HUGE_IOVA domain gets 1 MiB IOPTEs (MOCK_PFN_HUGE_IOVA) where user
// memory is physically contiguous (hugeAt): the model asks the platform for
// physical addresses (UserMemory.physicalAddress: /proc/self/pagemap as
// root); without them it cannot say where they are.
//
// On a kernel whose mock domain is the generic page table (KernelBehaviour.
// mockGenericPt: an AMDv1 variant with a 2 KiB granule, selftest.c:
// mock_domain_alloc_pgtable), the domain's geometry and its dirty bits
// follow that table: see genericPtGeometry and leafOf. There a leaf PTE is
// taken never to span two pages, which is exact when the IOAS maps page by
// page (IOMMU_OPTION_HUGE_PAGES = 0, pages.c:batch_iommu_map_small), as
// 7.x's dirty-tracking selftest makes it.
import { IOMMU_READ, IOMMU_WRITE, type Area, type IoPageTable, type IommuDomainLike } from './io-pagetable.ts';
import { EINVAL } from './errno.ts';
import { PAGE_SIZE } from './process.ts';
import { ULONG_MAX } from './pages.ts';
import type { Type1Platform } from './type1-platform.ts';

export const MOCK_IO_PAGE_SIZE = PAGE_SIZE / 2n;
/** The last chunk index (iova / MOCK_IO_PAGE_SIZE of ULONG_MAX, 2^53 - 1): every index is exact in a double. */
export const MAX_CHUNK = ULONG_MAX / MOCK_IO_PAGE_SIZE;
/** MOCK_IO_PAGE_SIZE and PAGE_SIZE as doubles, for the byte arithmetic of the chunk lookups. */
const CHUNK_BYTES = Number(MOCK_IO_PAGE_SIZE);
const PAGE_BYTES = Number(PAGE_SIZE);
export const MOCK_HUGE_PAGE_SIZE = 512n * MOCK_IO_PAGE_SIZE;
export const MOCK_APERTURE_START = 1n << 24n;
export const MOCK_APERTURE_LAST = (1n << 31n) - 1n;

export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1;
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 2;
/** iommufd_test.h (kernels with mockDevicePasid): a PASID-capable mock device. */
export const MOCK_FLAGS_DEVICE_PASID = 4;
/** iommufd_test.h MOCK_PASID_WIDTH: the PASID device's "pasid-num-bits". */
export const MOCK_PASID_WIDTH = 20;

/** iommufd_test.h enum (generic page table mock): struct iommu_hwpt_selftest.pagetable_type. */
export const MOCK_IOMMUPT_DEFAULT = 0;
export const MOCK_IOMMUPT_HUGE = 1;

/**
 * The generic page table mock's geometry (KernelBehaviour.mockGenericPt).
 * iommu_pt.h:NS(get_info) ORs each level's possible sizes: the mock format
 * (fmt/iommu_mock.c: AMDv1, PT_GRANULE_LG2SZ 11, starting_level 2, so three
 * levels and max_vasz_lg2 = 11 + 9 * 3 = 38) can hold a leaf of every power
 * of two at every level, and "-1 because a whole table pgsize is not
 * allowed" keeps 2^11..2^36. MOCK_IOMMUPT_DEFAULT then narrows the aperture
 * to the mock's; MOCK_IOMMUPT_HUGE keeps the table's [0, 2^38 - 1] and sets
 * pgsize_bitmap = MOCK_HUGE_PAGE_SIZE | PAGE_SIZE.
 */
export function genericPtGeometry(pagetableType: number): { pgsizeBitmap: bigint; aperture: { start: bigint; last: bigint } } {
  if (pagetableType === MOCK_IOMMUPT_HUGE) return { pgsizeBitmap: MOCK_HUGE_PAGE_SIZE | PAGE_SIZE, aperture: { start: 0n, last: (1n << 38n) - 1n } };
  return { pgsizeBitmap: ((1n << 37n) - 1n) & ~((1n << 11n) - 1n), aperture: { start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST } };
}

/** A mock device (selftest.c struct mock_dev): its own iommu_group (generic_device_group). */
export class MockDevice {
  /** struct mock_dev's viommu and vdev_id (7.x): set by mock_domain_nop_attach from the nested domain's vIOMMU. */
  viommu: object | null = null;
  vdevId = 0n;
  /** mock_dev->cache[MOCK_DEV_CACHE_NUM], IOMMU_TEST_DEV_CACHE_DEFAULT at creation (7.x). */
  readonly cache: number[] = [0xbaddad, 0xbaddad, 0xbaddad, 0xbaddad];
  constructor(readonly flags: number) {}

  get noDirty(): boolean {
    return (this.flags & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0;
  }

  /** mock_domain_capable(IOMMU_CAP_DIRTY_TRACKING) */
  get dirtyCapable(): boolean {
    return !this.noDirty;
  }
}

/** The entry a mock domain holds for one 2048-byte IOVA chunk. */
export interface MockEntry {
  /** Id of the pinned page (UserPage.id). */
  pageId: number;
  /** Byte offset of the chunk inside that page (0 or 2048): the phys address is pfn*PAGE_SIZE + offset. */
  offset: bigint;
}

/** An area and the chunks whose first byte it holds (MockDomain's lookups, kept while the area tree is unchanged). */
interface AreaRun {
  iopt: IoPageTable;
  version: number;
  area: Area;
  first: number;
  last: number;
  /** area.startByteOf(first * MOCK_IO_PAGE_SIZE) */
  firstByte: number;
}

export class MockDomain implements IommuDomainLike {
  readonly kind = 'mock';
  readonly pgsizeBitmap: bigint;
  readonly aperture: { start: bigint; last: bigint } = { start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST };
  /** The generic page table mock (KernelBehaviour.mockGenericPt), not the xarray one. */
  readonly genericPt: boolean;
  /** domain->dirty_ops: set for HWPT_ALLOC with IOMMU_HWPT_ALLOC_DIRTY_TRACKING. */
  readonly dirtyOps: boolean;
  /** MOCK_DIRTY_TRACK */
  tracking = false;
  /**
   * Chunk indexes (iova / 2048) whose entry carries MOCK_PFN_DIRTY_IOVA. An index is at most MAX_CHUNK, so a
   * double holds it exactly: the dirty-tracking calls touch every chunk of a buffer (the selftests' 128 MiB:
   * 65,536 a call), and BigInt arithmetic costs several times a double's (docs/performance.md).
   */
  readonly dirty = new Set<number>();
  /** The IOAS this domain is added to (set by iopt_table_add_domain's caller). */
  iopt: IoPageTable | null = null;

  /**
   * @param genericPt the geometry of the generic page table mock of this pagetable_type, or null for the xarray mock
   */
  constructor(device: MockDevice | null, dirtyOps: boolean, genericPt: { pagetableType: number } | null = null) {
    this.genericPt = genericPt !== null;
    if (genericPt) {
      const g = genericPtGeometry(genericPt.pagetableType);
      this.pgsizeBitmap = g.pgsizeBitmap;
      this.aperture = g.aperture;
    } else {
      this.pgsizeBitmap = MOCK_IO_PAGE_SIZE | (device && device.flags & MOCK_FLAGS_DEVICE_HUGE_IOVA ? MOCK_HUGE_PAGE_SIZE : 0n);
    }
    this.dirtyOps = dirtyOps;
  }

  /** selftest.c:iommufd_test_md_check_pa: page_size = 1 << __ffs(pgsize_bitmap). */
  get checkPageSize(): bigint {
    return this.pgsizeBitmap & -this.pgsizeBitmap;
  }

  /**
   * The generic page table refuses a map with neither IOMMU_READ nor
   * IOMMU_WRITE: iommu_pt.h:NS(map_range) "if (WARN_ON(!(prot & (IOMMU_READ |
   * IOMMU_WRITE)))) return -EINVAL;" (a user-triggerable WARN: docs/findings/
   * KF-0001). The xarray mock (mock_domain_map_pages) took any prot.
   */
  mapErrno(iommuProt: number): number {
    return this.genericPt && !(iommuProt & (IOMMU_READ | IOMMU_WRITE)) ? EINVAL : 0;
  }

  /**
   * The leaf PTE holding `iova` in the generic page table mock, as
   * [start, last]. The IOAS maps each run of physically contiguous pages with
   * one map_range (pages.c:batch_to_domain), or each page on its own with
   * IOMMU_OPTION_HUGE_PAGES off (batch_iommu_map_small); map_range picks the
   * largest page size that va, pa and the length allow
   * (pt_iter.h:pt_compute_best_pgsize). Pages being taken as never
   * contiguous, a run is the part of one page inside the area: one 4 KiB leaf
   * when it is a whole page at a 4 KiB aligned IOVA, else 2 KiB leaves (the
   * only other size va and pa can share).
   */
  leafOf(iova: bigint): { start: bigint; last: bigint } {
    const chunk = { start: iova - (iova % MOCK_IO_PAGE_SIZE), last: iova - (iova % MOCK_IO_PAGE_SIZE) + MOCK_IO_PAGE_SIZE - 1n };
    const area = this.iopt?.areas.iterFirst(iova, iova);
    if (!area) return chunk;
    const pageStart = iova - (area.startByteOf(iova) % PAGE_SIZE);
    const start = pageStart > area.start ? pageStart : area.start;
    const pageLast = pageStart + PAGE_SIZE - 1n;
    const last = pageLast < area.last ? pageLast : area.last;
    if (last - start + 1n === PAGE_SIZE && start % PAGE_SIZE === 0n && this.pgsizeBitmap & PAGE_SIZE) return { start, last };
    return chunk;
  }

  /** Whether any 2 KiB item of the leaf [start, last] carries the dirty bit (amdv1.h:amdv1pt_entry_is_write_dirty). */
  leafDirty(leaf: { start: bigint; last: bigint }): boolean {
    for (let c = Number(leaf.start / MOCK_IO_PAGE_SIZE), l = Number(leaf.last / MOCK_IO_PAGE_SIZE); c <= l; c++) if (this.dirty.has(c)) return true;
    return false;
  }

  /** amdv1.h:amdv1pt_entry_make_write_clean clears every item of the leaf. */
  cleanLeaf(leaf: { start: bigint; last: bigint }): void {
    for (let c = Number(leaf.start / MOCK_IO_PAGE_SIZE), l = Number(leaf.last / MOCK_IO_PAGE_SIZE); c <= l; c++) this.dirty.delete(c);
  }

  /** mock_domain_nop_attach: a NO_DIRTY device cannot join a domain with dirty ops. */
  attachErrno(device: MockDevice): number {
    return this.dirtyOps && device.noDirty ? 22 /* EINVAL */ : 0;
  }

  /**
   * Whether xa_load(&mock->pfns, chunk) finds an entry: entryAt's question without making the entry, counted
   * in doubles (`chunk` at most MAX_CHUNK) for the dirty-tracking walks.
   */
  hasEntry(chunk: number): boolean {
    const byte = this.#storedByteOf(chunk);
    return byte >= 0 && this.#lastRun!.area.pages.pinned.has(Math.floor(byte / PAGE_BYTES));
  }

  /** xa_load(&mock->pfns, iova / MOCK_IO_PAGE_SIZE) */
  entryAt(chunk: bigint): MockEntry | null {
    // Past MAX_CHUNK the IOVA is past ULONG_MAX, where nothing is mapped.
    const byte = chunk > MAX_CHUNK ? -1 : this.#storedByteOf(Number(chunk));
    if (byte < 0) return null;
    const pageId = this.#lastRun!.area.pages.pinned.get(Math.floor(byte / PAGE_BYTES));
    if (pageId === undefined) return null;
    return { pageId, offset: BigInt(byte % PAGE_BYTES) };
  }

  /**
   * area.startByteOf(chunk * 2048) in the area holding that IOVA, where that area is filled into a domain;
   * else -1. The area is left in #lastRun with its run of chunks, kept while the tree is unchanged: a walk
   * over a buffer (the dirty-tracking selftests' 128 MiB: 65,536 chunks a call) looks each area up once.
   */
  #storedByteOf(chunk: number): number {
    const iopt = this.iopt;
    if (!iopt) return -1;
    let run = this.#lastRun;
    if (!run || run.iopt !== iopt || run.version !== iopt.areas.version || chunk < run.first || chunk > run.last) {
      run = this.#lastRun = this.#runAt(iopt, chunk);
      if (!run) return -1;
    }
    if (!run.area.storageDomain) return -1;
    // `firstByte` is the run's first chunk's.
    return (chunk - run.first) * CHUNK_BYTES + run.firstByte;
  }

  /** The area holding chunk * 2048, with its chunks [first, last] (those whose first byte it holds). */
  #runAt(iopt: IoPageTable, chunk: number): AreaRun | null {
    const iova = BigInt(chunk) * MOCK_IO_PAGE_SIZE;
    const area = iopt.areas.iterFirst(iova, iova);
    if (!area) return null;
    const first = (area.start + MOCK_IO_PAGE_SIZE - 1n) / MOCK_IO_PAGE_SIZE;
    return { iopt, version: iopt.areas.version, area, first: Number(first), last: Number(area.last / MOCK_IO_PAGE_SIZE), firstByte: Number(area.startByteOf(first * MOCK_IO_PAGE_SIZE)) };
  }
  #lastRun: AreaRun | null = null;

  /**
   * Whether the entry of the chunk at `iova` carries MOCK_PFN_HUGE_IOVA: the
   * area was filled into this domain by batch_to_domain → iommu_map of each
   * physically contiguous run, and iommu_pgsize gives a 1 MiB IOPTE to every
   * 1 MiB-aligned IOVA block wholly inside a run whose IOVA and physical
   * address agree modulo 1 MiB. null when the physical addresses are not
   * known (then the model cannot say).
   */
  hugeAt(iova: bigint): boolean | null {
    const head = iova - (iova % MOCK_HUGE_PAGE_SIZE);
    let huge = this.#huge.get(head);
    if (huge === undefined) {
      const found = this.#hugeAt(head);
      if (found === null) return null;
      this.#huge.set(head, (huge = found));
    }
    return huge;
  }

  /** hugeAt's answers by 1 MiB block: the pages behind a mapped block stay pinned, so their layout holds until it is unmapped. */
  readonly #huge = new Map<bigint, boolean>();

  #hugeAt(head: bigint): boolean | null {
    // batch_to_domain maps small pages only (batch_iommu_map_small) while the IOAS disables large pages.
    if (!(this.pgsizeBitmap & MOCK_HUGE_PAGE_SIZE) || !this.iopt || this.iopt.disableLargePages) return false;
    const last = head + MOCK_HUGE_PAGE_SIZE - 1n;
    const area = this.iopt.areas.iterFirst(head, last);
    if (!area || area.start > head || area.last < last) return false;
    // Where file or dma-buf pages lie physically is not known (MAP_FILE exists only with the generic page table mock, which has no 1 MiB IOPTE flag).
    if (area.pages.type !== 'user') return null;
    const memory = area.pages.process.memory;
    const phys = memory.physicalAddress;
    if (!phys) return null;
    const uaddr = area.pages.uptr + area.startByteOf(head);
    const base = phys(uaddr - (uaddr % PAGE_SIZE));
    if (base === null) return null;
    if ((base + (uaddr % PAGE_SIZE)) % MOCK_HUGE_PAGE_SIZE !== 0n) return false;
    for (let off = PAGE_SIZE; off < MOCK_HUGE_PAGE_SIZE + (uaddr % PAGE_SIZE); off += PAGE_SIZE) {
      const p = phys(uaddr - (uaddr % PAGE_SIZE) + off);
      if (p === null) return null;
      if (p !== base + off) return false;
    }
    return true;
  }

  /** mock_domain_unmap_pages: xa_erase drops the entries, dirty bits included. */
  unmapped(iova: bigint, last: bigint): void {
    for (const head of [...this.#huge.keys()]) if (head + MOCK_HUGE_PAGE_SIZE - 1n >= iova && head <= last) this.#huge.delete(head);
    if (!this.dirty.size) return;
    const first = Number(iova / MOCK_IO_PAGE_SIZE);
    const lastChunk = Number(last / MOCK_IO_PAGE_SIZE);
    for (const c of [...this.dirty]) if (c >= first && c <= lastChunk) this.dirty.delete(c);
  }
}

/** A nested mock domain (__mock_domain_alloc_nested): four IOTLB values, no mappings. */
export class MockNestedDomain {
  readonly kind = 'mock-nested';
  readonly iotlb: number[];
  constructor(
    readonly parent: MockDomain,
    iotlb: number,
    /** mock_nested->mock_viommu: the vIOMMU a nested domain was allocated on (7.x), else null. */
    readonly viommu: object | null = null,
  ) {
    this.iotlb = [iotlb, iotlb, iotlb, iotlb];
  }
}

/** How the lockstep layer describes a real IOMMU domain (e.g. intel-iommu in the viommu profile). */
export interface HardwareDomainSpec {
  pgsizeBitmap: bigint;
  /** Type1Platform.pgsizeBitsUnknown */
  pgsizeBitsUnknown?: bigint;
  aperture: { start: bigint; last: bigint };
  /** The device's reserved regions (iommu_get_resv_regions, minus DIRECT_RELAXABLE), inclusive. */
  reservedRegions: { start: bigint; last: bigint }[];
  /** IOMMU_CAP_ENFORCE_CACHE_COHERENCY and a driver that can enforce it. */
  enforceCacheCoherency: boolean;
  /** The driver maps an IOVA with neither IOMMU_READ nor IOMMU_WRITE (Type1Platform.domainMapsWithoutAccess: virtio-iommu). */
  mapsWithoutAccess?: boolean;
}

/**
 * The domain iommufd gives a real device of a VFIO group (its automatic
 * HWPT on the compat IOAS), described with the geometry the type1 model
 * reads for the same group: the same IOMMU driver allocates both paging
 * domains. Its reserved regions are the group's, minus DIRECT_RELAXABLE
 * (io_pagetable.c:iopt_table_enforce_dev_resv_regions skips those).
 */
export function iommufdDomainSpec(platform: Type1Platform): HardwareDomainSpec {
  return {
    pgsizeBitmap: platform.pgsizeBitmap,
    ...(platform.pgsizeBitsUnknown !== undefined ? { pgsizeBitsUnknown: platform.pgsizeBitsUnknown } : {}),
    aperture: { ...platform.aperture },
    reservedRegions: platform.reservedRegions.filter((r) => r.type !== 'direct-relaxable').map((r) => ({ start: r.start, last: r.last })),
    enforceCacheCoherency: platform.enforceCacheCoherency,
    mapsWithoutAccess: platform.domainMapsWithoutAccess ?? false,
  };
}

/** A real paging domain: only its geometry matters to the io_pagetable; mappings are not tracked. */
export class HardwareDomain implements IommuDomainLike {
  readonly kind = 'hardware';
  readonly pgsizeBitmap: bigint;
  readonly pgsizeBitsUnknown: bigint;
  readonly aperture: { start: bigint; last: bigint };
  constructor(readonly spec: HardwareDomainSpec) {
    this.pgsizeBitmap = spec.pgsizeBitmap;
    this.pgsizeBitsUnknown = spec.pgsizeBitsUnknown ?? 0n;
    this.aperture = { start: spec.aperture.start, last: spec.aperture.last > ULONG_MAX ? ULONG_MAX : spec.aperture.last };
  }
  unmapped(): void {}
  /**
   * VT-d (the hardware IOMMU of the viommu profile): intel_iommu_map → __domain_mapping
   * returns -EINVAL when the PTE would have neither DMA_PTE_READ nor DMA_PTE_WRITE; AMD-Vi's
   * iommu_v1_map_pages too (`if (!(prot & IOMMU_PROT_MASK))`, 6.12.117 drivers/iommu/amd/io_pgtable.c).
   * virtio-iommu does not (spec.mapsWithoutAccess): 6.12.117 drivers/iommu/virtio-iommu.c:viommu_map_pages
   * builds `flags` from IOMMU_READ/WRITE/MMIO and refuses only `flags & ~vdomain->map_flags`, so flags 0
   * is sent to the device as a MAP request, which QEMU takes (seen in the virtio-unsafe guest: compat's
   * MAP_DMA with flags 0 succeeds on the device's domain, and fills a new one at GET_DEVICE_FD).
   */
  mapErrno(iommuProt: number): number {
    if (this.spec.mapsWithoutAccess) return 0;
    return iommuProt & (IOMMU_READ | IOMMU_WRITE) ? 0 : EINVAL;
  }
}
