// Decoder for the capability chain of VFIO_IOMMU_GET_INFO. The buffer is the
// whole info buffer (argsz bytes): the fixed struct vfio_iommu_type1_info,
// then capabilities, each starting with a struct vfio_info_cap_header whose
// `next` (like the info's `cap_offset`) is an offset from the start of the
// buffer, 0 ending the chain. The buffer comes from the kernel under test, so
// nothing in it is trusted: a loop or an offset outside the buffer is
// reported as an error value, and decoding always terminates.
import type { AnyStructLayout, StructOutput, Spec } from './layout.ts';
import {
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  vfio_info_cap_header,
  vfio_iommu_type1_info,
  vfio_iommu_type1_info_cap_iova_range,
  vfio_iommu_type1_info_cap_migration,
  vfio_iommu_type1_info_dma_avail,
} from './vfio.ts';

type CapOf<K extends string, S extends Spec> = { kind: K; offset: number } & StructOutput<S>;

export type Type1InfoCap =
  | CapOf<'iova_range', (typeof vfio_iommu_type1_info_cap_iova_range)['spec']>
  | CapOf<'migration', (typeof vfio_iommu_type1_info_cap_migration)['spec']>
  | CapOf<'dma_avail', (typeof vfio_iommu_type1_info_dma_avail)['spec']>
  | {
      kind: 'unknown';
      offset: number;
      header: StructOutput<(typeof vfio_info_cap_header)['spec']>;
      /** From the header to the next capability (if it follows) or to the end of the buffer. */
      bytes: Uint8Array;
    };

export type CapChainError = 'loop' | 'out_of_bounds' | 'overlaps_info' | 'truncated';

export type CapChain<C> =
  | { ok: true; caps: C[] }
  /** `caps` holds what was decoded before the fault at `offset`. */
  | { ok: false; error: CapChainError; offset: number; message: string; caps: C[] };

const KNOWN: Record<number, { kind: 'iova_range' | 'migration' | 'dma_avail'; layout: AnyStructLayout }> = {
  [VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE]: { kind: 'iova_range', layout: vfio_iommu_type1_info_cap_iova_range },
  [VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION]: { kind: 'migration', layout: vfio_iommu_type1_info_cap_migration },
  [VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL]: { kind: 'dma_avail', layout: vfio_iommu_type1_info_dma_avail },
};

/**
 * Follows the chain from the info's cap_offset. Capabilities live after the
 * fixed info struct (the kernel places them there), so an offset inside it
 * is an error, as is one whose capability does not fit in the buffer.
 * A cap_offset of 0 (no chain, or argsz too small for it) gives no caps.
 */
export function decodeType1InfoCaps(info: Uint8Array): CapChain<Type1InfoCap> {
  const caps: Type1InfoCap[] = [];
  const fail = (error: CapChainError, offset: number, message: string): CapChain<Type1InfoCap> => ({ ok: false, error, offset, message, caps });
  if (info.length < vfio_iommu_type1_info.offsetEnd('cap_offset')) {
    return fail('truncated', 0, `a ${info.length}-byte buffer does not hold vfio_iommu_type1_info up to cap_offset`);
  }
  const seen = new Set<number>();
  let offset = vfio_iommu_type1_info.read(info, 'cap_offset');
  while (offset !== 0) {
    if (seen.has(offset)) return fail('loop', offset, `capability at ${offset} is reached twice`);
    seen.add(offset);
    if (offset < vfio_iommu_type1_info.sizeof) {
      return fail('overlaps_info', offset, `capability offset ${offset} lies inside the ${vfio_iommu_type1_info.sizeof}-byte info struct`);
    }
    if (offset + vfio_info_cap_header.sizeof > info.length) {
      return fail('out_of_bounds', offset, `capability header at ${offset} does not fit in ${info.length} bytes`);
    }
    const header = vfio_info_cap_header.decode(info, offset);
    const known = KNOWN[header.id];
    if (known) {
      const need = known.layout.sizeof;
      if (offset + need > info.length) {
        return fail('out_of_bounds', offset, `${known.layout.name} at ${offset} needs ${need} bytes, the buffer has ${info.length - offset}`);
      }
      const cap = known.layout.decode(info, offset);
      if (known.kind === 'iova_range') {
        const { iova_ranges: ranges, nr_iovas: nr } = cap as StructOutput<(typeof vfio_iommu_type1_info_cap_iova_range)['spec']>;
        if (ranges.length < nr) {
          return fail('out_of_bounds', offset, `iova_range capability at ${offset} claims ${nr} ranges, ${ranges.length} fit in the buffer`);
        }
      }
      caps.push({ kind: known.kind, offset, ...cap } as Type1InfoCap);
    } else {
      const end = header.next > offset && header.next <= info.length ? header.next : info.length;
      caps.push({ kind: 'unknown', offset, header, bytes: info.slice(offset, end) });
    }
    offset = header.next;
  }
  return { ok: true, caps };
}

/** What a VFIO_IOMMU_GET_INFO buffer says, read back after the call (by the client and by the models alike). */
export interface Type1InfoFields {
  argsz: number;
  flags: number;
  iovaPgsizes: bigint;
  capOffset: number;
  /** The decoded capability chain, within the argsz the caller passed. */
  caps: ReturnType<typeof decodeType1InfoCaps>;
  /** The whole info buffer as the call left it. */
  bytes: Uint8Array;
}

/** Reads the fixed fields and the capability chain of an info buffer the caller passed with `argsz`. */
export function readType1Info(bytes: Uint8Array, argsz: number): Type1InfoFields {
  const info = vfio_iommu_type1_info.decode(bytes);
  return {
    argsz: info.argsz,
    flags: info.flags,
    iovaPgsizes: info.iova_pgsizes,
    capOffset: info.cap_offset,
    caps: decodeType1InfoCaps(bytes.subarray(0, Math.min(bytes.byteLength, Math.max(argsz, 0)))),
    bytes,
  };
}
