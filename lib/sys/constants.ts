// Linux x86_64 / generic values of the flags the suite passes to the system
// calls in this directory. The kernel's uAPI structs and ioctl numbers live
// in lib/uapi/, not here.
import { readFileSync } from 'node:fs';

// open(2)
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

// mmap(2) / mprotect(2)
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_HUGETLB = 0x40000;

// madvise(2)
export const MADV_DONTNEED = 4;
export const MADV_DONTFORK = 10;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;

// memfd_create(2)
export const MFD_CLOEXEC = 0x1;
export const MFD_HUGETLB = 0x4;

// getrlimit(2)
export const RLIMIT_MEMLOCK = 8;
/** RLIM_INFINITY: all ones in a 64-bit rlim_t. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

// capabilities(7): bit numbers in the 64-bit sets of capget/capset.
export const CAP_IPC_LOCK = 14;
export const CAP_SYS_ADMIN = 21;
export const CAP_SYS_RESOURCE = 24;

/** The bit of capability `cap` in a 64-bit capability set. */
export function capBit(cap: number): bigint {
  return 1n << BigInt(cap);
}

// The kernel tells every process its page size in the auxiliary vector
// (AT_PAGESZ); reading it costs one small file read at import. 4096 is the
// fallback, and the value on x86_64.
const AT_PAGESZ = 6n;
function readPageSize(): number {
  try {
    const auxv = readFileSync('/proc/self/auxv');
    const view = new DataView(auxv.buffer, auxv.byteOffset, auxv.byteLength);
    for (let at = 0; at + 16 <= auxv.byteLength; at += 16) {
      const type = view.getBigUint64(at, true);
      if (type === 0n) break;
      if (type === AT_PAGESZ) return Number(view.getBigUint64(at + 8, true));
    }
  } catch {
    // No /proc: keep the default.
  }
  return 4096;
}

export const PAGE_SIZE: number = readPageSize();
