// The code a test guest runs, bundled ahead of time. Under TCG every file
// Node reads over 9p and every TypeScript transform costs: tsx alone added
// over a second to each boot. esbuild turns the CLI and every profile's test
// files into one ESM file, build/guest/<hash>/main.mjs (two levels below the
// package root, like lib/*/, so paths derived from import.meta.url still
// resolve). One file, not one per module: Node's ESM loader resolves, reads
// (over 9p), compiles and links each module file on its own, and the split
// bundle this replaces gave the mock profile 54 files (docs/performance.md,
// "Boot to first test", has the figures). The test files and the CLI's
// commands are reached through import() in the entry, which esbuild turns
// into code evaluated on first use inside the file: a run evaluates its own
// profile's test files (lib/cli/bundled-tests.ts) and its own command.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
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
  /** Test files per profile: the source paths they were bundled from, which key them in main.mjs. */
  suites: Record<ProfileName, string[]>;
}

/** The bundle's entry: registers every test file, then runs the CLI (after the registrations: import() waits for them). */
export function guestEntrySource(tests: string[]): string {
  return [
    `import { bundledTestFiles } from ${JSON.stringify(join(PACKAGE_ROOT, 'lib/cli/bundled-tests.ts'))};`,
    ...tests.map((t) => `bundledTestFiles.set(${JSON.stringify(t)}, () => import(${JSON.stringify(t)}));`),
    `await import(${JSON.stringify(join(PACKAGE_ROOT, 'lib/cli/entry.ts'))});`,
    '',
  ].join('\n');
}

export async function bundleGuest(out: string): Promise<GuestManifest> {
  const GUEST_BUNDLE_DIR = guestBundleDir(out);
  const tests = [...new Set(ALL_PROFILES.flatMap((p) => profiles[p].suites.flatMap(testFilesIn)))];
  rmSync(GUEST_BUNDLE_DIR, { recursive: true, force: true });
  mkdirSync(GUEST_BUNDLE_DIR, { recursive: true });
  // Imported here, not at the top: the bundle carries this module, and a static import of an external
  // package would load it (from node_modules, over 9p) at every guest start.
  const { build } = await import('esbuild');
  await build({
    stdin: { contents: guestEntrySource(tests), resolveDir: PACKAGE_ROOT, sourcefile: 'guest-entry.ts', loader: 'ts' },
    outfile: join(GUEST_BUNDLE_DIR, 'main.mjs'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
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
      ALL_PROFILES.map((p) => [p, profiles[p].suites.flatMap(testFilesIn)]),
    ) as Record<ProfileName, string[]>,
  };
  writeFileSync(manifest.path, JSON.stringify(manifest, null, 2));
  return manifest;
}
