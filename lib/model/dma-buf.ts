// A dma-buf as iommufd sees one (7.x): the selftest's exporter
// (selftest.c: struct iommufd_test_dma_buf, iommufd_test_dmabuf_get and
// _revoke, iommufd_test_dma_buf_iommufd_map) and the importer's attachments
// (drivers/dma-buf/dma-buf.c: dma_buf_dynamic_attach,
// dma_buf_invalidate_mappings). The importer, IOMMU_IOAS_MAP_FILE's
// iopt_pages, is pages.ts.
import { PAGE_SIZE, type UserMemory } from './process.ts';

/** What a dma-buf attachment's importer does when the exporter invalidates it (dma_buf_attach_ops.invalidate_mappings). */
export interface DmaBufImporter {
  invalidateMappings(): void;
}

export class DmaBuf {
  /** dmabuf->size: ALIGN(length, PAGE_SIZE). */
  readonly size: bigint;
  /** priv->revoked: iommufd_test_dma_buf_iommufd_map refuses a new mapping with ENODEV. */
  revoked = false;
  /** dmabuf->attachments (dma_buf_dynamic_attach adds, dma_buf_detach removes). */
  readonly attachments = new Set<DmaBufImporter>();
  /** The identities of the pages of priv->memory (kzalloc: kernel memory, no user page and never pinned). */
  readonly #pageIds: number[];

  constructor(memory: UserMemory, size: bigint) {
    this.size = size;
    this.#pageIds = Array.from({ length: Number(size / PAGE_SIZE) }, () => memory.newPageId());
  }

  /** The page of priv->memory at a page index (phys.paddr + index * PAGE_SIZE). */
  pageAt(index: bigint): number {
    return this.#pageIds[Number(index)]!;
  }

  /**
   * selftest.c:iommufd_test_dmabuf_revoke: priv->revoked = revoked, then
   * dma_buf_invalidate_mappings calls every attachment's invalidate_mappings,
   * whichever way the flag went (pages.c:iopt_revoke_notify revokes each
   * iopt_pages for good: a later MAP_FILE makes a new attachment).
   */
  setRevoked(revoked: boolean): void {
    this.revoked = revoked;
    for (const a of [...this.attachments]) a.invalidateMappings();
  }
}

/**
 * selftest.c:iommufd_test_dmabuf_get: len = ALIGN(len, PAGE_SIZE), then
 * "if (len == 0 || len > PAGE_SIZE * 512) return -EINVAL". The dma-buf's
 * fd is the op's return value (dma_buf_fd with open_flags).
 */
export function testDmabufLength(length: number): bigint | null {
  const len = (BigInt(length >>> 0) + PAGE_SIZE - 1n) & ~(PAGE_SIZE - 1n);
  if (len === 0n || len > PAGE_SIZE * 512n) return null;
  return len;
}
