// The calling process's open files as the kernel keeps them (/proc/self/fd),
// for the one place the uAPI does not say which fd a call installed: 7.3-rc7's
// IOMMU_TEST_OP_DMABUF_GET returns 0 and leaves its dma-buf's fd in the table
// unreported (docs/findings/KF-0005.md). Read only around such calls: each
// listing is a directory read, not free under TCG.
import { closeSync, fstatSync, readdirSync, readlinkSync } from 'node:fs';
import type { IommuFd } from './iommufd.ts';

/**
 * The fds open in this process now. The listing shows its own directory's fd too, closed again by the
 * time it returns: only the fds still open afterwards count (that number is the next one a call gets).
 */
export function openFds(): Set<number> {
  const out = new Set<number>();
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    try {
      fstatSync(fd);
      out.add(fd);
    } catch {
      // the listing's own fd, closed
    }
  }
  return out;
}

/** The fds open `now` (default: this process's, listed afresh) that were not in `before`, lowest first. */
export function fdsOpenedSince(before: ReadonlySet<number>, now: ReadonlySet<number> = openFds()): number[] {
  return [...now].filter((fd) => !before.has(fd)).sort((a, b) => a - b);
}

/**
 * Whether an fd is a dma-buf: its /proc/self/fd link reads "/dmabuf:<name>"
 * (drivers/dma-buf/dma-buf.c: dma_buf_getfile makes the file on the
 * "dmabuf" pseudo filesystem, and dmabuffs_dname names it "/%s:%s").
 */
export function isDmabufFd(fd: number): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith('/dmabuf:');
  } catch {
    return false;
  }
}

/**
 * What one IOMMU_TEST_OP_DMABUF_GET of `length` bytes did, on the kernel alone: its errno and value, and
 * each fd it added to the table (whether a dma-buf). Every fd it made is closed again. The feature probe
 * and KF-0005's own test both look at the op this way.
 */
export function dmabufGetSeen(iommufd: Pick<IommuFd, 'testDmabufGet'>, length: number): { errno: number; value: number; made: { fd: number; dmabuf: boolean }[] } {
  const before = openFds();
  const r = iommufd.testDmabufGet({ length });
  const made = fdsOpenedSince(before).map((fd) => ({ fd, dmabuf: isDmabufFd(fd) }));
  for (const m of made) closeSync(m.fd);
  return { errno: r.errno, value: r.dmabufFd, made };
}
