// The code a test guest runs, bundled ahead of time. Under TCG every file
// Node reads over 9p, every TypeScript transform and every byte V8 parses
// costs: tsx alone added over a second to each boot. esbuild turns the CLI and
// every profile's test files into one CommonJS script,
// build/guest/<hash>/bundle.js (two levels below the package root, like
// lib/*/, so paths derived from import.meta.url still resolve), which the
// guest runs through main.cjs (lib/vm/guest-loader.cjs) from a V8 code cache
// made here by the same Node binary (bundle.js.cache). One file, not one per
// module: Node's ESM loader resolves, reads (over 9p), compiles and links each
// module file on its own, and the split bundle this replaced gave the mock
// profile 54 files; a script, not an ES module: Node 20 caches no ES module's
// compiled code, and a script's cache saved about half a second of each boot
// (docs/performance.md, "Boot to first test", has the figures). The test files
// and the CLI's commands are reached through import() in the entry, which
// esbuild turns into code evaluated on first use inside the file: a run
// evaluates its own profile's test files (lib/cli/bundled-tests.ts) and its
// own command.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../cli/paths.ts';
import { testFilesIn } from '../cli/run.ts';
import { ALL_STRUCTS } from '../uapi/index.ts';
import { precompiledCodecSource } from '../uapi/compiled-codec.ts';
import { ALL_PROFILES, profiles, type ProfileName } from './profiles.ts';

export function guestBundleDir(out: string): string {
  return join(PACKAGE_ROOT, 'build', 'guest', createHash('sha256').update(resolve(out)).digest('hex').slice(0, 12));
}

export interface GuestManifest {
  /** What the guest runs with Node: main.cjs, the loader of bundle.js. */
  main: string;
  /** This manifest's own path (the guest's `run --manifest`). */
  path: string;
  /** Test files per profile: the source paths they were bundled from, which key them in bundle.js. */
  suites: Record<ProfileName, string[]>;
}

/**
 * The bundle's entry: registers every test file and exports the CLI's main, which the loader
 * (lib/vm/guest-loader.cjs) calls once the guest's init lets the job start.
 */
export function guestEntrySource(tests: string[], codecs?: string): string {
  return [
    `import { bundledTestFiles } from ${JSON.stringify(join(PACKAGE_ROOT, 'lib/cli/bundled-tests.ts'))};`,
    `export { main } from ${JSON.stringify(join(PACKAGE_ROOT, 'lib/cli/main.ts'))};`,
    // Every struct's compiled codec (precompiledCodecSource(ALL_STRUCTS)), made here rather than by `new Function` in the guest, so that the code cache holds it.
    ...(codecs === undefined ? [] : [
      `import { usePrecompiledCodecs } from ${JSON.stringify(join(PACKAGE_ROOT, 'lib/uapi/compiled-codec.ts'))};`,
      `import { ALL_STRUCTS } from ${JSON.stringify(join(PACKAGE_ROOT, 'lib/uapi/index.ts'))};`,
      `usePrecompiledCodecs(ALL_STRUCTS, ${codecs});`,
    ]),
    ...tests.map((t) => `bundledTestFiles.set(${JSON.stringify(t)}, () => import(${JSON.stringify(t)}));`),
    '',
  ].join('\n');
}

/**
 * Runs the bundle once on this host to make its V8 code cache: a `run` of every profile whose --grep
 * matches no test compiles the CLI, mocha, every test file's top level, the reporters and mocha's
 * runner, as a guest's start does (the run before the first test; a `--list` alone left the runner and
 * the reporters out, ~0.1 s of a boot). It writes its empty results into a folder of its own, removed
 * after. Same Node binary, no NODE_OPTIONS (the guest has none): V8 refuses a cache made under other
 * flags. Returns why there is no cache, or null.
 */
