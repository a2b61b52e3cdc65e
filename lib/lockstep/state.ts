// Whole-state comparison of an iommufd with its model, for what a single
// call's result cannot show. After a failure by fault injection the model
// has not run the failed call (session.ts, withFaultInjection), so the
// claim "the kernel's error path left nothing behind" is a claim about the
// kernel's state, not about a result: it is checked here. Each probe only
// reads (or, for the ID probe, makes and removes an object) and is issued
// through the lockstep proxy, so the kernel answers it and the model's
// answer is compared like any other call. The model decides which probes to
// issue (its objects, areas and pages); the kernel's answers decide whether
// they agree.
import type { IommuFd } from '../kernel/index.ts';
import type { Area } from '../model/io-pagetable.ts';
import { DeviceObject, IoasObject, type IommufdModel } from '../model/iommufd.ts';
import { MockDomain } from '../model/mock.ts';
import { PAGE_SIZE } from '../model/process.ts';
import * as U from '../uapi/index.ts';
import type { LockstepProcess } from './session.ts';

/** User memory whose page pins are compared (page-aligned). */
export interface UserRange {
  address: bigint;
  length: number;
}

type LockstepIommufd = IommuFd & { readonly modelContext: unknown };

const ULONG_MAX = 0xffff_ffff_ffff_ffffn;
/** The objects of viommu.c and eventq.c, and the internal access of a HW queue. */
const VIOMMU_OBJECT_TYPES: ReadonlySet<string> = new Set(['viommu', 'vdevice', 'veventq', 'hw_queue']);
const MAP_RW = U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE;

/**
 * The IOAS's areas, without changing them when kernel and model agree:
 * - nothing mapped where the model has nothing: IOMMU_IOAS_UNMAP of each gap
 *   between the model's areas answers ENOENT (an area wholly inside the gap,
 *   say one an error path forgot, would be unmapped and its length reported;
 *   with no area at all, "unmap all" (iova 0, length U64_MAX) answers 0);
 * - something mapped over each of the model's areas: IOMMU_IOAS_MAP with
 *   FIXED_IOVA over it answers EEXIST.
 * Area boundaries inside a covered range (a split left by an error path)
 * are not seen: an unmap that straddles an area answers ENOENT too.
 */
function compareAreas(fd: LockstepIommufd, ioasId: number, areas: readonly Area[]): void {
  if (areas.length === 0) {
    fd.ioasUnmap({ ioasId, iova: 0n, length: ULONG_MAX });
    return;
  }
  // IOMMU_IOAS_UNMAP refuses iova or length >= ULONG_MAX outside "unmap all": the last byte stays unprobed.
  let gapStart = 0n;
  for (const area of [...areas, null]) {
    const gapLast = area ? area.start - 1n : ULONG_MAX - 1n;
    if (gapStart <= gapLast) fd.ioasUnmap({ ioasId, iova: gapStart, length: gapLast - gapStart + 1n });
    if (area) gapStart = area.last + 1n;
  }
  for (const area of areas) fd.ioasMap({ ioasId, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | MAP_RW, userVa: area.pages.uptr + area.startByte, length: area.length, iova: area.start });
}

/**
 * Where the area's pages are seen in user memory, for MD_CHECK_MAP: the user
 * VA it maps, or (IOMMU_IOAS_MAP_FILE of a memfd) where the process maps that
 * part of the file; null where no user address shows them (a dma-buf, a file
 * not mapped there).
 */
function userAddressOf(area: Area): bigint | null {
  const pages = area.pages;
  if (pages.type === 'user') return pages.uptr + area.startByte;
  if (pages.type === 'file' && pages.file) return pages.process.memory.addressOfFile(pages.file, pages.start + area.startByte, area.length);
  return null;
}

