// KF-0004's reproducer (docs/findings/KF-0004.md), on the kernel alone: a
// IOMMU_HWPT_GET_DIRTY_BITMAP of length 0 at IOVA 0 on a dirty-tracking
// domain that maps IOVA 0. The only mock domain whose aperture holds IOVA 0
// is the generic page table's MOCK_IOMMUPT_HUGE (MOCK_IOMMUPT_DEFAULT's
// starts at MOCK_APERTURE_START), so the HWPT is one of those, on an IOAS
// of its own (the device's own mock domain would reserve [0, 16 MiB)).
//
// Layout: 16 MiB mapped contiguously from IOVA 0 (eight areas over one
// 2 MiB buffer of 4 KiB pages), a hole, 2 MiB at 32 MiB. Dirty: the last 4 KiB page before
// the hole (bit 4095 with 4 KiB bits: byte 511, 0x80) and the first page
// after it (bit 8192: byte 1024, 0x01). The read of length 0 gets an 8 KiB
// zeroed region as its `data`.
//
// Run it alone in a guest: iommufd-conformance vm --profile mock --kernel-version 7.2 \
//   --exec "node --import tsx suites/vm/mock/findings/zero-length-bitmap.ts"
import { fileURLToPath } from 'node:url';
import type { IommuFd } from '../../../../lib/kernel/iommufd.ts';
import { MOCK_IOMMUPT_HUGE } from '../../../../lib/model/mock.ts';
import { MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Mapping, type Sys } from '../../../../lib/sys/index.ts';
import * as U from '../../../../lib/uapi/index.ts';

const MiB = 1n << 20n;
const PAGE = 4096n;
/** The region the read of length 0 gets as its bitmap. */
export const REGION_BYTES = 8192;
/** IOVA of the dirty page just before the hole, and the bitmap byte and bit a bitmap from IOVA 0 gives it. */
export const DIRTY_BEFORE_HOLE = { iova: 16n * MiB - PAGE, byte: 511, bit: 0x80 };
/** IOVA of the dirty page just after the hole. */
export const DIRTY_AFTER_HOLE = { iova: 32n * MiB, byte: 1024, bit: 0x01 };

export interface ZeroLengthRead {
  /** errno of GET_DIRTY_BITMAP(iova 0, length 0, page_size 4 KiB); 6.12 says EINVAL. */
  errno: number;
  /** Every non-zero byte of the 8 KiB region after it, by offset (a bitmap of length 0 has no byte). */
  written: Record<number, number>;
  /** errno of the same read at IOVA 4 KiB (length - 1 overflows there). */
  errnoAtPage: number;
  /** The page before the hole, read again normally (length 16 MiB): still dirty? (the read of length 0 cleared it when false) */
  beforeHoleStillDirty: boolean;
  /** The page after the hole, read normally: still dirty? (the walk stopped at the hole when true) */
  afterHoleStillDirty: boolean;
}

function setupFailed(what: string, errno: number): never {
  throw new Error(`KF-0004 reproducer: ${what} failed with errno ${errno}`);
}

