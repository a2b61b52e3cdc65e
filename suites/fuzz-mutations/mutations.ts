// Deliberate model mutations: the fuzzer's power is how many of these it
// finds, and how fast (`iommufd-conformance fuzz --mutation all`, `npm run
// bench`). Each one breaks the model the way a model bug would (an errno
// flipped, an off-by-one in the IOVA allocator, an unpin forgotten, two
// checks in the wrong order, a missing reserved-range check, ...) by patching
// a method of the model's classes for the time of one fuzz run; apply()
// returns the function that puts the method back. Nothing here is ever
// committed into lib/model.
import { EADDRINUSE, EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, EOPNOTSUPP, EOVERFLOW, ENOMEM, ENOSPC, ESPIPE } from '../../lib/model/errno.ts';
import { IoPageTable } from '../../lib/model/io-pagetable.ts';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { PAGE_SIZE, ModelProcess } from '../../lib/model/process.ts';
import * as U from '../../lib/uapi/index.ts';

export interface Mutation {
  name: string;
  description: string;
  apply(): () => void;
}

type AnyFn = (this: unknown, ...args: never[]) => unknown;

/** Replaces proto[method] by make(original) until the returned function is called. */
function patch<P extends object>(proto: P, method: keyof P & string, make: (original: AnyFn) => AnyFn): () => void {
  const original = (proto as Record<string, AnyFn>)[method]!;
  (proto as Record<string, AnyFn>)[method] = make(original);
  return () => {
    (proto as Record<string, AnyFn>)[method] = original;
  };
}

type Result = { errno: number } & Record<string, unknown>;
type Args = Record<string, unknown>;

/** A model method whose result is changed afterwards (the model's state is left as the right answer made it). */
function after(proto: object, method: string, change: (r: Result, args: Args) => Result): () => void {
  return patch(proto as Record<string, AnyFn>, method, (original) =>
    function (this: unknown, ...args: never[]) {
      return change(original.apply(this, args) as Result, (args[0] ?? {}) as Args);
    },
  );
}

/** An errno of a model method (a result's errno, or the errno it returns as a number) turned into another one. */
function flip(proto: object, method: string, from: number, to: number): () => void {
  return patch(proto as Record<string, AnyFn>, method, (original) =>
    function (this: unknown, ...args: never[]) {
      const r = original.apply(this, args) as Result | number;
      if (typeof r === 'number') return r === from ? to : r;
      return r.errno === from ? { ...r, errno: to } : r;
    },
  );
}

const M = IommufdModel.prototype;
const IOPT = IoPageTable.prototype;
const ULONG_MAX = 0xffff_ffff_ffff_ffffn;

