// Physical addresses of this process's pages, from /proc/self/pagemap (one
// u64 per virtual page: bit 63 present, bits 0-54 the PFN, which the kernel
// shows only to CAP_SYS_ADMIN and reports as 0 to anyone else). The model
// needs them where physical contiguity decides IOPTE sizes (a mock domain
// with 1 MiB pages over hugetlb memory).
import { openSync, readSync } from 'node:fs';

const PAGE_SIZE = 4096n;
const PFN_MASK = (1n << 55n) - 1n;
const PRESENT = 1n << 63n;

/** A reader of physical addresses, or null where this process cannot see PFNs. */
export function pagemapReader(): ((address: bigint) => bigint | null) | null {
  let fd: number;
  try {
    fd = openSync('/proc/self/pagemap', 'r');
  } catch {
    return null;
  }
  const entry = Buffer.alloc(8);
  return (address: bigint) => {
    const n = readSync(fd, entry, 0, 8, Number((address / PAGE_SIZE) * 8n));
    if (n !== 8) return null;
    const v = entry.readBigUInt64LE(0);
    const pfn = v & PFN_MASK;
    if (!(v & PRESENT) || pfn === 0n) return null;
    return pfn * PAGE_SIZE + (address % PAGE_SIZE);
  };
}
