// struct iopt_pages (pages.c): the user memory behind one MAP (or VFIO
// MAP_DMA), shared by every area that COPY or a compat split derives from it.
//
// Pinning is lazy and per page index. An index is pinned while anything
// holds it: an area filled into the IOAS's domains (pages->domains_itree)
// or an in-kernel access (pages->access_itree). A new holder pins only the
// indexes nobody held (pfn_reader reads held ones from the xarray or the
// storage domain), and the last holder's release unpins (pfn_reader_unpin
// over the double-span holes). The model keeps a holder count per index,
// which gives the same pinned set as the kernel's union of the two trees.
//
// Charging (pfn_reader_user_update_pinned → do_update_pinned) happens once
// per fill, after every page was read: EFAULT from pinning a page therefore
// always beats ENOMEM from the rlimit, and either failure unwinds the fill.
import type { DmaBuf, DmaBufImporter } from './dma-buf.ts';
import { EFAULT, EINVAL, ENODEV, ENOMEM, EOVERFLOW } from './errno.ts';
import { PAGE_SIZE, type ModelProcess, type ShmemFile } from './process.ts';

export const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** SIZE_MAX and ULONG_MAX on x86-64. */
export const ULONG_MAX = U64_MAX;

/** io_pagetable.h IOPT_PAGES_ACCOUNT_* */
export const ACCOUNT_NONE = 0;
export const ACCOUNT_USER = 1;
export const ACCOUNT_MM = 2;
export type AccountMode = typeof ACCOUNT_NONE | typeof ACCOUNT_USER | typeof ACCOUNT_MM;

/**
 * io_pagetable.h enum iopt_address_type: where the pages come from. USER: a
 * user VA range (IOMMU_IOAS_MAP); FILE: a memfd's page cache
 * (IOMMU_IOAS_MAP_FILE, pinned with memfd_pin_folios); DMABUF: a dma-buf's
 * physical range (IOMMU_IOAS_MAP_FILE of a dma-buf fd: never pinned, never
 * charged, revocable).
 */
export type AddressType = 'user' | 'file' | 'dmabuf';

/** pages.c MAX_NPFNS: type_max of a pfn_batch npfns entry (u32). */
const MAX_NPFNS = 0xffff_ffffn;

/** An inclusive range of page indexes into one IoPages. */
export interface IndexRange {
  start: number;
  last: number;
}

export class IoPages implements DmaBufImporter {
  /** kref: areas (and in-flight lists) referencing these pages. */
  refs = 1;
  /** pages->type */
  type: AddressType = 'user';
  /** Page-aligned start of the user VA range (pages->uptr); 0 for FILE and DMABUF pages. */
  readonly uptr: bigint;
  /**
   * FILE: page-aligned byte offset into the file (pages->start); DMABUF: into
   * the dma-buf (pages->dmabuf.start). 0 for USER pages.
   */
  start = 0n;
  /** FILE: the memfd; null for a file memfd_pin_folios refuses (neither shmem nor hugetlbfs). */
  file: ShmemFile | null = null;
  /** DMABUF: the attached dma-buf. */
  dmabuf: DmaBuf | null = null;
  /** DMABUF: iopt_dmabuf_revoked (pages->dmabuf.phys.len == 0). */
  revoked = false;
  readonly npages: bigint;
  /** Mapped with write permission: pins use FOLL_WRITE (pfn_reader_user_init). */
  readonly writable: boolean;
  accountMode: AccountMode;
  /** Index → the page pinned there (what the domain and the xarray hold). */
  readonly pinned = new Map<number, number>();
  /** Index → how many holders (domain-filled areas, access ranges) need it pinned. */
  readonly #holders = new Map<number, number>();
  /** pages->npinned, which last_npinned always equals between operations. */
  #npinned = 0n;

  private constructor(
    /** pages->source_mm, source_task and source_user: the process charged; IOMMU_IOAS_CHANGE_PROCESS moves it (changeProcess). */
    public process: ModelProcess,
    uptr: bigint,
    npages: bigint,
    writable: boolean,
    accountMode: AccountMode,
  ) {
    this.uptr = uptr;
    this.npages = npages;
    this.writable = writable;
    this.accountMode = accountMode;
  }

