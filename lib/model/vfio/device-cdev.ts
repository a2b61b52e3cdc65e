// A VFIO device opened through its cdev (/dev/vfio/devices/vfioN), the way a
// VMM uses native iommufd: drivers/vfio/device_cdev.c (BIND_IOMMUFD,
// ATTACH/DETACH_IOMMUFD_PT) over vfio/iommufd.c's physical-device ops, and
// vfio_main.c:vfio_device_fops_unl_ioctl's gate (nothing but BIND before the
// device is bound). One device file, one real device (vfio-pci).
import { EINVAL } from '../errno.ts';
import type { HardwareDomainSpec } from '../mock.ts';
import type { IommufdModel } from '../iommufd.ts';

/** What iommufd_device_bind checks of the platform: iommu_group_has_isolated_msi and iommufd.allow_unsafe_interrupts. */
export interface CdevMsiPlatform {
  isolated: boolean;
  allowUnsafeInterrupts: boolean;
}

export class VfioDeviceCdevModel {
  #ctx: IommufdModel | null = null;
  #devId = 0;

  constructor(
    readonly spec: HardwareDomainSpec,
    readonly msi: CdevMsiPlatform,
  ) {}

  /** df->access_granted */
  get bound(): boolean {
    return this.#ctx !== null;
  }

  /** device_cdev.c:vfio_df_ioctl_bind_iommufd (flags 0): one device cannot be bound twice (EINVAL). */
  bindIommufd(ctx: IommufdModel, flags = 0): { errno: number; devId: number } {
    if (flags) return { errno: EINVAL, devId: 0 };
    if (this.#ctx) return { errno: EINVAL, devId: 0 };
    const r = ctx.bindHardwareDevice(this.spec, this.msi);
    if (r.errno) return { errno: r.errno, devId: 0 };
    this.#ctx = ctx;
    this.#devId = r.devId;
    return { errno: 0, devId: r.devId };
  }

  /** device_cdev.c:vfio_df_ioctl_attach_pt; before BIND, vfio_device_fops_unl_ioctl says EINVAL. */
  attachPt(ptId: number, flags = 0): { errno: number; ptId: number } {
    if (!this.#ctx || flags) return { errno: EINVAL, ptId };
    return this.#ctx.hardwareDeviceAttach(this.#devId, ptId);
  }

  /** device_cdev.c:vfio_df_ioctl_detach_pt: detach_ioas does nothing when not attached. */
  detachPt(flags = 0): { errno: number } {
    if (!this.#ctx || flags) return { errno: EINVAL };
    return this.#ctx.hardwareDeviceDetach(this.#devId);
  }

  /** close() of the device fd: device_cdev.c:vfio_df_unbind_iommufd. */
  close(): void {
    if (!this.#ctx) return;
    this.#ctx.unbindHardwareDevice(this.#devId);
    this.#ctx = null;
    this.#devId = 0;
  }
}
