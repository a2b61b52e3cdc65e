// The audit (issue #6 item 2) in the mock profile: every catalogue scenario on
// (c) iommufd's VFIO compat on /dev/iommu with a compat IOAS and a selftest mock
// domain, on the kernel and, separately, on the model. A test passes when the
// model predicted the kernel step for step; differences from type1 are judged
// by the audit report, not here.
import { kernelMockTarget, modelMockTarget } from '../../../lib/audit/targets.ts';
import { isRoot, kernelFeatures } from '../../../lib/kernel/index.ts';
import { kernelHasIommufd } from '../../../lib/kernel/features.ts';
import { auditSuite } from '../../support/audit.ts';
import { mockDomainUnavailable } from '../../support/kernel.ts';

auditSuite({
  profile: 'mock',
  backends: ['compat-mock'],
  whyNot() {
    if (!isRoot()) return 'not root (/dev/iommu needs root)';
    const f = kernelFeatures();
    if (!f.iommufd) {
      const reason = `no /dev/iommu: ${f.iommufdError ?? 'unknown'}`;
      return kernelHasIommufd() ? reason : { kernelLacks: reason };
    }
    // Throws (fails the suite) when the mock domain fails for no named cause: a kernel bug.
    const noMock = mockDomainUnavailable();
    if (noMock) return noMock;
    if (!f.vfio.compatOnIommufd) return { kernelLacks: 'kernel lacks the VFIO container compat on /dev/iommu (CONFIG_IOMMUFD_VFIO_CONTAINER)' };
    return null;
  },
  factory: (backend, mem) => ({ backend, kernel: () => kernelMockTarget(), model: () => modelMockTarget(mem) }),
});
