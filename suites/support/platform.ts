// Whether the running platform lets a backend have the device (the viommu-noir profiles do not): the
// rule of vfio_iommu_type1_attach_group and iommufd_device_bind, from the facts the model reads
// (lib/model/type1-platform.ts: the PCI MSI irq chips of /proc/interrupts, the module parameters),
// never from the ioctls under test. Tests that need the device attached skip with this reason where the
// platform refuses it; the refusal itself is asserted by smoke.viommu, vfio_cdev and the audit's
// platform.msi-isolation scenario.
import { readType1Platform } from '../../lib/model/type1-platform.ts';

/** Why `backend` cannot have group `groupId`'s device on this platform, or null. */
export function deviceRefusal(groupId: number, backend: 'type1' | 'iommufd'): string | null {
  const p = readType1Platform(groupId);
  if (p.interruptRemapping) return null;
  if (backend === 'type1') return p.allowUnsafeInterrupts ? null : 'the platform refuses type1 the device: no isolated MSI (no interrupt remapping) and vfio_iommu_type1.allow_unsafe_interrupts=N (SET_IOMMU is EPERM)';
  return p.iommufdAllowUnsafeInterrupts ? null : 'the platform refuses iommufd the device: no isolated MSI (no interrupt remapping) and iommufd.allow_unsafe_interrupts=N (its bind is EPERM)';
}
