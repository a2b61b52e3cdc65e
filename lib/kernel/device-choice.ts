// Which vfio-pci device the device-half suites and probes use: the one named
// by IOMMUFD_CONFORMANCE_DEVICE (a PCI address; `audit --host --device` sets
// it), or, where none is named, QEMU's edu device found by its PCI id (the
// viommu profile). With a device named, nothing else is looked for and the
// probes that borrow a VFIO group or cdev borrow only that device's: on a
// user's host no other device is touched.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findPciDevices, iommuGroupOf, QEMU_EDU } from './pci.ts';

export const DEVICE_ENV = 'IOMMUFD_CONFORMANCE_DEVICE';

/** domain:bus:slot.function as sysfs names a PCI function, e.g. 0000:00:03.0 (lower-case hex). */
const BDF = /^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$/;

/** A PCI address as sysfs writes it; throws a RangeError saying what a well-formed one is. */
export function parseBdf(text: string): string {
  const bdf = text.trim().toLowerCase();
  if (!BDF.test(bdf)) {
    throw new RangeError(`'${text}' is not a PCI address: give DOMAIN:BUS:SLOT.FUNCTION in hex as lspci -D prints it, e.g. 0000:03:00.0 (slot 00-1f, function 0-7)`);
  }
  return bdf;
}

/** The device named by IOMMUFD_CONFORMANCE_DEVICE, or null; a malformed value throws (RangeError). */
export function namedDevice(env: NodeJS.ProcessEnv = process.env): string | null {
  const v = env[DEVICE_ENV];
  if (v === undefined || v === '') return null;
  try {
    return parseBdf(v);
  } catch (e) {
    throw new RangeError(`${DEVICE_ENV}: ${(e as Error).message}`);
  }
}

export interface DeviceChoice {
  bdf: string;
  /** Named by IOMMUFD_CONFORMANCE_DEVICE (the user bound it; never rebind it), or found as QEMU's edu. */
  named: boolean;
}

/** The device under test: the named one, else QEMU's edu device; null when neither is there. */
export function deviceUnderTest(env: NodeJS.ProcessEnv = process.env): DeviceChoice | null {
  const named = namedDevice(env);
  if (named) return { bdf: named, named: true };
  const [edu] = findPciDevices(QEMU_EDU.vendor, QEMU_EDU.device);
  return edu ? { bdf: edu.bdf, named: false } : null;
}

/**
 * The VFIO groups (/dev/vfio/N names) a probe may borrow: the named device's group only, or every one
 * there is when no device is named.
 */
export function borrowableVfioGroups(env: NodeJS.ProcessEnv = process.env): string[] {
  const named = namedDevice(env);
  if (named) {
    const group = iommuGroupOf(named);
    return group === null ? [] : [String(group)];
  }
  return readdirSync('/dev/vfio').filter((n) => /^\d+$/.test(n));
}

/** The VFIO device cdevs (vfioN names under /dev/vfio/devices) a probe may borrow, as borrowableVfioGroups. */
export function borrowableVfioCdevs(env: NodeJS.ProcessEnv = process.env): string[] {
  const named = namedDevice(env);
  if (named) {
    const dir = join('/sys/bus/pci/devices', named, 'vfio-dev');
    return existsSync(dir) ? readdirSync(dir).filter((n) => /^vfio\d+$/.test(n)) : [];
  }
  return readdirSync('/dev/vfio/devices').filter((n) => /^vfio\d+$/.test(n)).sort();
}
