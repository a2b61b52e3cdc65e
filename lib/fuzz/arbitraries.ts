// The values the fuzzer's commands draw their arguments from: mostly the
// edges (zero, one byte off a page, the mock aperture's ends and one past
// them, sizes that overflow a u64 when added, the end of the user buffer) and a few ordinary values, so that a short run
// reaches error paths and not only the happy path.
import fc from 'fast-check';
import * as U from '../uapi/index.ts';

export const PAGE = 4096n;
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
const A_PAGE = (n: number) => BigInt(n) * 4096n;
/** Pages of user memory the commands map from (as many more follow it: see FuzzSession). */
export const BUFFER_PAGES = 32;
export const BUFFER_BYTES = BigInt(BUFFER_PAGES) * PAGE;

const APERTURE_START = BigInt(U.MOCK_APERTURE_START);
const APERTURE_LAST = BigInt(U.MOCK_APERTURE_LAST);

/** An index into a list known only at run time (taken modulo its length). */
export const pick = fc.nat({ max: 1 << 16 });

/** An iommufd context of the run (several are open at once). */
export const contextIndex = fc.nat({ max: 2 });

/** IOVAs: page multiples, unaligned, around the mock aperture and the top of the space. */
export const iova: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 64n }).map((n) => n * PAGE) },
  { weight: 2, arbitrary: fc.constantFrom(0n, 1n, PAGE - 1n, PAGE + 1n, PAGE / 2n, 3n * PAGE / 2n) },
  { weight: 2, arbitrary: fc.constantFrom(APERTURE_START - PAGE, APERTURE_START, APERTURE_START + PAGE, APERTURE_LAST - PAGE + 1n, APERTURE_LAST + 1n) },
  { weight: 1, arbitrary: fc.constantFrom(U64_MAX - PAGE + 1n, U64_MAX, 1n << 63n, (1n << 48n) - PAGE) },
);

/** From a mapped IOVA to one on it, just before or past it, or a few pages on (overlapping, adjacent). */
export const nearDelta = fc.constantFrom(0n, A_PAGE(1), A_PAGE(-1), A_PAGE(2), A_PAGE(4), A_PAGE(8), 1n);

/** Lengths: zero, a page or a few, unaligned, the buffer and past it, overflowing. */
export const length: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 8 }).map((n) => BigInt(n) * PAGE) },
  { weight: 2, arbitrary: fc.constantFrom(0n, 1n, PAGE - 1n, PAGE + 1n, PAGE / 2n) },
  { weight: 1, arbitrary: fc.constantFrom(BUFFER_BYTES, BUFFER_BYTES + PAGE, U64_MAX, U64_MAX - PAGE + 1n, 1n << 63n) },
);

/** Offsets into the user buffer: page-aligned, unaligned, at its end; or a NULL user pointer. */
export const userOffset: fc.Arbitrary<bigint | null> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: BUFFER_PAGES - 1 }).map((n) => BigInt(n) * PAGE) },
  { weight: 1, arbitrary: fc.constantFrom<bigint | null>(1n, PAGE / 2n, BUFFER_BYTES - PAGE) },
  { weight: 1, arbitrary: fc.constant(null) },
);

export const mapProt = fc.constantFrom(
  U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
  U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
  U.IOMMU_IOAS_MAP_READABLE,
  U.IOMMU_IOAS_MAP_WRITEABLE,
  0,
  1 << 7, // an undefined flag
);

/** Allowed IOVA ranges: none (everything allowed), one or two, overlapping, inverted, unaligned. */
export const allowRanges = fc.array(
  fc.tuple(iova, length).map(([start, len]) => ({ start, last: len === 0n ? start : (start + len - 1n) & U64_MAX })),
  { maxLength: 3 },
);

/** Mock device flags: a plain device, one without dirty tracking, one with 1 MiB IOPTEs, an unknown flag. */
export const mockFlags = fc.constantFrom(0, 0, 0, U.MOCK_FLAGS_DEVICE_NO_DIRTY, U.MOCK_FLAGS_DEVICE_HUGE_IOVA, 1 << 5);

