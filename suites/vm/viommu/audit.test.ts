// The audit (issue #6 item 2) in the viommu profile: every catalogue scenario on
// (a) a real type1 container and (b) iommufd's compat on /dev/iommu, both with
// the edu device's group, and (c) native iommufd with the same device through
// its cdev (issue 14; a scenario without a native equivalent says why), each
// on the kernel and, separately, on the model of
// that backend (lib/audit/targets.ts says why separately). A test passes when
// the model predicted the kernel step for step; differences BETWEEN backends
// are not failures here: the audit report judges them against
// fixtures/audit/known-differences.json.
import { auditPlatform, kernelDeviceTarget, kernelNativeTarget, modelDeviceTarget, modelNativeTarget, msiRefusal, readDeviceEnvironment, type DeviceEnvironment } from '../../../lib/audit/targets.ts';
import { bindVfioPci, findPciDevices, iommuGroupOf, isRoot, kernelFeatures, QEMU_EDU } from '../../../lib/kernel/index.ts';
import { kernelHasIommufd } from '../../../lib/kernel/features.ts';
import { auditSuite } from '../../support/audit.ts';

let env: DeviceEnvironment | null = null;

auditSuite({
  profile: 'viommu',
  backends: ['type1', 'compat-device', 'native'],
  whyNot() {
    if (!isRoot()) return 'not root (/dev/vfio needs root)';
    const f = kernelFeatures();
    if (!f.vfio.container) return 'no VFIO container at /dev/vfio/vfio (CONFIG_VFIO_CONTAINER)';
    const [edu] = findPciDevices(QEMU_EDU.vendor, QEMU_EDU.device);
    if (!edu) return 'no QEMU edu device (PCI 1234:11e8): run in the viommu profile';
    const group = iommuGroupOf(edu.bdf);
    if (group === null) return `${edu.bdf} has no IOMMU group (no vIOMMU)`;
    const err = bindVfioPci(edu.bdf);
    if (err) return err;
    env = readDeviceEnvironment(group, edu.bdf);
    return null;
  },
  whyNotBackend(backend) {
    if (backend === 'type1') return null;
    const f = kernelFeatures();
    if (!f.iommufd) {
      const reason = `no /dev/iommu: ${f.iommufdError ?? 'unknown'}`;
      return kernelHasIommufd() ? reason : { kernelLacks: reason };
    }
    if (backend === 'compat-device' && !f.vfio.compatOnIommufd) return { kernelLacks: 'kernel lacks the VFIO container compat on /dev/iommu (CONFIG_IOMMUFD_VFIO_CONTAINER)' };
    if (backend === 'native' && !env!.cdev) return { kernelLacks: `kernel lacks the VFIO device cdev: no ${`/sys/bus/pci/devices/${env!.bdf}/vfio-dev`} (CONFIG_VFIO_DEVICE_CDEV)` };
    return null;
  },
  // On a platform without isolated MSI (the viommu-noir profiles) a backend whose allow_unsafe_interrupts is
  // off refuses the device: scenarios that need it attached are then not applicable, with the facts, when
  // the model refuses the same setup step with the same errno (lib/audit/run.ts platformRefusal).
  factory: (backend, mem) =>
    backend === 'native'
      ? { backend, kernel: () => kernelNativeTarget(env!), model: () => modelNativeTarget(env!, mem), refusal: () => msiRefusal(backend, env!) }
      : { backend, kernel: () => kernelDeviceTarget(backend, env!), model: () => modelDeviceTarget(backend, env!, mem), refusal: () => msiRefusal(backend, env!) },
  platform: () => auditPlatform(env!),
});
