// The guest kernel's build time (goals: a fresh build at most 4 minutes on 2
// cores for 6.12 and 7.2; after a one-file change in drivers/iommu/iommufd,
// a rebuild at most 60 s). Each series is built from its Debian source as a
// user tree: a hard-linked copy of the cached package tree (seconds, no extra
// disk), built with the same fragments and make as `vm` builds it, in a cache
// entry of its own; then one file of that copy is changed and the same call
// rebuilds it, as `vm --kernel-src` does for a kernel developer's tree. Both
// copies and their build folders are removed afterwards.
//
// Wall time is the goal's measure; CPU time (every process of the build) and
// the load average are printed beside it, so a figure taken on a busy machine
// can be told from one taken on an idle one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../lib/kbuild/cache.ts';
import type { KernelSeries } from '../lib/kbuild/series.ts';
import { ensureKernelSource } from '../lib/kbuild/source.ts';
import { ensureGuestKernel, guestKernelCacheEntry } from '../lib/vm/kernel.ts';

const FRESH_GOAL_SECONDS = 240;
const REBUILD_GOAL_SECONDS = 60;
/** The one file changed for the incremental rebuild: iommufd's ioctl dispatch. */
const CHANGED_FILE = 'drivers/iommu/iommufd/main.c';

function verdict(seconds: number, goal: number): string {
  return `goal <= ${goal} s: ${seconds <= goal ? 'met' : 'NOT met'}`;
}

function load(): string {
  return loadavg()[0]!.toFixed(1);
}

/** A build log line only when it says something beyond progress. */
function quiet(line: string): void {
  if (/^kernel (built|rebuilt)/.test(line)) console.log(`    ${line}`);
}

export async function benchKernelBuild(series: readonly KernelSeries[], rebuildSeries: KernelSeries): Promise<void> {
  console.log(`guest kernel build (fixtures/kernel fragments, make -j as vm uses it; load average now ${load()}):`);
  for (const s of series) {
    const src = await ensureKernelSource({ series: s, log: () => {} });
    // Same file system as the cached tree, so the copy is hard links.
    const work = mkdtempSync(join(cacheRoot(), 'bench-kbuild-'));
    const tree = join(work, 'linux');
    let entryDir: string | null = null;
    try {
      const cp = spawnSync('cp', ['-al', src.dir, tree], { encoding: 'utf8' });
      if (cp.status !== 0) throw new Error(`cp -al ${src.dir} ${tree} failed: ${cp.stderr}`);
      entryDir = (await guestKernelCacheEntry({ flavour: 'base', sourceDir: tree, log: () => {} })).dir;
      rmSync(entryDir, { recursive: true, force: true });
      const fresh = await ensureGuestKernel({ flavour: 'base', sourceDir: tree, log: quiet });
      console.log(
        `  ${src.version} fresh build: ${fresh.buildSeconds.toFixed(0)} s (CPU ${fresh.buildCpuSeconds.toFixed(0)} s, load average ${load()} after it); ` +
          verdict(fresh.buildSeconds, FRESH_GOAL_SECONDS),
      );
      if (s !== rebuildSeries) continue;
      // A new file, not a write through the hard link: the cached package tree stays as it was.
      const path = join(tree, CHANGED_FILE);
      const text = readFileSync(path, 'utf8');
      unlinkSync(path);
      writeFileSync(path, `${text}\n/* iommufd-conformance bench: a one-file change */\n`);
      const again = await ensureGuestKernel({ flavour: 'base', sourceDir: tree, log: quiet });
      console.log(
        `  ${src.version} rebuild after changing ${CHANGED_FILE}: ${again.buildSeconds.toFixed(0)} s (CPU ${again.buildCpuSeconds.toFixed(0)} s); ` +
          verdict(again.buildSeconds, REBUILD_GOAL_SECONDS),
      );
    } catch (err) {
      console.log(`  ${src.version}: not measured: ${(err as Error).message.split('\n')[0]}`);
    } finally {
      if (entryDir) {
        rmSync(entryDir, { recursive: true, force: true });
        rmSync(`${entryDir}.lock`, { force: true });
      }
      rmSync(work, { recursive: true, force: true });
    }
  }
}
