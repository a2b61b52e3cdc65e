// Where built and extracted artefacts are kept between runs: outside the
// clone, so a fresh clone on the same machine reuses them.
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheRoot(): string {
  const root =
    process.env.IOMMUFD_CONFORMANCE_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'iommufd-conformance');
  mkdirSync(root, { recursive: true });
  return root;
}

export function cacheDir(...parts: string[]): string {
  const dir = join(cacheRoot(), ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}
