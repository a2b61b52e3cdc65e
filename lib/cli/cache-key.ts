// `iommufd-conformance cache-key`: the guest kernel's cache entry (source
// package version, flavour, compiler and config fragments hashed, as
// lib/vm/kernel.ts keys its cache), printed without building, so that a CI
// cache (GitHub's actions/cache) is keyed by the tool's own key and a hit is
// exactly a build the tool would reuse.
import { join } from 'node:path';
import { cacheRoot } from '../kbuild/cache.ts';
import { guestKernelCacheEntry, type KernelFlavour } from '../vm/kernel.ts';
import { parseOptions, UsageError, type OptionSpec } from './args.ts';

export async function cacheKeyCommand(argv: string[], spec: OptionSpec): Promise<number> {
  const { options: o, rest } = parseOptions(argv, spec);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
  const flavour = o.flavour as string;
  if (flavour !== 'base' && flavour !== 'debug') throw new UsageError('--flavour is base or debug');
  const entry = guestKernelCacheEntry({ flavour: flavour as KernelFlavour, sourceDir: o['kernel-src'] as string | undefined, log: (l) => process.stderr.write(`${l}\n`) });
  // key=... and dir=... lines can be appended to $GITHUB_OUTPUT as they are. The cache holds dir/bzImage and
  // dir/config, not the build's objects beside them.
  process.stdout.write(`key=guest-kernel-${entry.id}\ndir=${join(cacheRoot(), 'kernel', entry.id)}\n`);
  return 0;
}
