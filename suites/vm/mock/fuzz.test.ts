// The bounded fuzz of CI in the mock profile (suites/support/fuzz.ts): every
// iommufd step, on IOMMU_TEST_CMD mock devices, with fault queues.
import { requireMockDomain } from '../../support/kernel.ts';
import { describeBoundedFuzz } from '../../support/fuzz.ts';

describeBoundedFuzz({ profile: 'mock', fixedSeeds: [1, 2], secondsPerSeed: 25, requires: (ctx) => requireMockDomain(ctx) });
