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

/**
 * Binds the device to vfio-pci, then reads its IOMMU group. In that order: with an ACPI VIOT table
 * (virtio-iommu) the kernel sets a device's IOMMU up only when a driver binds to it (drivers/base/dd.c
 * really_probe → pci_dma_configure → acpi_dma_configure → acpi_iommu_configure_id → viot_iommu_configure,
 * drivers/acpi/scan.c), so a device left without a driver at boot has no group until then. vfio-pci's
 * probe needs one (drivers/vfio/group.c vfio_group_find_or_alloc: EINVAL without a group, noiommu aside),
 * so a device no IOMMU covers fails to bind, and the reason says so.
 */
export function bindVfioPciGroup(bdf: string): { groupId: number; why?: undefined } | { why: string } {
  const err = bindVfioPci(bdf);
  const groupId = iommuGroupOf(bdf);
  if (err) return { why: groupId === null ? `${bdf} has no IOMMU group, even after probing vfio-pci (no IOMMU covers it): ${err}` : err };
  if (groupId === null) return { why: `${bdf} is bound to vfio-pci but has no IOMMU group (noiommu mode?)` };
  return { groupId };
}

/** QEMU's `edu` teaching device: a PCI function with DMA, bound to vfio-pci in the viommu profile. */
export const QEMU_EDU = { vendor: 0x1234, device: 0x11e8 } as const;
