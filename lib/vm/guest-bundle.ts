// The code a test guest runs, bundled ahead of time. Under TCG every file
// Node reads over 9p and every TypeScript transform costs: tsx alone added
// over a second to each boot. esbuild turns the CLI and each profile's test
// files into one ESM bundle with shared chunks in build/guest/ (two levels
// below the package root, like lib/*/, so paths derived from import.meta.url
// still resolve).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { PACKAGE_ROOT } from '../cli/paths.ts';
import { testFilesIn } from '../cli/run.ts';
import { profiles, PROFILES, type ProfileName } from './profiles.ts';

export const GUEST_BUNDLE_DIR = join(PACKAGE_ROOT, 'build', 'guest');
export const GUEST_MANIFEST = join(GUEST_BUNDLE_DIR, 'manifest.json');

export interface GuestManifest {
  main: string;
  /** Bundled test files per profile, absolute paths. */
  suites: Record<ProfileName, string[]>;
}

function outName(source: string): string {
  return relative(PACKAGE_ROOT, source).replace(/\.ts$/, '').replace(/[\\/]/g, '__');
}

export async function bundleGuest(): Promise<GuestManifest> {
  const tests = [...new Set(PROFILES.flatMap((p) => profiles[p].suites.flatMap(testFilesIn)))];
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
    suites: Object.fromEntries(
      PROFILES.map((p) => [p, profiles[p].suites.flatMap(testFilesIn).map((t) => join(GUEST_BUNDLE_DIR, `${outName(t)}.mjs`))]),
    ) as Record<ProfileName, string[]>,
  };
  writeFileSync(GUEST_MANIFEST, JSON.stringify(manifest, null, 2));
  return manifest;
}
