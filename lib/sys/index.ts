// The system-call layer: pick a backend, get a Sys or SysCore.
//
// Backends load on first use, so importing this file never fails: a missing
// addon build or an unusable koffi only surfaces when that backend is asked
// for.
import { addonBuilt, loadAddon } from './addon.ts';
import { loadKoffi } from './koffi.ts';
import type { Sys, SysCore } from './types.ts';

export type * from './types.ts';
export * from './constants.ts';
export { errnoName, errnoNumber } from './errno.ts';
export { addonBuilt } from './addon.ts';
export { checkLeadingSize, checkLeadingSizeOf } from './ioctl-size.ts';

export type BackendName = SysCore['backend'];
export const BACKENDS: readonly BackendName[] = ['addon', 'koffi'];
export const BACKEND_ENV = 'IOMMUFD_CONFORMANCE_BACKEND';

/** The full system-call surface; only the addon implements all of it. */
export function sys(): Sys {
  return loadAddon();
}

let toldKoffi = false;

/**
 * The core calls from the backend named by the argument, else by the
 * IOMMUFD_CONFORMANCE_BACKEND environment variable, else the addon, or koffi
 * (said once on stderr) where the addon was not built: `npm ci` installs
 * without it when there is no C++ compiler (scripts/build-addon.mjs).
 */
export function coreSys(backend?: string): SysCore {
  let name = backend ?? process.env[BACKEND_ENV];
  if (name === undefined) {
    name = addonBuilt() ? 'addon' : 'koffi';
    if (name === 'koffi' && !toldKoffi) {
      toldKoffi = true;
      process.stderr.write('iommufd-conformance: native addon not built: running on the koffi backend (npm run build:native builds the addon)\n');
    }
  }
  switch (name) {
    case 'addon': return loadAddon();
    case 'koffi': return loadKoffi();
    default: {
      const source = backend === undefined ? `${BACKEND_ENV}=${JSON.stringify(name)}` : JSON.stringify(name);
      throw new Error(`unknown system-call backend ${source}: expected one of ${BACKENDS.join(', ')}`);
    }
  }
}
