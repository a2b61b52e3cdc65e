// How IOMMU_HWPT_GET_DIRTY_BITMAP reports a dirty leaf PTE that spans more
// than one page-table item: on the generic page table mock (2 KiB items),
// one 4 KiB page mapped alone is one contiguous leaf of two items. Used by
// the feature probe (the model follows what it finds) and by the
// reproducers of KF-0002 and KF-0003 (suites/vm/mock/findings.test.ts),
// which judge it. The read that starts at the leaf's second item is only
// made when asked for: on 7.2.13 it never returns (KF-0003).
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Mapping, type Sys } from '../sys/index.ts';
import * as U from '../uapi/index.ts';
import type { IommuFd } from './iommufd.ts';

const ITEM = 2048;
const PAGE = 4096;

export interface ContigLeafDirty {
  /**
   * The bitmap byte (bit 0: the leaf's first 2 KiB, bit 1: its second) read
   * over the whole leaf after IOMMU_TEST_OP_DIRTY marked its second half.
   * The leaf is dirty as a whole: 0b11. 0b01 is the leaf reported one item
   * short, at its first half (iommu_pt.h:record_dirty).
   */
  wholeLeaf: number;
  /**
   * Only when asked for (it hangs a kernel with KF-0003): the same read
   * started at the leaf's second half (iova + 2 KiB, length 2 KiB), bit 0 of
   * the first byte, and how many bytes after that one it set in the
   * bitmap's page (the bitmap is one byte long).
   */
  fromSecondHalf?: { bit: number; strayBytes: number };
}

/**
 * Maps one page at MOCK_APERTURE_START of a fresh IOAS, gives it a dirty
 * tracking mock HWPT (for the device `idevId`), marks the page's second
 * 2 KiB dirty and reads the bitmap twice (NO_CLEAR). Everything made is
 * destroyed again. Null when a step fails (the errno is not this question's).
 */
export function contigLeafDirty(fd: IommuFd, sys: Sys, idevId: number, opts: { readSecondHalf?: boolean } = {}): ContigLeafDirty | null {
  const page = sys.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const bitmap = sys.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const made: number[] = [];
  try {
    if (typeof page === 'number' || typeof bitmap === 'number') return null;
    new Uint8Array(page.buffer)[0] = 1;
    const bits = new Uint8Array(bitmap.buffer);
    const ioas = fd.ioasAlloc();
    if (ioas.errno) return null;
    made.push(ioas.ioasId);
    const iova = BigInt(U.MOCK_APERTURE_START);
    if (fd.ioasMap({ ioasId: ioas.ioasId, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, userVa: page.address, length: PAGE, iova }).errno) return null;
    const hwpt = fd.hwptAlloc({ devId: idevId, ptId: ioas.ioasId, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING });
    if (hwpt.errno) return null;
    made.push(hwpt.hwptId);
    if (fd.hwptSetDirtyTracking({ hwptId: hwpt.hwptId, enable: true }).errno) return null;
    bits[0] = 0b10;
    if (fd.testDirty({ hwptId: hwpt.hwptId, iova, length: PAGE, pageSize: ITEM, uptr: bitmap.address }).errno) return null;
    const read = (at: bigint, length: number): number | null => {
      bits.fill(0);
      const r = fd.hwptGetDirtyBitmap({ hwptId: hwpt.hwptId, flags: U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, iova: at, length, pageSize: ITEM, bitmap: bits.subarray(0, 1) });
      return r.errno ? null : bits[0]!;
    };
    const wholeLeaf = read(iova, PAGE);
    if (wholeLeaf === null) return null;
    if (!opts.readSecondHalf) return { wholeLeaf };
    const second = read(iova + BigInt(ITEM), ITEM);
    if (second === null) return null;
    return { wholeLeaf, fromSecondHalf: { bit: second & 1, strayBytes: bits.subarray(1).filter((b) => b !== 0).length } };
  } finally {
    for (const id of made.reverse()) fd.destroy(id);
    for (const m of [page, bitmap]) if (typeof m !== 'number') sys.munmap(m as Mapping);
  }
}