function makeCodeCache(manifest: GuestManifest): string | null {
  const env: NodeJS.ProcessEnv = { ...process.env, IOMMUFD_CONFORMANCE_WRITE_CODE_CACHE: '1' };
  delete env.NODE_OPTIONS;
  const out = mkdtempSync(join(tmpdir(), 'iommufd-conformance-code-cache-'));
  try {
    // (?!) matches nothing: no test runs, no kernel is touched.
    const r = spawnSync(process.execPath, [manifest.main, 'run', '--profile', ALL_PROFILES.join(','), '--manifest', manifest.path, '--grep', '(?!)', '--out', out], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const cache = join(dirname(manifest.main), 'bundle.js.cache');
    if (r.status === 0 && existsSync(cache)) return null;
    rmSync(cache, { force: true });
    return `running the bundle with no test selected failed (${r.error?.message ?? `exit ${r.status}`}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')})`;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const BUNDLE_WRAPPER_OPEN = "(function (exports, require, module, __filename, __dirname) { 'use strict'; ";
const BUNDLE_WRAPPER_CLOSE = '})';

/** Bundles the guest's code; `log` hears why the bundle has no code cache, if it has none (the guest then compiles it). */
export async function bundleGuest(out: string, log?: (line: string) => void): Promise<GuestManifest> {
  const GUEST_BUNDLE_DIR = guestBundleDir(out);
  const tests = [...new Set(ALL_PROFILES.flatMap((p) => profiles[p].suites.flatMap(testFilesIn)))];
  rmSync(GUEST_BUNDLE_DIR, { recursive: true, force: true });
  mkdirSync(GUEST_BUNDLE_DIR, { recursive: true });
  // Imported here, not at the top: the bundle carries this module, and a static import of an external
  // package would load it (from node_modules, over 9p) at every guest start.
  const { build } = await import('esbuild');
  await build({
    stdin: { contents: guestEntrySource(tests, precompiledCodecSource(ALL_STRUCTS)), resolveDir: PACKAGE_ROOT, sourcefile: 'guest-entry.ts', loader: 'ts' },
    outfile: join(GUEST_BUNDLE_DIR, 'bundle.js'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    // mocha is bundled too: loading its ~100 files over 9p cost more than a second.
    external: ['koffi', 'esbuild', 'tsx', 'tsx/*'],
    // Every module's import.meta.url is the bundle's, as it was in a one-file ES module.
    define: { 'import.meta.url': '__bundle_url' },
    // The file is CommonJS's own wrapper around the code, strict as the ES modules the sources are, so
    // that the loader compiles the file as read: no second 2.6 MB string made by concatenation. The
    // wrapper opens on the code's first line: line numbers stay the file's.
    banner: { js: `${BUNDLE_WRAPPER_OPEN}var __bundle_url = require('node:url').pathToFileURL(__filename).href;` },
    footer: { js: BUNDLE_WRAPPER_CLOSE },
    // Every non-ASCII character of the code escaped (esbuild's default, said here because the loader
    // depends on it): the guest reads the file as latin1, one byte a character, which under TCG costs
    // less than decoding UTF-8 (~0.03 s of the boot). Comments keep theirs, and only they change.
    charset: 'ascii',
    // import() of a package left outside (koffi) becomes require(): vm.Script has no module loader.
    supported: { 'dynamic-import': false },
    // mocha's parallel mode names its worker files by require.resolve; the guest never runs it.
    logOverride: { 'require-resolve-not-external': 'silent' },
    logLevel: 'warning',
  });
  copyFileSync(join(PACKAGE_ROOT, 'lib/vm/guest-loader.cjs'), join(GUEST_BUNDLE_DIR, 'main.cjs'));
  const manifest: GuestManifest = {
    main: join(GUEST_BUNDLE_DIR, 'main.cjs'),
    path: join(GUEST_BUNDLE_DIR, 'manifest.json'),
    suites: Object.fromEntries(
      ALL_PROFILES.map((p) => [p, profiles[p].suites.flatMap(testFilesIn)]),
    ) as Record<ProfileName, string[]>,
  };
  writeFileSync(manifest.path, JSON.stringify(manifest, null, 2));
  const noCache = makeCodeCache(manifest);
  if (noCache) log?.(`guest bundle: no V8 code cache, the guest compiles the bundle itself (slower start): ${noCache}`);
  return manifest;
}