export const MUTATIONS: readonly Mutation[] = [
  {
    name: 'alloc-iova-one-page-up',
    description: 'the IOVA allocator answers one page above the first fit (off by one page)',
    apply: () => after(IOPT, 'allocIova', (r) => (r.errno === 0 ? { ...r, iova: (r.iova as bigint) + PAGE_SIZE } : r)),
  },
  {
    name: 'alloc-iova-enospc-as-enomem',
    description: 'an automatic IOVA that does not fit says ENOMEM instead of ENOSPC',
    apply: () => flip(IOPT, 'allocIova', ENOSPC, ENOMEM),
  },
  {
    name: 'check-iova-no-reserved',
    description: 'a fixed IOVA map does not check the reserved ranges (missing reserved-range check)',
    apply: () =>
      patch(IOPT, 'checkIova', () =>
        function (this: IoPageTable, iova: bigint, length: bigint) {
          if (iova & (this.iovaAlignment - 1n)) return EINVAL;
          const last = iova + length - 1n;
          if (last > ULONG_MAX) return EOVERFLOW;
          if (this.areas.iterFirst(iova, last)) return EEXIST;
          return 0;
        } as AnyFn,
      ),
  },
  {
    name: 'check-iova-order-swapped',
    description: 'a fixed IOVA map checks the areas before the reserved ranges (two checks in the wrong order)',
    apply: () =>
      patch(IOPT, 'checkIova', () =>
        function (this: IoPageTable, iova: bigint, length: bigint) {
          if (iova & (this.iovaAlignment - 1n)) return EINVAL;
          const last = iova + length - 1n;
          if (last > ULONG_MAX) return EOVERFLOW;
          if (this.areas.iterFirst(iova, last)) return EEXIST;
          if (this.reserved.iterFirst(iova, last)) return EINVAL;
          return 0;
        } as AnyFn,
      ),
  },
  {
    name: 'check-iova-overflow-einval',
    description: 'a fixed IOVA range past ULONG_MAX says EINVAL instead of EOVERFLOW',
    apply: () =>
      patch(IOPT, 'checkIova', (original) =>
        function (this: IoPageTable, ...args: never[]) {
          const rc = original.apply(this, args);
          return rc === EOVERFLOW ? EINVAL : rc;
        } as AnyFn,
      ),
  },
  {
    name: 'map-eexist-as-ebusy',
    description: 'a map over an existing area says EBUSY instead of EEXIST',
    apply: () => flip(M, 'ioasMap', EEXIST, EBUSY),
  },
  {
    name: 'map-efault-as-enomem',
    description: 'a map of user memory that cannot be pinned says ENOMEM instead of EFAULT',
    apply: () => flip(M, 'ioasMap', EFAULT, ENOMEM),
  },
  {
    name: 'unmap-length-short',
    description: 'an unmap reports one page less than it unmapped',
    apply: () => after(M, 'ioasUnmap', (r) => (r.errno === 0 && (r.length as bigint) > 0n ? { ...r, length: (r.length as bigint) - PAGE_SIZE } : r)),
  },
  {
    name: 'unmap-enoent-as-einval',
    description: 'an unmap of nothing mapped says EINVAL instead of ENOENT',
    apply: () => flip(M, 'ioasUnmap', ENOENT, EINVAL),
  },
  {
    name: 'destroy-busy-succeeds',
    description: 'destroying an object still in use says 0 instead of EBUSY',
    apply: () => flip(M, 'destroy', EBUSY, 0),
  },
  {
    name: 'ioas-alloc-flags-ignored',
    description: 'IOMMU_IOAS_ALLOC ignores undefined flags instead of refusing them',
    apply: () =>
      patch(M, 'ioasAlloc', (original) =>
        function (this: unknown, args: { flags?: number } = {}) {
          return original.call(this, { ...args, flags: 0 } as never);
        } as AnyFn,
      ),
  },
  {
    name: 'iova-ranges-last-off-by-one',
    description: 'IOMMU_IOAS_IOVA_RANGES reports each range one byte short',
    apply: () =>
      after(M, 'ioasIovaRanges', (r) => ({ ...r, ranges: (r.ranges as { start: bigint; last: bigint }[]).map((x) => ({ start: x.start, last: x.last - 1n })) })),
  },
  {
    name: 'allow-iovas-reserved-not-checked',
    description: 'allow_iovas accepts ranges that intersect a reserved range (EADDRINUSE lost)',
    apply: () => flip(IOPT, 'setAllowed', EADDRINUSE, 0),
  },
  {
    name: 'unpin-forgotten',
    description: 'releasing a pinned page does not drop its pin count (an unpin forgotten)',
    apply: () => patch(ModelProcess.prototype, 'unpinPage', () => function () {} as AnyFn),
  },
  {
    name: 'copy-dst-iova-off-by-page',
    description: 'IOMMU_IOAS_COPY reports an automatic destination IOVA one page off',
    apply: () => after(M, 'ioasCopy', (r, a) => (r.errno === 0 && !((a.flags as number) & U.IOMMU_IOAS_MAP_FIXED_IOVA) ? { ...r, dstIova: (r.dstIova as bigint) + PAGE_SIZE } : r)),
  },
  {
    name: 'copy-enoent-as-einval',
    description: 'IOMMU_IOAS_COPY from a range not mapped says EINVAL instead of ENOENT',
    apply: () => flip(M, 'ioasCopy', ENOENT, EINVAL),
  },
  {
    name: 'option-huge-pages-inverted',
    description: 'IOMMU_OPTION_HUGE_PAGES get answers the opposite value',
    apply: () =>
      after(M, 'option', (r, a) => (r.errno === 0 && a.op === U.IOMMU_OPTION_OP_GET && a.optionId === U.IOMMU_OPTION_HUGE_PAGES ? { ...r, val64: (r.val64 as bigint) ^ 1n } : r)),
  },
  {
    name: 'option-eopnotsupp-as-einval',
    description: 'an option on the wrong object or an unknown option says EINVAL instead of EOPNOTSUPP',
    apply: () => flip(M, 'option', EOPNOTSUPP, EINVAL),
  },
  {
    name: 'add-reserved-over-area-ok',
    description: 'reserving a range over a mapped area or an allowed range succeeds (EADDRINUSE lost)',
    apply: () => flip(IOPT, 'reserve', EADDRINUSE, 0),
  },
  {
    name: 'mock-domain-enoent-as-einval',
    description: 'a mock domain on an ID that is not there says EINVAL instead of ENOENT',
    apply: () => flip(M, 'testMockDomainFlags', ENOENT, EINVAL),
  },
  {
    name: 'mock-replace-ok-as-ebusy',
    description: 'a mock domain replace that works says EBUSY',
    apply: () => after(M, 'testMockDomainReplace', (r) => (r.errno === 0 ? { ...r, errno: EBUSY } : r)),
  },
  {
    name: 'hwpt-alloc-flags-unchecked',
    description: 'IOMMU_HWPT_ALLOC refuses nothing with EOPNOTSUPP (undefined flags, dirty tracking on a device without it): EINVAL instead',
    apply: () => flip(M, 'hwptAlloc', EOPNOTSUPP, EINVAL),
  },
  {
    name: 'access-pages-einval-as-eoverflow',
    description: 'an access pin of a bad range says EOVERFLOW instead of EINVAL',
    apply: () => flip(M, 'testAccessPages', EINVAL, EOVERFLOW),
  },
  {
    name: 'access-rw-enoent-as-einval',
    description: 'an access read/write where nothing is mapped says EINVAL instead of ENOENT',
    apply: () => flip(M, 'testAccessRw', ENOENT, EINVAL),
  },
  {
    name: 'dirty-tracking-flags-unchecked',
    description: 'IOMMU_HWPT_SET_DIRTY_TRACKING with undefined flags says 0 instead of EOPNOTSUPP',
    apply: () => flip(M, 'hwptSetDirtyTracking', EOPNOTSUPP, 0),
  },
  {
    name: 'dirty-bitmap-einval-as-eoverflow',
    description: 'IOMMU_HWPT_GET_DIRTY_BITMAP of a bad range or page size says EOVERFLOW instead of EINVAL',
    apply: () => flip(M, 'hwptGetDirtyBitmap', EINVAL, EOVERFLOW),
  },
  // Fault queues: the fault fd's read, write and poll (lib/model/iommufd/fault.ts)
  {
    name: 'fault-unknown-cookie-accepted',
    description: 'a page response whose cookie names no group read (never handed out, or already answered) is taken instead of EINVAL',
    apply: () =>
      patch(M, 'writeFile', (original) =>
        function (this: unknown, ...args: never[]) {
          const r = original.apply(this, args) as number;
          const bytes = args[1] as unknown as Uint8Array;
          if (r !== -EINVAL || bytes.length < U.iommu_hwpt_page_response.sizeof) return r;
          const code = U.iommu_hwpt_page_response.decode(bytes).code;
          return code === U.IOMMUFD_PAGE_RESP_SUCCESS || code === U.IOMMUFD_PAGE_RESP_INVALID ? U.iommu_hwpt_page_response.sizeof : r;
        },
      ),
  },
  {
    name: 'fault-short-read-rounds-down',
    description: 'a fault fd read whose count is no multiple of struct iommu_hwpt_pgfault reads the whole records that fit instead of ESPIPE',
    apply: () =>
      patch(M, 'readFile', (original) =>
        function (this: unknown, ...args: never[]) {
          const r = original.apply(this, args) as { ret: number };
          const [fd, count] = args as unknown as [number, number];
          if (r.ret !== -ESPIPE) return r;
          return original.apply(this, [fd, count - (count % U.iommu_hwpt_pgfault.sizeof)] as never[]);
        },
      ),
  },
  {
    name: 'fault-poll-not-writable',
    description: 'a fault fd polls without EPOLLOUT (it always takes page responses)',
    apply: () =>
      patch(M, 'pollFile', (original) =>
        function (this: unknown, ...args: never[]) {
          return (original.apply(this, args) as number) & ~0x4;
        },
      ),
  },
];
