// PCI devices through sysfs: find a device by vendor/device id, bind it to
// vfio-pci (driver_override + drivers_probe, so no id table is touched) and
// find its IOMMU group.
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const PCI_DEVICES = '/sys/bus/pci/devices';

export interface PciDevice {
  /** Domain:bus:slot.function, e.g. 0000:00:03.0. */
  bdf: string;
  vendor: number;
  device: number;
}

function readHex(path: string): number {
  return Number.parseInt(readFileSync(path, 'utf8').trim(), 16);
}

export function findPciDevices(vendor: number, device: number): PciDevice[] {
  if (!existsSync(PCI_DEVICES)) return [];
  return readdirSync(PCI_DEVICES)
    .map((bdf) => ({ bdf, vendor: readHex(join(PCI_DEVICES, bdf, 'vendor')), device: readHex(join(PCI_DEVICES, bdf, 'device')) }))
    .filter((d) => d.vendor === vendor && d.device === device);
}

export function driverOf(bdf: string): string | null {
  const link = join(PCI_DEVICES, bdf, 'driver');
  return existsSync(link) ? basename(readlinkSync(link)) : null;
}

/** The device's IOMMU group number, or null when no IOMMU covers it. */
export function iommuGroupOf(bdf: string): number | null {
  const link = join(PCI_DEVICES, bdf, 'iommu_group');
  return existsSync(link) ? Number(basename(readlinkSync(link))) : null;
}

/** Binds the device to vfio-pci; returns null on success, or what went wrong. */
export function bindVfioPci(bdf: string): string | null {
  if (driverOf(bdf) === 'vfio-pci') return null;
  if (!existsSync('/sys/bus/pci/drivers/vfio-pci')) return 'vfio-pci driver is not loaded (CONFIG_VFIO_PCI)';
  try {
    if (driverOf(bdf) !== null) writeFileSync(join(PCI_DEVICES, bdf, 'driver/unbind'), bdf);
    writeFileSync(join(PCI_DEVICES, bdf, 'driver_override'), 'vfio-pci');
    writeFileSync('/sys/bus/pci/drivers_probe', bdf);
  } catch (err) {
    return `binding ${bdf} to vfio-pci failed: ${(err as Error).message}`;
  }
  return driverOf(bdf) === 'vfio-pci' ? null : `${bdf} did not bind to vfio-pci (driver: ${driverOf(bdf) ?? 'none'})`;
}

/** QEMU's `edu` teaching device: a PCI function with DMA, bound to vfio-pci in the viommu profile. */
export const QEMU_EDU = { vendor: 0x1234, device: 0x11e8 } as const;
