// The user-space side the models need to know about: the process's memory
// (which addresses are mapped, readable, writable, and which page backs them),
// its credentials and RLIMIT_MEMLOCK, and the counters that pinning charges.
// One ModelProcess stands for one real process; every model context (an
// iommufd fd, a VFIO container) of that process shares it, as in the kernel.
//
// The lockstep session keeps it in step with the real process: every mmap,
// munmap, mprotect and madvise a suite makes goes through the session, which
// tells the model, and capability or rlimit changes likewise.

export const PAGE_SIZE = 4096n;
export const PROT_READ = 1;
export const PROT_WRITE = 2;

export interface UserMapping {
  start: bigint;
  /** Bytes, a multiple of PAGE_SIZE. */
  length: bigint;
  prot: number;
  shared: boolean;
  /** A MAP_SHARED mapping of a memfd: its pages are the file's page cache pages, from `fileOffset` on. */
  file?: ShmemFile;
  fileOffset?: bigint;
}

export interface UserPage {
  /** Stands for the physical page: it changes when the page is replaced (munmap+mmap, MADV_DONTNEED of private memory). */
  id: number;
  readable: boolean;
  writable: boolean;
}

/** The process's address space, page by page where it matters. */
export class UserMemory {
  #mappings: UserMapping[] = [];
  /**
   * The physical address behind a user address, where the platform can say
   * (as root, /proc/self/pagemap): whether pages are physically contiguous
   * decides the IOPTE sizes of a domain with huge pages. null: not known.
   */
  physicalAddress: ((address: bigint) => bigint | null) | null = null;
  /** Page identity by page address; a page gets one on first use (as a fault would allocate it). */
  #pages = new Map<bigint, number>();
  #nextPageId = 1;

  get mappings(): readonly UserMapping[] {
    return this.#mappings;
  }

  /** A new page identity (a page the kernel allocates: a fault, a page cache page, a buffer). */
  newPageId(): number {
    return this.#nextPageId++;
  }

  /** `file`: a MAP_SHARED mapping of a memfd from byte `fileOffset` (page-aligned). */
  map(start: bigint, length: bigint, prot: number, shared: boolean, file?: { file: ShmemFile; offset: bigint }): void {
    this.unmap(start, length);
    this.#mappings.push({ start, length, prot, shared, ...(file && shared ? { file: file.file, fileOffset: file.offset } : {}) });
    this.#mappings.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  unmap(start: bigint, length: bigint): void {
    const end = start + length;
    const kept: UserMapping[] = [];
    for (const m of this.#mappings) {
      const mEnd = m.start + m.length;
      if (mEnd <= start || m.start >= end) {
        kept.push(m);
        continue;
      }
      if (m.start < start) kept.push({ ...m, length: start - m.start });
      if (mEnd > end) kept.push({ ...m, start: end, length: mEnd - end });
    }
    this.#mappings = kept;
    for (let p = start; p < end; p += PAGE_SIZE) this.#pages.delete(p);
  }

  protect(start: bigint, length: bigint, prot: number): void {
    const end = start + length;
    const out: UserMapping[] = [];
    for (const m of this.#mappings) {
      const mEnd = m.start + m.length;
      if (mEnd <= start || m.start >= end) {
        out.push(m);
        continue;
      }
      const lo = m.start > start ? m.start : start;
      const hi = mEnd < end ? mEnd : end;
      if (m.start < lo) out.push({ ...m, length: lo - m.start });
      out.push({ ...m, start: lo, length: hi - lo, prot });
      if (mEnd > hi) out.push({ ...m, start: hi, length: mEnd - hi });
    }
    this.#mappings = out;
  }

  /** MADV_DONTNEED: private pages are dropped (a later touch gets a new, zeroed page); shared ones stay. */
  adviseDontNeed(start: bigint, length: bigint): void {
    for (let p = start; p < start + length; p += PAGE_SIZE) {
      const m = this.mappingAt(p);
      if (m && !m.shared) this.#pages.delete(p);
    }
  }

  /** A user address where `length` bytes of `file` from `offset` are mapped shared, or null. */
  addressOfFile(file: ShmemFile, offset: bigint, length: bigint): bigint | null {
    for (const m of this.#mappings) {
      if (m.file !== file) continue;
      const at = offset - m.fileOffset!;
      if (at >= 0n && at + length <= m.length) return m.start + at;
    }
    return null;
  }

