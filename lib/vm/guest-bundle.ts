// The code a test guest runs, bundled ahead of time. Under TCG every file
// Node reads over 9p and every TypeScript transform costs: tsx alone added
// over a second to each boot. esbuild turns the CLI and each profile's test
// files into one ESM bundle with shared chunks in build/guest/ (two levels
// below the package root, like lib/*/, so paths derived from import.meta.url
// still resolve).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative, resolve } from 'node:path';
import { build } from 'esbuild';
import { PACKAGE_ROOT } from '../cli/paths.ts';
import { testFilesIn } from '../cli/run.ts';
import { ALL_PROFILES, profiles, type ProfileName } from './profiles.ts';

export function guestBundleDir(out: string): string {
  return join(PACKAGE_ROOT, 'build', 'guest', createHash('sha256').update(resolve(out)).digest('hex').slice(0, 12));
}

export interface GuestManifest {
  main: string;
  /** This manifest's own path (the guest's `run --manifest`). */
  path: string;
  /** Bundled test files per profile, absolute paths. */
  suites: Record<ProfileName, string[]>;
}

function outName(source: string): string {
  return relative(PACKAGE_ROOT, source).replace(/\.ts$/, '').replace(/[\\/]/g, '__');
}

export async function bundleGuest(out: string): Promise<GuestManifest> {
  const GUEST_BUNDLE_DIR = guestBundleDir(out);
  const tests = [...new Set(ALL_PROFILES.flatMap((p) => profiles[p].suites.flatMap(testFilesIn)))];
  const entryPoints: Record<string, string> = { main: join(PACKAGE_ROOT, 'lib/cli/entry.ts') };
  for (const t of tests) entryPoints[outName(t)] = t;
  rmSync(GUEST_BUNDLE_DIR, { recursive: true, force: true });
  mkdirSync(GUEST_BUNDLE_DIR, { recursive: true });
  await build({
    entryPoints,
    outdir: GUEST_BUNDLE_DIR,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    // mocha is bundled too: loading its ~100 files over 9p cost more than a second.
    external: ['koffi', 'esbuild', 'tsx', 'tsx/*'],
    // Bundled CommonJS (chai's deps, if any) may call require().
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
  const manifest: GuestManifest = {
    main: join(GUEST_BUNDLE_DIR, 'main.mjs'),
    path: join(GUEST_BUNDLE_DIR, 'manifest.json'),
    suites: Object.fromEntries(
      ALL_PROFILES.map((p) => [p, profiles[p].suites.flatMap(testFilesIn).map((t) => join(GUEST_BUNDLE_DIR, `${outName(t)}.mjs`))]),
    ) as Record<ProfileName, string[]>,
  };
  writeFileSync(manifest.path, JSON.stringify(manifest, null, 2));
  return manifest;
}
