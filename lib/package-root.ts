// The package root (the folder holding this project's package.json), found by
// walking up from the running file: true for lib/*/ sources run by tsx and
// for bundles under build/ alike.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRootFrom(fileUrl: string): string {
  let dir = dirname(fileURLToPath(fileUrl));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'iommufd-conformance') return dir;
      } catch {
        // not ours: keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`iommufd-conformance: no package root above ${fileURLToPath(fileUrl)}`);
    dir = parent;
  }
}

export const PACKAGE_ROOT = packageRootFrom(import.meta.url);