  mappingAt(address: bigint): UserMapping | null {
    for (const m of this.#mappings) if (address >= m.start && address < m.start + m.length) return m;
    return null;
  }

  /** The page holding `address`, faulting it in; null when nothing is mapped there. */
  pageAt(address: bigint): UserPage | null {
    const m = this.mappingAt(address);
    if (!m) return null;
    const base = address - (address % PAGE_SIZE);
    if (m.file) {
      // A shared file page: the page cache's, shared with every other mapping and with iommufd's
      // pins of the file (MAP_FILE); past the file's end a fault is SIGBUS, so gup fails.
      const id = m.file.pageAt((base - m.start + m.fileOffset!) / PAGE_SIZE);
      return id === null ? null : { id, readable: (m.prot & PROT_READ) !== 0, writable: (m.prot & PROT_WRITE) !== 0 };
    }
    let id = this.#pages.get(base);
    if (id === undefined) {
      id = this.#nextPageId++;
      this.#pages.set(base, id);
    }
    return { id, readable: (m.prot & PROT_READ) !== 0, writable: (m.prot & PROT_WRITE) !== 0 };
  }
}

/**
 * A memfd (mm/memfd.c: memfd_create): a shmem file, or a hugetlbfs one with
 * MFD_HUGETLB, of `size` bytes (ftruncate). Its pages are the page cache's,
 * allocated on first use by a fault through a shared mapping or by
 * memfd_pin_folios (IOMMU_IOAS_MAP_FILE), and the same for both.
 */
export class ShmemFile {
  size = 0n;
  readonly #pages = new Map<bigint, number>();

  constructor(
    readonly memory: UserMemory,
    /** MFD_HUGETLB: a hugetlbfs file, whose pages are compound (check_refs skips them). */
    readonly hugetlb: boolean,
  ) {}

  /** The page cache page at a page index, allocated on first use; null past the end of the file. */
  pageAt(index: bigint): number | null {
    if (index * PAGE_SIZE >= this.size) return null;
    let id = this.#pages.get(index);
    if (id === undefined) this.#pages.set(index, (id = this.memory.newPageId()));
    return id;
  }

  /** ftruncate: pages wholly past the new end leave the page cache (a pin keeps its page, not its place in the file). */
  truncate(size: bigint): void {
    this.size = size;
    for (const index of [...this.#pages.keys()]) if (index * PAGE_SIZE >= size) this.#pages.delete(index);
  }

  /** Whether a page id is one of this file's (PageCompound for a hugetlbfs file). */
  has(pageId: number): boolean {
    for (const id of this.#pages.values()) if (id === pageId) return true;
    return false;
  }
}

export interface Credentials {
  /** CAP_IPC_LOCK in the effective set: pinning is not limited (and, for iommufd, not charged). */
  ipcLock: boolean;
  /** CAP_SYS_RESOURCE: needed to change IOMMU_OPTION_RLIMIT_MODE. */
  sysResource: boolean;
}

export class ModelProcess {
  readonly memory: UserMemory;
  credentials: Credentials = { ipcLock: true, sysResource: true };
  /** RLIMIT_MEMLOCK soft limit in bytes (RLIM_INFINITY = 2^64-1). */
  memlockLimit = 0xffff_ffff_ffff_ffffn;
  /** The uid's user->locked_vm in pages, as charged by iommufd's ACCOUNT_USER mode. */
  userLockedVm = 0n;
  /** mm->locked_vm in pages as charged by pinning (iommufd ACCOUNT_MM, vfio type1): the VmLck delta. */
  mmLockedVm = 0n;
  /** mm->pinned_vm in pages: the VmPin delta. */
  mmPinnedVm = 0n;

  /**
   * Long-term pins (FOLL_PIN) on each physical page, by UserPage id: every
   * iopt_pages that pinned the page counts once, as does every other pinner
   * (vfio type1). selftest.c:iommufd_test_md_check_refs reads this as
   * page_ref_count / GUP_PIN_COUNTING_BIAS.
   */
  readonly pagePins: Map<number, number>;
  /** The process exited: its mm is gone (mmget_not_zero fails), so nothing can be pinned from it any more. */
  exited = false;

  /** `shared`: the memory and physical pages of the process this one was forked from (see fork). */
  constructor(shared?: { memory: UserMemory; pagePins: Map<number, number> }) {
    this.memory = shared?.memory ?? new UserMemory();
    this.pagePins = shared?.pagePins ?? new Map();
  }

  /**
   * A forked child: its own mm (its own pinned_vm and locked_vm), the same
   * credentials and limit, and the parent's memory. The model follows the
   * selftests' fork cases, whose buffer is MAP_SHARED: the child's pages are
   * the parent's physical pages (private pages would be copied on write).
   */
  fork(): ModelProcess {
    const child = new ModelProcess({ memory: this.memory, pagePins: this.pagePins });
    child.credentials = { ...this.credentials };
    child.memlockLimit = this.memlockLimit;
    return child;
  }

  pinPage(pageId: number): void {
    this.pagePins.set(pageId, (this.pagePins.get(pageId) ?? 0) + 1);
  }

  unpinPage(pageId: number): void {
    const n = (this.pagePins.get(pageId) ?? 0) - 1;
    if (n < 0) throw new Error(`page ${pageId} unpinned more often than pinned`);
    if (n === 0) this.pagePins.delete(pageId);
    else this.pagePins.set(pageId, n);
  }

  pinsOf(pageId: number): number {
    return this.pagePins.get(pageId) ?? 0;
  }

  /** RLIMIT_MEMLOCK in pages, as the kernel compares it (rlimit >> PAGE_SHIFT). */
  memlockLimitPages(): bigint {
    return this.memlockLimit / PAGE_SIZE;
  }
}