export const accessFlags = fc.constantFrom(U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, 0, 0, 1 << 6);
export const accessPagesFlags = fc.constantFrom(0, 0, U.MOCK_FLAGS_ACCESS_WRITE, U.MOCK_FLAGS_ACCESS_WRITE, U.MOCK_FLAGS_ACCESS_SYZ, 1 << 5);
export const accessRwFlags = fc.constantFrom(0, U.MOCK_ACCESS_RW_WRITE, U.MOCK_ACCESS_RW_SLOW_PATH, U.MOCK_ACCESS_RW_WRITE | U.MOCK_ACCESS_RW_SLOW_PATH, 1 << 4);
export const rwLength = fc.constantFrom(0n, 1n, 7n, 64n, PAGE - 1n, PAGE, PAGE + 3n, 3n * PAGE);

export const hwptFlags = fc.constantFrom(0, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, U.IOMMU_HWPT_ALLOC_NEST_PARENT, 1 << 9);

export const option = fc.record({
  optionId: fc.constantFrom(U.IOMMU_OPTION_RLIMIT_MODE, U.IOMMU_OPTION_HUGE_PAGES, 7),
  op: fc.constantFrom(U.IOMMU_OPTION_OP_SET, U.IOMMU_OPTION_OP_GET, U.IOMMU_OPTION_OP_GET, 3),
  val64: fc.constantFrom(0n, 1n, 1n, 2n),
  onIoas: fc.boolean(),
});

export const dirtyPageSize = fc.constantFrom(BigInt(U.MOCK_PAGE_SIZE), PAGE, 0n, 3n, BigInt(U.MOCK_PAGE_SIZE) * 3n);

/** fail-nth's n: mostly small (the first allocations of a call), sometimes deep in it. */
export const failNth = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: fc.integer({ min: 9, max: 200 }) });

// ---- VFIO containers (the viommu profile)

/** Which container: 0 the real type1 one, 1 iommufd's compat. */
export const containerIndex = fc.constantFrom(0, 1);

/** VFIO_SET_IOMMU types: TYPE1, TYPE1v2 (mostly), SPAPR, NOIOMMU, 0 and unknown. */
export const vfioIommuType = fc.constantFrom(U.VFIO_TYPE1v2_IOMMU, U.VFIO_TYPE1v2_IOMMU, U.VFIO_TYPE1v2_IOMMU, U.VFIO_TYPE1_IOMMU, 2, U.VFIO_NOIOMMU_IOMMU, 0, 99);

/** IOVAs for a VT-d domain: low pages, unaligned, around the x86 MSI window, the top of 39 and 48 bits, the top of the space. */
export const vfioIova: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 64n }).map((n) => n * PAGE) },
  { weight: 2, arbitrary: fc.constantFrom(1n, PAGE - 1n, PAGE / 2n, PAGE + 1n) },
  { weight: 2, arbitrary: fc.constantFrom(0xfee0_0000n - PAGE, 0xfee0_0000n, 0xfef0_0000n - PAGE, 0xfef0_0000n) },
  { weight: 1, arbitrary: fc.constantFrom((1n << 39n) - PAGE, 1n << 39n, (1n << 48n) - PAGE, 1n << 48n, U64_MAX - PAGE + 1n, U64_MAX, 1n << 63n) },
);

export const vfioMapFlags = fc.constantFrom(
  U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE, U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE, U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE,
  U.VFIO_DMA_MAP_FLAG_READ, U.VFIO_DMA_MAP_FLAG_WRITE, U.VFIO_DMA_MAP_FLAG_VADDR, 1 << 5,
);

export const vfioUnmapFlags = fc.constantFrom(0, 0, 0, U.VFIO_DMA_UNMAP_FLAG_ALL, U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, U.VFIO_DMA_UNMAP_FLAG_VADDR, U.VFIO_DMA_UNMAP_FLAG_ALL | U.VFIO_DMA_UNMAP_FLAG_VADDR, 1 << 5);

export const vfioDirtyFlags = fc.constantFrom(
  U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START, U.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP, U.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, U.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  0, U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START | U.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP, 1 << 3,
);

/** argsz: the struct's own (null), or short, or long. */
export const vfioArgsz = fc.constantFrom<number | null>(null, null, null, null, 0, 8, 23, 24, 33, 4096);

/**
 * A struct vfio_bitmap: page size (the smallest is the only one type1 takes), bytes (the one-page buffer or
 * past it), a NULL data pointer. No page size 0: type1 takes __ffs(0) of it, undefined, which the model
 * does not predict (found by the 10-minute viommu run on 6.12, seed 103).
 */
export const vfioBitmap = fc.record({ pgsize: fc.constantFrom(PAGE, PAGE, 2n * PAGE, 1n), bytes: fc.constantFrom(8, 64, 4096, 0), nullData: fc.constantFrom(false, false, false, true) });
