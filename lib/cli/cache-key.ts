// `iommufd-conformance cache-key`: the guest kernel's cache entry (source
// package version, flavour, compiler and config fragments hashed, as
// lib/vm/kernel.ts keys its cache), printed without building, so that a CI
// cache (GitHub's actions/cache) is keyed by the tool's own key and a hit is
// exactly a build the tool would reuse.
import { UsageError } from './args.ts';
import { EXIT_PASS } from './exit-codes.ts';
import type { KernelChoice } from './options.ts';
import { guestKernelCacheEntry } from '../vm/kernel.ts';

export async function cacheKeyCommand(kernel: KernelChoice): Promise<number> {
  if (kernel.kernel !== undefined) throw new UsageError('--kernel is a ready bzImage: nothing to build, so no cache key');
  const entry = await guestKernelCacheEntry({ flavour: kernel.flavour, sourceDir: kernel.kernelSrc, series: kernel.kernelVersion, log: (l) => process.stderr.write(`${l}\n`) });
  // key=... and dir=... lines can be appended to $GITHUB_OUTPUT as they are. The cache holds dir/vmlinux and
  // dir/config, not the build's objects beside them.
  process.stdout.write(`key=guest-kernel-${entry.id}\ndir=${entry.dir}\n`);
  return EXIT_PASS;
}