export function zeroLengthRead(fd: IommuFd, sys: Sys, idevId: number): ZeroLengthRead {
  const maps: Mapping[] = [];
  const mmap = (bytes: number): Mapping => {
    const m = sys.mmap(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (typeof m === 'number') setupFailed('mmap', -m);
    maps.push(m);
    return m;
  };
  const made: number[] = [];
  try {
    const buffer = mmap(Number(2n * MiB));
    // 4 KiB pages, not a transparent huge page: MOCK_IOMMUPT_HUGE maps a physically contiguous
    // 1 MiB as one leaf, and a dirty leaf is reported whole (256 bits of 4 KiB, not one).
    const e0 = sys.madvise(buffer, 0, buffer.length, MADV_NOHUGEPAGE);
    if (e0 < 0) setupFailed('madvise(MADV_NOHUGEPAGE)', -e0);
    new Uint8Array(buffer.buffer).fill(1);
    const ioas = fd.ioasAlloc();
    if (ioas.errno) setupFailed('IOMMU_IOAS_ALLOC', ioas.errno);
    made.push(ioas.ioasId);
    const data = new Uint8Array(8); // struct iommu_hwpt_selftest { iotlb; pagetable_type; }
    new DataView(data.buffer).setUint32(4, MOCK_IOMMUPT_HUGE, true);
    const hwpt = fd.hwptAlloc({ devId: idevId, ptId: ioas.ioasId, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data });
    if (hwpt.errno) setupFailed('IOMMU_HWPT_ALLOC(DIRTY_TRACKING, MOCK_IOMMUPT_HUGE)', hwpt.errno);
    made.push(hwpt.hwptId);
    const flags = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
    for (const iova of [0n, 2n, 4n, 6n, 8n, 10n, 12n, 14n, 32n].map((m) => m * MiB)) {
      const r = fd.ioasMap({ ioasId: ioas.ioasId, flags, userVa: buffer.address, length: 2n * MiB, iova });
      if (r.errno) setupFailed(`IOMMU_IOAS_MAP at IOVA ${iova}`, r.errno);
    }
    const hwptId = hwpt.hwptId;
    const e = fd.hwptSetDirtyTracking({ hwptId, enable: true }).errno;
    if (e) setupFailed('IOMMU_HWPT_SET_DIRTY_TRACKING', e);
    const marks = new Uint8Array([1]);
    for (const iova of [DIRTY_BEFORE_HOLE.iova, DIRTY_AFTER_HOLE.iova]) {
      const r = fd.testDirty({ hwptId, iova, length: PAGE, pageSize: PAGE, uptr: sys.addressOf(marks) });
      if (r.errno) setupFailed(`IOMMU_TEST_OP_DIRTY at IOVA ${iova}`, r.errno);
    }

    const region = mmap(REGION_BYTES);
    const bytes = new Uint8Array(region.buffer);
    const errno = fd.hwptGetDirtyBitmap({ hwptId, iova: 0n, length: 0n, pageSize: PAGE, bitmap: bytes }).errno;
    const written: Record<number, number> = {};
    bytes.forEach((b, i) => {
      if (b) written[i] = b;
    });
    const errnoAtPage = fd.hwptGetDirtyBitmap({ hwptId, iova: PAGE, length: 0n, pageSize: PAGE, bitmap: bytes }).errno;

    const stillDirty = (iova: bigint, length: bigint): boolean => {
      const bitmap = new Uint8Array(Number(length / PAGE / 8n));
      const r = fd.hwptGetDirtyBitmap({ hwptId, flags: U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, iova, length, pageSize: PAGE, bitmap });
      if (r.errno) setupFailed(`GET_DIRTY_BITMAP(${iova}, ${length})`, r.errno);
      return bitmap.some((b) => b !== 0);
    };
    return { errno, written, errnoAtPage, beforeHoleStillDirty: stillDirty(0n, 16n * MiB), afterHoleStillDirty: stillDirty(32n * MiB, 2n * MiB) };
  } finally {
    for (const id of made.reverse()) fd.destroy(id);
    for (const m of maps) sys.munmap(m);
  }
}

// Standalone: prints what the kernel did. (Bundled into the guest's main.mjs, import.meta.url is the
// bundle's, which is argv[1] there too: the file name says this module is the program.)
if (import.meta.url.endsWith('/zero-length-bitmap.ts') && process.argv[1] === fileURLToPath(import.meta.url)) {
  // No top-level await: the guest bundle is a CommonJS script (lib/vm/guest-bundle.ts).
  void (async () => {
    const { IommuFd } = await import('../../../../lib/kernel/index.ts');
    const { sys } = await import('../../../../lib/sys/index.ts');
    const { iommufd, errno } = IommuFd.open();
    if (!iommufd) throw new Error(`/dev/iommu: errno ${errno}`);
    const ioas = iommufd.ioasAlloc();
    const mock = iommufd.testMockDomain({ ptId: ioas.ioasId });
    if (mock.errno) throw new Error(`IOMMU_TEST_OP_MOCK_DOMAIN: errno ${mock.errno}`);
    console.log(JSON.stringify(zeroLengthRead(iommufd, sys(), mock.idevId)));
    iommufd.close();
  })();
}
