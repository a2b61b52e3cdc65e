// The bounded fuzz of CI in the viommu profile (suites/support/fuzz.ts):
// VFIO container ioctls on the real vfio-pci device, through a real type1
// container and iommufd's compat, and the iommufd steps that need no mock
// domain.
import { describeBoundedFuzz } from '../../support/fuzz.ts';
import { requireDeviceUnderTest, requireVfioCompat, requireVfioContainer } from '../../support/kernel.ts';

describeBoundedFuzz({
  profile: 'viommu',
  fixedSeeds: [1],
  secondsPerSeed: 20,
  requires(ctx) {
    requireVfioContainer(ctx);
    requireVfioCompat(ctx);
    requireDeviceUnderTest(ctx);
  },
});
