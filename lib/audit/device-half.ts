// The audit's device half: type1, compat-device and native on one vfio-pci
// device. What the viommu guest's audit suite (suites/vm/viommu/audit.test.ts)
// and `audit --host` (lib/cli/audit-host.ts) share: why a backend cannot run,
// and how to make its kernel and model targets. The device is an input: the
// one IOMMUFD_CONFORMANCE_DEVICE names (the user bound it; it is never
// rebound), else QEMU's edu device, which the guest binds to vfio-pci itself.
import type { BackendFactory } from './run.ts';
import { kernelDeviceTarget, kernelNativeTarget, modelDeviceTarget, modelNativeTarget, msiRefusal, readDeviceEnvironment, type AuditMemory, type DeviceEnvironment } from './targets.ts';
import type { BackendId } from './types.ts';
import { deviceUnderTest, vfioDeviceUnderTest, type DeviceChoice } from '../kernel/device-choice.ts';
import { kernelHasIommufd } from '../kernel/features.ts';
import { isRoot, kernelFeatures } from '../kernel/index.ts';

/**
 * Why a backend cannot run: a string for anything that fails the audit (not root, no device), or
 * `{ kernelLacks }` for what the running kernel lacks, probed (no iommufd): the backend is then skipped,
 * which the audit reports and which fails nothing (BackendAvailability.skipped).
 */
export type WhyNot = string | { kernelLacks: string } | null;

export const DEVICE_BACKENDS = ['type1', 'compat-device', 'native'] as const satisfies readonly BackendId[];
export type DeviceBackend = (typeof DEVICE_BACKENDS)[number];

/**
 * The device's environment, or why no backend of the device half can run. A device found as QEMU's edu is
 * bound to vfio-pci here (the guest is ours); a named one must already be bound (the host is the user's).
 */
export function prepareDeviceHalf(choice: DeviceChoice | null = deviceUnderTest()): { env: DeviceEnvironment } | { why: Exclude<WhyNot, null> } {
  if (!isRoot()) return { why: 'not root (/dev/vfio needs root)' };
  const f = kernelFeatures();
  if (!f.vfio.container) return { why: 'no VFIO container at /dev/vfio/vfio (CONFIG_VFIO_CONTAINER)' };
  // Bound first, then its group read: under a VIOT (virtio-iommu) the group appears at driver bind (vfioDeviceUnderTest).
  const device = vfioDeviceUnderTest(choice);
  if ('why' in device) return { why: device.why };
  return { env: readDeviceEnvironment(device.groupId, device.bdf) };
}

/** Why this one backend cannot run on the device when the others can (type1 always can). */
export function deviceBackendWhyNot(backend: DeviceBackend, env: DeviceEnvironment): WhyNot {
  if (backend === 'type1') return null;
  const f = kernelFeatures();
  if (!f.iommufd) {
    const reason = `no /dev/iommu: ${f.iommufdError ?? 'unknown'}`;
    return kernelHasIommufd() ? reason : { kernelLacks: reason };
  }
  if (backend === 'compat-device' && !f.vfio.compatOnIommufd) return { kernelLacks: 'kernel lacks the VFIO container compat on /dev/iommu (CONFIG_IOMMUFD_VFIO_CONTAINER)' };
  if (backend === 'native' && !env.cdev) return { kernelLacks: `kernel lacks the VFIO device cdev: no /sys/bus/pci/devices/${env.bdf}/vfio-dev (CONFIG_VFIO_DEVICE_CDEV)` };
  return null;
}

/**
 * On a platform without isolated MSI (the viommu-noir profiles) a backend whose allow_unsafe_interrupts is off
 * refuses the device: a scenario that needs it attached is then not applicable, with the facts, when the model
 * refuses the same setup step with the same errno (run.ts platformRefusal).
 */
export function deviceHalfFactory(backend: DeviceBackend, env: DeviceEnvironment, mem: AuditMemory): BackendFactory {
  const refusal = () => msiRefusal(backend, env);
  return backend === 'native'
    ? { backend, kernel: () => kernelNativeTarget(env), model: () => modelNativeTarget(env, mem), refusal }
    : { backend, kernel: () => kernelDeviceTarget(backend, env), model: () => modelDeviceTarget(backend, env, mem), refusal };
}