  /**
   * pages.c:iopt_alloc_pages. The account mode comes from the mapping
   * task's CAP_IPC_LOCK (NONE) or USER; the caller upgrades USER to MM when
   * the context is in MM mode (io_pagetable.c:iopt_map_user_pages).
   */
  static alloc(process: ModelProcess, uptr: bigint, length: bigint, writable: boolean, overflowFirst = false): IoPages | number {
    // iopt_alloc_user_pages checks the wrap first where it exists (KernelBehaviour.userPagesOverflowFirst).
    if (overflowFirst && uptr + length > ULONG_MAX) return EOVERFLOW;
    // "The iommu API uses size_t as the length, and protect the DIV_ROUND_UP below from overflow"
    if (length > ULONG_MAX - PAGE_SIZE || length === 0n) return EINVAL;
    if (uptr + length > ULONG_MAX) return EOVERFLOW;
    const base = uptr - (uptr % PAGE_SIZE);
    const npages = (length + (uptr - base) + PAGE_SIZE - 1n) / PAGE_SIZE;
    const mode: AccountMode = process.credentials.ipcLock ? ACCOUNT_NONE : ACCOUNT_USER;
    return new IoPages(process, base, npages, writable, mode);
  }

  /** pages.c:iopt_alloc_pages: the checks and the page count every address type shares. */
  static #allocPages(process: ModelProcess, startByte: bigint, length: bigint, writable: boolean): IoPages | number {
    // "The iommu API uses size_t as the length, and protect the DIV_ROUND_UP below from overflow"
    if (length > ULONG_MAX - PAGE_SIZE || length === 0n) return EINVAL;
    const npages = (length + startByte + PAGE_SIZE - 1n) / PAGE_SIZE;
    return new IoPages(process, 0n, npages, writable, process.credentials.ipcLock ? ACCOUNT_NONE : ACCOUNT_USER);
  }

  /**
   * pages.c:iopt_alloc_file_pages: pages of a file from byte `start`
   * (`startByte` = start % PAGE_SIZE). Nothing is checked against the file
   * here: memfd_pin_folios refuses, when the pages are pinned, a file that is
   * neither shmem nor hugetlbfs and a range past its end (EINVAL).
   */
  static allocFile(process: ModelProcess, file: ShmemFile | null, startByte: bigint, start: bigint, length: bigint, writable: boolean): IoPages | number {
    const pages = IoPages.#allocPages(process, startByte, length, writable);
    if (typeof pages === 'number') return pages;
    pages.type = 'file';
    pages.file = file;
    pages.start = start - startByte;
    return pages;
  }

  /**
   * pages.c:iopt_alloc_dmabuf_pages: the range must lie inside the dma-buf
   * ("dmabuf->size <= (start + length - 1)": EINVAL); "dmabuf does not use
   * pinned page accounting" (ACCOUNT_NONE); then iopt_map_dmabuf attaches
   * (dma_buf_dynamic_attach), and the exporter's map refuses a revoked
   * buffer (selftest.c:iommufd_test_dma_buf_iommufd_map: ENODEV).
   */
  static allocDmabuf(process: ModelProcess, dmabuf: DmaBuf, startByte: bigint, start: bigint, length: bigint, writable: boolean): IoPages | number {
    if (dmabuf.size <= start + length - 1n || length / PAGE_SIZE >= MAX_NPFNS) return EINVAL;
    const pages = IoPages.#allocPages(process, startByte, length, writable);
    if (typeof pages === 'number') return pages;
    pages.accountMode = ACCOUNT_NONE;
    pages.type = 'dmabuf';
    pages.start = start - startByte;
    if (dmabuf.revoked) return ENODEV;
    pages.dmabuf = dmabuf;
    dmabuf.attachments.add(pages);
    return pages;
  }

  /**
   * io_pagetable.c:iopt_alloc_area_pages: the address whose alignment an
   * automatic IOVA keeps: the user VA, or the offset into the file or dma-buf.
   */
  alignmentHint(startByte: bigint): bigint {
    return (this.type === 'user' ? this.uptr : this.start) + startByte;
  }

  /**
   * pages.c:iopt_revoke_notify: the dma-buf's exporter invalidated the
   * attachment: every domain mapping of the pages is unmapped and the pages
   * are revoked for good (phys.len = 0): areas stay, mapped nowhere, until
   * unmapped; a domain attached later maps nothing of them.
   * (The mock domain's entries are read from `pinned`, which empties here.
   * Dirty bits of the range are not dropped: no case tracks dirty bits over
   * a dma-buf.)
   */
  invalidateMappings(): void {
    if (this.revoked) return;
    this.revoked = true;
    this.pinned.clear();
  }

  /** The last area let go of the pages (iopt_release_pages): a dma-buf is detached. */
  released(): void {
    this.dmabuf?.attachments.delete(this);
  }

  get npinned(): bigint {
    return this.#npinned;
  }

  isHeld(index: number): boolean {
    return this.#holders.has(index);
  }

  /** The user VA of a page index. */
  addressOf(index: number): bigint {
    return this.uptr + BigInt(index) * PAGE_SIZE;
  }

  /**
   * pfn_reader_user_pin for one index, as a page id, or the errno that fails
   * the pin. USER: pin_user_pages_fast with FOLL_LONGTERM (+FOLL_WRITE if
   * writable): an unmapped address or a permission the VMA lacks is EFAULT
   * (mm/gup.c:check_vma_flags). FILE: memfd_pin_folios (mm/gup.c), which
   * takes only shmem and hugetlbfs files and no range reaching the file's
   * end ("if (end >= i_size_read(...)) return -EINVAL", end being the last
   * byte of the batch), and allocates a page the file does not have yet.
   */
  #pin(index: number): { id: number } | number {
    if (this.type === 'file') {
      if (!this.file) return EINVAL;
      const offset = this.start + BigInt(index) * PAGE_SIZE;
      if (offset + PAGE_SIZE - 1n >= this.file.size) return EINVAL;
      return { id: this.file.pageAt(offset / PAGE_SIZE)! };
    }
    // A remote mm that is gone: pfn_reader_user_pin's mmget_not_zero fails (EFAULT).
    if (this.process.exited) return EFAULT;
    const page = this.process.memory.pageAt(this.addressOf(index));
    if (!page) return EFAULT;
    if (this.writable ? !page.writable : !page.readable) return EFAULT;
    return { id: page.id };
  }

  /**
   * Adds one holder over each range: pins the indexes nobody held, then
   * charges them. All-or-nothing: on EFAULT/ENOMEM nothing changes.
   */
  hold(ranges: IndexRange[]): number {
    if (this.type === 'dmabuf') {
      // pfn_reader_fill_dmabuf: the physical pages, read and mapped, neither pinned nor charged;
      // nothing at all once revoked (iopt_area_fill_domain(s) skip the pfn_reader).
      for (const r of ranges) {
        for (let i = r.start; i <= r.last; i++) {
          this.#holders.set(i, (this.#holders.get(i) ?? 0) + 1);
          if (!this.revoked) this.pinned.set(i, this.dmabuf!.pageAt(this.start / PAGE_SIZE + BigInt(i)));
        }
      }
      return 0;
    }
    const fresh = new Map<number, number>();
    for (const r of ranges) {
      for (let i = r.start; i <= r.last; i++) {
        if (this.#holders.has(i) || fresh.has(i)) continue;
        const pin = this.#pin(i);
        if (typeof pin === 'number') return pin;
        fresh.set(i, pin.id);
      }
    }
    const rc = this.#charge(BigInt(fresh.size));
    if (rc) return rc;
    for (const [i, id] of fresh) {
      this.pinned.set(i, id);
      this.process.pinPage(id);
    }
    for (const r of ranges) for (let i = r.start; i <= r.last; i++) this.#holders.set(i, (this.#holders.get(i) ?? 0) + 1);
    return 0;
  }

  /** Drops one holder from each range; indexes left without holders are unpinned and uncharged (update_unpinned). */
  release(ranges: IndexRange[]): void {
    let unpinned = 0n;
    for (const r of ranges) {
      for (let i = r.start; i <= r.last; i++) {
        const n = this.#holders.get(i);
        if (n === undefined) throw new Error(`page index ${i} released without a holder`);
        if (n > 1) {
          this.#holders.set(i, n - 1);
          continue;
        }
        this.#holders.delete(i);
        const id = this.pinned.get(i);
        this.pinned.delete(i);
        if (this.type === 'dmabuf') continue;
        this.process.unpinPage(id!);
        unpinned++;
      }
    }
    if (unpinned) this.#uncharge(unpinned);
  }

  /**
   * pages.c:do_update_pinned(inc): USER mode charges the uid's locked_vm
   * (incr_user_locked_vm), MM mode the mm's locked_vm (__account_locked_vm),
   * both against RLIMIT_MEMLOCK with a strict `>`. Every mode adds to
   * mm->pinned_vm once the charge succeeded.
   */
  #charge(npages: bigint): number {
    if (npages === 0n) return 0;
    const rc = chargePinned(this.process, this.accountMode, npages);
    if (rc) return rc;
    this.#npinned += npages;
    return 0;
  }

  #uncharge(npages: bigint): void {
    unchargePinned(this.process, this.accountMode, npages);
    this.#npinned -= npages;
  }

  /**
   * ioas.c:iommufd_ioas_change_process, for these pages: when `chargeMoves`
   * (need_charge_update), un-charge npinned from the process charged now
   * (iopt_pages_update_pinned(pages, pages->npinned, false, NULL); the
   * caller charged `to` already), then change_mm: `to` becomes the source
   * process, which every later pin and unpin charges. Returns the un-charge's
   * errno: EINVAL when MM mode's update_mm_locked_vm finds the old mm gone
   * (mmget_not_zero fails; the kernel WARNs and still moves the pages).
   */
  changeProcess(to: ModelProcess, chargeMoves: boolean): number {
    let rc = 0;
    if (chargeMoves && this.#npinned) {
      if (this.accountMode === ACCOUNT_MM && this.process.exited) rc = EINVAL;
      else unchargePinned(this.process, this.accountMode, this.#npinned);
    }
    this.process = to;
    return rc;
  }

  /**
   * Whether a temporary pin of [start, last] would succeed (the ACCESS_RW slow
   * path's pfn_reader): held indexes come from storage, the rest are pinned
   * with this iopt_pages' gup flags and released again without a charge.
   */
  temporaryPinErrno(start: number, last: number): number {
    for (let i = start; i <= last; i++) {
      if (this.#holders.has(i)) continue;
      const pin = this.#pin(i);
      if (typeof pin === 'number') return pin;
    }
    return 0;
  }
}

/**
 * pages.c:iopt_pages_update_pinned(inc) for `process` as the source: USER
 * mode charges the uid's locked_vm (incr_user_locked_vm), MM mode the mm's
 * locked_vm (__account_locked_vm with bypass_rlim false), both against
 * RLIMIT_MEMLOCK with a strict `>`; every mode then adds to mm->pinned_vm.
 * (The model keeps the uid's locked_vm per process: a forked child's
 * user_struct is really its parent's, which only a finite limit would show.)
 */
export function chargePinned(p: ModelProcess, mode: AccountMode, npages: bigint): number {
  const limit = p.memlockLimitPages();
  if (mode === ACCOUNT_USER) {
    if (p.userLockedVm + npages > limit) return ENOMEM;
    p.userLockedVm += npages;
  } else if (mode === ACCOUNT_MM) {
    if (p.mmLockedVm + npages > limit) return ENOMEM;
    p.mmLockedVm += npages;
  }
  p.mmPinnedVm += npages;
  return 0;
}

/** pages.c:iopt_pages_update_pinned(dec): decr_user_locked_vm or __account_locked_vm(dec), then mm->pinned_vm. */
export function unchargePinned(p: ModelProcess, mode: AccountMode, npages: bigint): void {
  if (mode === ACCOUNT_USER) p.userLockedVm -= npages;
  else if (mode === ACCOUNT_MM) p.mmLockedVm -= npages;
  p.mmPinnedVm -= npages;
}
