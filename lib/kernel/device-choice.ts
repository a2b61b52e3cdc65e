// Which vfio-pci device the device-half suites and probes use: the one named
// by IOMMUFD_CONFORMANCE_DEVICE (a PCI address; `audit --host --device` sets
// it), or, where none is named, QEMU's edu device found by its PCI id (the
// viommu profile). With a device named, nothing else is looked for and the
// probes that borrow a VFIO group or cdev borrow only that device's: on a
// user's host no other device is touched.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { bindVfioPciGroup, driverOf, findPciDevices, iommuGroupOf, QEMU_EDU } from './pci.ts';

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

/** What no device at all means, for a skip or an audit failure: nothing named, and no edu found. */
export const NO_DEVICE_UNDER_TEST = `no device under test: ${DEVICE_ENV} names none and there is no QEMU edu device (PCI 1234:11e8); run in a profile with a vfio-pci device (viommu), or name one`;

/** The device under test, bound to vfio-pci, and its IOMMU group. */
export interface BoundDevice extends DeviceChoice {
  groupId: number;
}

/**
 * The device under test ready for VFIO, or why not: what every suite and the audit's device half use, so
 * that each takes the same device. `none` is true only when there is no device at all (the suites skip,
 * naming NO_DEVICE_UNDER_TEST). QEMU's edu is bound to vfio-pci here (the guest is ours; its group appears
 * at the bind under a VIOT); a named device must already be bound (the host is the user's: never rebound).
 */
export function vfioDeviceUnderTest(choice: DeviceChoice | null = deviceUnderTest()): BoundDevice | { why: string; none: boolean } {
  if (!choice) return { why: NO_DEVICE_UNDER_TEST, none: true };
  if (choice.named) {
    const driver = driverOf(choice.bdf);
    if (driver !== 'vfio-pci') return { why: `${choice.bdf} (${DEVICE_ENV}) is not bound to vfio-pci (driver: ${driver ?? 'none'}); bind it first`, none: false };
    const groupId = iommuGroupOf(choice.bdf);
    if (groupId === null) return { why: `${choice.bdf} has no IOMMU group (no vIOMMU)`, none: false };
    return { ...choice, groupId };
  }
  const bound = bindVfioPciGroup(choice.bdf);
  if (bound.why !== undefined) return { why: bound.why, none: false };
  return { ...choice, groupId: bound.groupId };
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
