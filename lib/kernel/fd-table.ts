// The calling process's open files as the kernel keeps them (/proc/self/fd),
// for the one place the uAPI does not say which fd a call installed: 7.3-rc7's
// IOMMU_TEST_OP_DMABUF_GET returns 0 and leaves its dma-buf's fd in the table
// unreported (docs/findings/KF-0005.md). Read only around such calls: each
// listing is a directory read, not free under TCG.
import { readdirSync, readlinkSync } from 'node:fs';

/** The fds open in this process now. The listing's own directory fd is closed again before this returns. */
export function openFds(): Set<number> {
  return new Set(readdirSync('/proc/self/fd').map(Number));
}

/** The fds open now that were not in `before`, lowest first. */
export function fdsOpenedSince(before: ReadonlySet<number>): number[] {
  return [...openFds()].filter((fd) => !before.has(fd)).sort((a, b) => a - b);
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
