// The audit (issue #6 item 2) in the mock profile: every catalogue scenario on
// (c) iommufd's VFIO compat on /dev/iommu with a compat IOAS and a selftest mock
// domain, on the kernel and, separately, on the model. A test passes when the
// model predicted the kernel step for step; differences from type1 are judged
// by the audit report, not here. after() writes audit-raw.json into the
// profile's results folder.
import { AuditRawCollector, runScenario, type BackendFactory } from '../../../lib/audit/run.ts';
import { CATALOGUE } from '../../../lib/audit/scenarios.ts';
import { freeAuditMemory, kernelMockTarget, makeAuditMemory, modelMockTarget, type AuditMemory } from '../../../lib/audit/targets.ts';
import { isRoot, kernelFeatures } from '../../../lib/kernel/index.ts';
import { skipBecause } from '../../support/skip.ts';

const collector = new AuditRawCollector('mock', ['compat-mock']);

describe('audit', () => {
  let mem: AuditMemory | null = null;

  function whyNot(): string | null {
    if (!isRoot()) return 'not root (/dev/iommu needs root)';
    const f = kernelFeatures();
    if (!f.iommufd) return `no /dev/iommu: ${f.iommufdError ?? 'unknown'}`;
    if (!f.ioctls.IOMMU_TEST_CMD) return 'kernel lacks IOMMU_TEST_CMD (CONFIG_IOMMUFD_TEST)';
    if (!f.mockDomain) return `IOMMU_TEST_OP_MOCK_DOMAIN fails with errno ${f.mockDomainErrno} (an active hardware IOMMU driver owns the mock device: see README)`;
    if (!f.vfio.compatOnIommufd) return 'kernel lacks the VFIO container compat on /dev/iommu (CONFIG_IOMMUFD_VFIO_CONTAINER)';
    return null;
  }

  before(function () {
    const reason = whyNot();
    if (reason) {
      collector.unavailable('compat-mock', reason);
      skipBecause(this, reason);
    }
    mem = makeAuditMemory();
  });

  after(() => {
    if (mem) freeAuditMemory(mem);
    const out = process.env.IOMMUFD_CONFORMANCE_OUT;
    if (out) collector.write(out);
  });

  describe('compat-mock', () => {
    let factory: BackendFactory;
    before(() => {
      collector.available('compat-mock');
      factory = { backend: 'compat-mock', kernel: () => kernelMockTarget(), model: () => modelMockTarget(mem!) };
    });

    for (const s of CATALOGUE) {
      it(s.id, function () {
        const run = runScenario(s, factory, mem!);
        collector.add(s.id, 'compat-mock', run.result);
        if (run.failure) throw new Error(run.failure);
        if (run.result.status === 'not-applicable') skipBecause(this, run.result.reason);
      });
    }
  });
});
