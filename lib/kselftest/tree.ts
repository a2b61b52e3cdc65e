// The tree whose selftests run: the user's (--kernel-src) or Debian's source
// of the kernel in use, with its installed uAPI headers. The one place that
// asks lib/kbuild for a tree, so a change of how trees are chosen
// (--kernel-version) is made here.
import { ensureKernelHeaders, ensureKernelSource } from '../kbuild/source.ts';

export interface KselftestTree {
  dir: string;
  /** The cache key of the tree (its kernel build and headers are keyed the same way). */
  key: string;
  version: string;
  includeDir: string;
}

export async function kselftestTree(opts: { kernelSrc?: string }, log: (line: string) => void = () => {}): Promise<KselftestTree> {
  const src = ensureKernelSource(opts.kernelSrc, log);
  return { dir: src.dir, key: src.key, version: src.version, includeDir: ensureKernelHeaders(src, log) };
}
