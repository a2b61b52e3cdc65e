#!/usr/bin/env node
// npm's install step: builds the N-API addon (native/) with node-gyp. Without
// a C++ compiler (or with a failed build) the install still succeeds: the
// koffi backend needs no compiler, and the tool says once, when it starts,
// that it runs on koffi (lib/sys/index.ts). `npm run build:native` builds the
// addon later; IOMMUFD_CONFORMANCE_REQUIRE_ADDON=1 makes a failed build fail
// the install (for CI images that must have the addon).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// npm puts its own node-gyp on PATH for lifecycle scripts; npm_config_node_gyp names it too.
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
if (r.status === 0) process.exit(0);
const why = r.error ? `${cmd}: ${r.error.message}` : `node-gyp exited with ${r.status}`;
if (process.env.IOMMUFD_CONFORMANCE_REQUIRE_ADDON === '1') {
  console.error(`iommufd-conformance: the native addon did not build (${why}) and IOMMUFD_CONFORMANCE_REQUIRE_ADDON=1`);
  process.exit(1);
}
// A half-built tree must not pass for a built addon.
rmSync(join(root, 'build'), { recursive: true, force: true });
console.error(
  `iommufd-conformance: the native addon did not build (${why}); installed without it.\n` +
    '  The koffi backend runs the core system calls; the suites that fork, set capabilities or inject faults need the addon.\n' +
    '  To build it: apt-get install g++ make python3 && npm run build:native   (iommufd-conformance doctor lists what is missing)',
);
