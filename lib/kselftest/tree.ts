// The tree whose selftests run: the user's (--kernel-src) or Debian's source
// of the kernel in use (--kernel-version), with its installed uAPI headers.
// The one place that asks lib/kbuild for a tree.
import type { KernelSeries } from '../kbuild/series.ts';
import { ensureKernelHeaders, ensureKernelSource } from '../kbuild/source.ts';

export interface KselftestTree {
  dir: string;
  /** The cache key of the tree (its kernel build and headers are keyed the same way). */
  key: string;
  version: string;
  includeDir: string;
}

export async function kselftestTree(opts: { kernelSrc?: string; kernelVersion?: KernelSeries }, log: (line: string) => void = () => {}): Promise<KselftestTree> {
  const src = await ensureKernelSource({ tree: opts.kernelSrc, series: opts.kernelVersion, log });
  return { dir: src.dir, key: src.key, version: src.version, includeDir: await ensureKernelHeaders(src, log) };
}
