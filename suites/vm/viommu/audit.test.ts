// The audit (issue #6 item 2) in the viommu profile: every catalogue scenario on
// (a) a real type1 container and (b) iommufd's compat on /dev/iommu, both with
// the device's group, and (c) native iommufd with the same device through
// its cdev (issue 14; a scenario without a native equivalent says why), each
// on the kernel and, separately, on the model of
// that backend (lib/audit/targets.ts says why separately). A test passes when
// the model predicted the kernel step for step; differences BETWEEN backends
// are not failures here: the audit report judges them against
// fixtures/audit/known-differences.json. The device is the one
// IOMMUFD_CONFORMANCE_DEVICE names, else QEMU's edu (lib/audit/device-half.ts).
import { DEVICE_BACKENDS, deviceBackendWhyNot, deviceHalfFactory, prepareDeviceHalf } from '../../../lib/audit/device-half.ts';
import type { DeviceEnvironment } from '../../../lib/audit/targets.ts';
import { auditSuite } from '../../support/audit.ts';

let env: DeviceEnvironment | null = null;

auditSuite({
  profile: 'viommu',
  backends: DEVICE_BACKENDS,
  whyNot() {
    const prepared = prepareDeviceHalf();
    if ('why' in prepared) return prepared.why;
    env = prepared.env;
    return null;
  },
  whyNotBackend: (backend) => deviceBackendWhyNot(backend, env!),
  factory: (backend, mem) => deviceHalfFactory(backend, env!, mem),
});
