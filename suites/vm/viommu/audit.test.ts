// The audit (issue #6 item 2) in the viommu profile: every catalogue scenario on
// (a) a real type1 container and (b) iommufd's compat on /dev/iommu, both with
// the edu device's group, each on the kernel and, separately, on the model of
// that backend (lib/audit/targets.ts says why separately). A test passes when
// the model predicted the kernel step for step; differences BETWEEN backends
// are not failures here: the audit report judges them against
// fixtures/audit/known-differences.json. after() writes audit-raw.json into
// the profile's results folder.
import { AuditRawCollector, runScenario, type BackendFactory } from '../../../lib/audit/run.ts';
import { CATALOGUE } from '../../../lib/audit/scenarios.ts';
import {
  freeAuditMemory, kernelDeviceTarget, makeAuditMemory, modelDeviceTarget, readDeviceEnvironment,
  type AuditMemory, type DeviceEnvironment,
} from '../../../lib/audit/targets.ts';
import { bindVfioPci, findPciDevices, iommuGroupOf, isRoot, kernelFeatures, QEMU_EDU } from '../../../lib/kernel/index.ts';
import { skipBecause } from '../../support/skip.ts';

const BACKENDS = ['type1', 'compat-device'] as const;
const collector = new AuditRawCollector('viommu', BACKENDS);

describe('audit', () => {
  let env: DeviceEnvironment | null = null;
  let mem: AuditMemory | null = null;

  /** Why the device backends cannot run here, or null. */
  function whyNot(): string | null {
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
  }

  before(function () {
    const reason = whyNot();
    if (reason) {
      for (const b of BACKENDS) collector.unavailable(b, reason);
      skipBecause(this, reason);
    }
    mem = makeAuditMemory();
  });

  after(() => {
    if (mem) freeAuditMemory(mem);
    const out = process.env.IOMMUFD_CONFORMANCE_OUT;
    if (out) collector.write(out);
  });

  for (const backend of BACKENDS) {
    describe(backend, () => {
      let factory: BackendFactory;
      before(function () {
        if (backend === 'compat-device' && !kernelFeatures().vfio.compatOnIommufd) {
          const reason = 'kernel lacks the VFIO container compat on /dev/iommu (CONFIG_IOMMUFD_VFIO_CONTAINER)';
          collector.unavailable(backend, reason);
          skipBecause(this, reason);
        }
        collector.available(backend);
        factory = { backend, kernel: () => kernelDeviceTarget(backend, env!), model: () => modelDeviceTarget(backend, env!, mem!) };
      });

      for (const s of CATALOGUE) {
        it(s.id, function () {
          const run = runScenario(s, factory, mem!);
          collector.add(s.id, backend, run.result);
          if (run.failure) throw new Error(run.failure);
          if (run.result.status === 'not-applicable') skipBecause(this, run.result.reason);
        });
      }
    });
  }
});
