// KF-0007 (docs/findings/KF-0007.md): the steps that show whether iommufd maps an area whose last byte is IOVA
// 2^64 - 1 into a device's domain as one physical run from its first page. The feature probe (features.ts
// iommufdTopAreaMapsFirstRun) and KF-0007's own test (suites/vm/viommu/findings.test.ts) take them through
// this one function, so what the probe asks is what the test shows.
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, sys as fullSys } from '../sys/index.ts';
import { pagemapReader } from '../sys/pagemap.ts';
import * as U from '../uapi/index.ts';
import type { IommuFd } from './iommufd.ts';

const PAGE = 4096;
/** Three pages, at the top of the IOVA space and (the control) at 16 MiB. */
export const TOP_AREA_SIZE = 3n * BigInt(PAGE);
export const TOP_AREA_IOVA = (1n << 64n) - TOP_AREA_SIZE;
export const TOP_AREA_CONTROL_IOVA = 1n << 24n;
/** iommufd_test_check_pages: a page the access got is not the user's page there. */
export const EBADE = 52;

/** Three pages of a memfd whose PFNs are p, p+1, p+2, mapped in a three-page window in the order p, p+2, p+1. */
export interface PermutedPages {
  /** The window's address (its pages in the order p, p+2, p+1). */
  address: bigint;
  dispose(): void;
}

/**
 * Makes PermutedPages from a pool of memfd pages, or null where this process sees no PFNs
 * (/proc/self/pagemap needs CAP_SYS_ADMIN) or the pool holds no three physically consecutive pages.
 */
export function permutedConsecutivePages(pool = 256): PermutedPages | null {
  const s = fullSys();
  const physical = pagemapReader();
  if (!physical) return null;
  const fd = s.memfdCreate('kf-0007', 0);
  if (fd < 0) return null;
  let all: ReturnType<typeof s.mmap> = -1;
  let window: ReturnType<typeof s.mmap> = -1;
  const dispose = () => {
    if (typeof window !== 'number') s.munmap(window);
    if (typeof all !== 'number') s.munmap(all);
    s.close(fd);
  };
  const give = (): PermutedPages | null => {
    if (s.ftruncate(fd, pool * PAGE) < 0) return null;
    all = s.mmap(pool * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (typeof all === 'number') return null;
    const bytes = new Uint8Array(all.buffer);
    for (let i = 0; i < pool; i++) bytes[i * PAGE] = (i % 251) + 1;
    const indexOf = new Map<bigint, number>();
    for (let i = 0; i < pool; i++) {
      const pa = physical(all.address + BigInt(i * PAGE));
      if (pa !== null) indexOf.set(pa / BigInt(PAGE), i);
    }
    for (const [pfn, p] of indexOf) {
      const p1 = indexOf.get(pfn + 1n), p2 = indexOf.get(pfn + 2n);
      if (p1 === undefined || p2 === undefined) continue;
      window = s.mmap(3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      if (typeof window === 'number') return null;
      for (const [slot, page] of [[0, p], [1, p2], [2, p1]] as const) {
        if (s.mmapOver(window, slot * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, page * PAGE) < 0) return null;
      }
      return { address: window.address, dispose };
    }
    return null;
  };
  try {
    const pages = give();
    if (!pages) dispose();
    return pages;
  } catch (e) {
    dispose();
    throw e;
  }
}

export type TopAreaRunSeen =
  /** IOMMU_IOAS_MAP of the pages at the control IOVA failed: nothing to compare with. */
  | { step: 'control-map'; errno: number }
  /** IOMMU_IOAS_MAP at the top was refused (the IOMMU's aperture stops short of 2^64: VT-d). */
  | { step: 'top-map'; errno: number }
  /** IOMMU_TEST_OP_CREATE_ACCESS failed. */
  | { step: 'access'; errno: number }
  /** ACCESS_PAGES of the control mapping did not get the user's pages: the check itself cannot be trusted. */
  | { step: 'control-check'; errno: number }
  /** Both checked: `top` is ACCESS_PAGES's errno at the top (0: the user's pages; EBADE: others). */
  | { step: 'checked'; top: number };

/**
 * On an IOAS a device is attached to (a domain of the platform's IOMMU under it), with PermutedPages: maps the
 * three pages at the control IOVA and at [2^64 - 12 KiB, 2^64), and asks IOMMU_TEST_OP_ACCESS_PAGES (an access
 * that pins pages: MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) for each, which reads the area's pages back from
 * the domain that holds them and checks them against the user's at uptr (iommufd_test_check_pages: EBADE at
 * the first that differs). 6.12 maps the top as p, p+1, p+2 (batch_to_domain's `min(last_iova + 1, ...)` is
 * min(0, ...)): the same set of pages as given, so every pin still meets its unpin, but the middle IOVA reaches
 * the wrong page. Unmaps what it mapped and closes the access, whatever the step.
 */
export function topAreaRunSteps(iommufd: IommuFd, ioasId: number, pages: PermutedPages): TopAreaRunSeen {
  const rw = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
  const map = (iova: bigint) => iommufd.ioasMap({ ioasId, flags: rw, userVa: pages.address, length: TOP_AREA_SIZE, iova }).errno;
  const control = map(TOP_AREA_CONTROL_IOVA);
  if (control !== 0) return { step: 'control-map', errno: control };
  let top = -1;
  try {
    top = map(TOP_AREA_IOVA);
    if (top !== 0) return { step: 'top-map', errno: top };
    const access = iommufd.testCreateAccess({ ioasId, flags: U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES });
    if (access.errno !== 0) return { step: 'access', errno: access.errno };
    try {
      const check = (iova: bigint) => {
        const r = iommufd.testAccessPages({ accessFd: access.accessFd, iova, length: TOP_AREA_SIZE, uptr: pages.address });
        if (r.errno === 0) iommufd.testDestroyAccessPages({ accessFd: access.accessFd, accessPagesId: r.accessPagesId });
        return r.errno;
      };
      const c = check(TOP_AREA_CONTROL_IOVA);
      if (c !== 0) return { step: 'control-check', errno: c };
      return { step: 'checked', top: check(TOP_AREA_IOVA) };
    } finally {
      iommufd.closeAccess(access.accessFd);
    }
  } finally {
    iommufd.ioasUnmap({ ioasId, iova: TOP_AREA_CONTROL_IOVA, length: TOP_AREA_SIZE });
    if (top === 0) iommufd.ioasUnmap({ ioasId, iova: TOP_AREA_IOVA, length: TOP_AREA_SIZE });
  }
}
