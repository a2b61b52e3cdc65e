// The N-API addon backend (native/). Loading is explicit (loadAddon) so that
// importing this file never fails; the first caller gets a clear error if the
// addon was not built.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';
import type { Sys } from './types.ts';

export { PACKAGE_ROOT };
export const ADDON_PATH = join(PACKAGE_ROOT, 'build', 'Release', 'iommufd_native.node');

type NativeModule = Omit<Sys, 'backend'>;

let loaded: Sys | undefined;

/** Whether `npm ci` (or `npm run build:native`) built the addon: without a C++ compiler it installs without it. */
export function addonBuilt(): boolean {
  // Once loaded it is there (coreSys asks on every call: a stat each time, slow under TCG).
  return loaded !== undefined || existsSync(ADDON_PATH);
}

/** The addon's Sys; loads build/Release/iommufd_native.node on first use. */
export function loadAddon(): Sys {
  if (loaded) return loaded;
  if (!existsSync(ADDON_PATH)) {
    throw new Error(`native addon not built: run \`npm ci\` (or \`npm run build:native\`) in ${PACKAGE_ROOT} (missing ${ADDON_PATH})`);
  }
  // The benchmark's floors (bench/ioctl.ts) are kept out of Sys.
  const { napiFloor: _floor, napiFloorIoctl: _floorIoctl, ...native } =
    createRequire(import.meta.url)(ADDON_PATH) as NativeModule & { napiFloor?: unknown; napiFloorIoctl?: unknown };
  // Spreading copies the native functions themselves: sys.ioctl is the
  // addon's function, with no JS wrapper on the hot path.
  loaded = Object.freeze({ backend: 'addon' as const, ...native });
  return loaded;
}

type FloorFunction = (fd: number, request: number, arg: Uint8Array | null) => number;

/**
 * The benchmark's floors (native/fd.cc): `nothing` takes ioctl's arguments and
 * does nothing; `ioctl` issues the ioctl with the least work that is still safe.
 */
export function addonNapiFloors(): { nothing: FloorFunction; ioctl: FloorFunction } {
  if (!existsSync(ADDON_PATH)) throw new Error(`native addon not built: run \`npm ci\` in ${PACKAGE_ROOT}`);
  const native = createRequire(import.meta.url)(ADDON_PATH) as { napiFloor?: FloorFunction; napiFloorIoctl?: FloorFunction };
  if (typeof native.napiFloor !== 'function' || typeof native.napiFloorIoctl !== 'function') {
    throw new Error(`${ADDON_PATH} predates the benchmark floors: run \`npm run build:native\``);
  }
  return { nothing: native.napiFloor, ioctl: native.napiFloorIoctl };
}