/**
 * Compares the kernel's state behind `fd` with its model:
 * - every object the model holds is there, of its type: each IOAS answers
 *   IOMMU_IOAS_IOVA_RANGES with the same ranges and alignment, has areas
 *   where the model has (compareAreas), and puts a new one-page mapping at
 *   the same automatic IOVA (given `userMemory`); each mock device answers
 *   IOMMU_GET_HW_INFO; and each mock domain of an IOAS maps each area of the
 *   IOAS to the same user pages (IOMMU_TEST_OP_MD_CHECK_MAP);
 * - the object table has no extra or missing ID where the next object goes:
 *   a new IOAS gets the same ID (xa_alloc takes the lowest free one: an ID
 *   leaked by an error path, or freed by one, shows here), then is destroyed;
 * - each page of `userMemory` has the model's pin count
 *   (IOMMU_TEST_OP_MD_CHECK_REFS over runs of pages with equal counts);
 * - VmPin and VmLck equal the model's counters.
 * Does nothing unless the session compares with a model (lockstep mode).
 */
export function compareIommufdState(session: LockstepProcess, fd: LockstepIommufd, userMemory: readonly UserRange[] = []): void {
  const model = fd.modelContext as IommufdModel | null;
  if (!session.checking || !model || fd.closed || model.closed) return;

  for (const obj of [...model.objects.objects()]) {
    if (obj instanceof IoasObject) {
      fd.ioasIovaRanges({ ioasId: obj.id, capacity: 16 });
      const areas = [...obj.iopt.areas];
      compareAreas(fd, obj.id, areas);
      // Where the next automatic IOVA goes (the allowed ranges, which
      // IOVA_RANGES does not report, and the areas and reserved ranges at the
      // first fit): one page mapped there and unmapped again.
      if (userMemory.length > 0) {
        const next = fd.ioasMap({ ioasId: obj.id, flags: MAP_RW, userVa: userMemory[0]!.address, length: PAGE_SIZE });
        if (next.errno === 0) fd.ioasUnmap({ ioasId: obj.id, iova: next.iova, length: PAGE_SIZE });
      }
      for (const hwpt of obj.hwpts) {
        if (!(hwpt.domain instanceof MockDomain)) continue;
        for (const area of areas) {
          const uptr = userAddressOf(area);
          if (uptr !== null) fd.testCheckMap({ hwptId: hwpt.id, iova: area.start, length: area.length, uptr });
        }
      }
    } else if (obj instanceof DeviceObject && obj.mock) {
      // A mock device's: a real device's (a VFIO device in the compat IOAS) is its IOMMU's registers,
      // which the model does not hold (IommufdModel.getHwInfo).
      fd.getHwInfo({ devId: obj.id });
    } else if (VIOMMU_OBJECT_TYPES.has(obj.type)) {
      // vIOMMU (7.x): IOMMU_HWPT_INVALIDATE looks any object up (IOMMUFD_OBJ_ANY): an empty array on a
      // vIOMMU is 0 (its data type checked), any other live object EINVAL, a missing or tombstoned ID ENOENT.
      fd.hwptInvalidate({ hwptId: obj.id, dataType: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entryLen: 0, entryNum: 0, entries: null });
    }
  }

  const next = fd.ioasAlloc();
  if (next.errno === 0) fd.destroy(next.ioasId);

  const memory = model.process.memory;
  for (const range of userMemory) {
    const pinsAt = (address: bigint) => {
      const page = memory.pageAt(address);
      return page ? model.process.pinsOf(page.id) : -1;
    };
    const end = range.address + BigInt(range.length);
    let runStart = range.address;
    let runPins = pinsAt(runStart);
    for (let address = range.address + PAGE_SIZE; address <= end; address += PAGE_SIZE) {
      const pins = address < end ? pinsAt(address) : Number.NaN;
      if (pins === runPins) continue;
      if (runPins >= 0) fd.testCheckRefs({ uptr: runStart, length: address - runStart, refs: runPins });
      runStart = address;
      runPins = pins;
    }
  }

  session.checkAccounting('iommufd state (VmPin, VmLck)');
}
