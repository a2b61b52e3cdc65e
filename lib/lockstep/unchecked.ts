// The one list of calls lockstep runs on the kernel alone, each with why.
// Anything the model cannot answer that is not here fails the test
// (ModelCannotAnswer from lib/model, or a context desynced for a reason not
// listed): nothing goes unchecked by accident. Every run prints how many
// calls each reason left unchecked (stats.ts).
import { PAGE_FAULT_UNDER_FAULT_INJECTION } from '../model/iommufd/fault.ts';
import { DIRTY_BITMAP_ZERO_LENGTH_PAST_BUFFER } from '../model/uaccess.ts';
import { PGSIZE_BITS_UNKNOWN } from '../model/type1-platform.ts';

export const UNCHECKED_REASONS: ReadonlyMap<string, string> = new Map([
  [
    'failed by fault injection',
    'the model cannot know which allocation failed; the kernel must be as if the call was not made, which the ' +
      'accounting check right after it and the whole-state comparison after the run (state.ts) check',
  ],
  // Fault queues: what the model does not follow under fault injection (never run so by the fuzzer)
  [
    PAGE_FAULT_UNDER_FAULT_INJECTION,
    'io-pgfault.c:iommu_report_device_fault answers a page request itself when its iopf group\'s allocation fails ' +
      '(abort_group), and IOMMU_TEST_OP_TRIGGER_IOPF returns 0 either way: whether the fault reached the queue ' +
      'is not in the result; the fault queues of that context are unknown to the model from there',
  ],
  ['VFIO device ioctls (vfio-pci is not modelled)', 'a real PCI device\'s regions, IRQs and resets are the hardware\'s, not the uAPI\'s'],
  [
    'hugetlb buffer under the generic page table mock (1 MiB leaves)',
    'on a kernel whose mock domain is the generic page table (KernelBehaviour.mockGenericPt), physical ' +
      'contiguity decides its leaf sizes and so how dirty bits spread; that model takes a leaf to be one page',
  ],
  [
    'hugetlb buffer under 1 MiB mock IOPTEs',
    'which pages are physically contiguous decides where a HUGE_IOVA mock domain uses 1 MiB IOPTEs, and ' +
      'so how dirty bits spread; the model reads it from /proc/self/pagemap, which shows PFNs to root only',
  ],
  [
    DIRTY_BITMAP_ZERO_LENGTH_PAST_BUFFER,
    'a kernel that takes a length of 0 (KernelBehaviour.dirtyBitmapZeroLength, KF-0004) reads the areas contiguous ' +
      'from IOVA 0 into a bitmap with no end, writing into the user memory after the buffer, which the model was not ' +
      'given; the iommufd context runs on the kernel alone from there until it is closed',
  ],
  [
    PGSIZE_BITS_UNKNOWN,
    'bits 2^52..2^63 of GET_INFO\'s iova_pgsizes on AMD-Vi\'s io-pgtable (not generic_pt) kernels: a constant of the ' +
      'kernel\'s tree (6.1: AMD_IOMMU_PGSIZES = ~0xFFF & ~SZ_512G sets them, 6.12: GENMASK_ULL(51, 12) ^ SZ_512G does not) ' +
      'that neither sysfs nor the kernel log shows and no mapping can use; the call is checked without those bits ' +
      '(type1-platform.ts AMD_IO_PGTABLE_PGSIZES_UNKNOWN)',
  ],
]);

/** Reasons after which the model's state of that iommufd context is unknown: its later calls are unchecked too. */
export const DESYNCING_REASONS: ReadonlySet<string> = new Set([DIRTY_BITMAP_ZERO_LENGTH_PAST_BUFFER, PAGE_FAULT_UNDER_FAULT_INJECTION]);

export function isListedReason(reason: string): boolean {
  return UNCHECKED_REASONS.has(reason);
}
