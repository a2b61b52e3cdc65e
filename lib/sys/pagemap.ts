// Physical addresses of this process's pages, from /proc/self/pagemap (one
// u64 per virtual page: bit 63 present, bits 0-54 the PFN, which the kernel
// shows only to CAP_SYS_ADMIN and reports as 0 to anyone else). The model
// needs them where physical contiguity decides IOPTE sizes (a mock domain
// with 1 MiB pages over hugetlb memory).
import { openSync, readSync } from 'node:fs';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './constants.ts';
import type { SysCore } from './types.ts';

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

/**
 * The physical address of the shared zero page (mm's empty_zero_page): what a read fault maps into a
 * never-written private anonymous page. Read off a fresh one-page private mapping after one read of it;
 * null where this process cannot see PFNs (or the read mapped no page).
 */
export function sharedZeroPageAddress(sys: SysCore, physical = pagemapReader()): bigint | null {
  if (!physical) return null;
  const m = sys.mmap(Number(PAGE_SIZE), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (typeof m === 'number') return null;
  try {
    void new Uint8Array(m.buffer, 0, 1)[0];
    return physical(m.address);
  } finally {
    sys.munmap(m);
  }
}
