// The bounded fuzz of CI in the viommu profile (suites/support/fuzz.ts):
// VFIO container ioctls on the real vfio-pci device, through a real type1
// container and iommufd's compat, and the iommufd steps that need no mock
// domain.
import { bindVfioPciGroup, findPciDevices, QEMU_EDU } from '../../../lib/kernel/index.ts';
import { describeBoundedFuzz } from '../../support/fuzz.ts';
import { requireVfioCompat, requireVfioContainer } from '../../support/kernel.ts';
import { skipBecause } from '../../support/skip.ts';

describeBoundedFuzz({
  profile: 'viommu',
  fixedSeeds: [1],
  secondsPerSeed: 20,
  requires(ctx) {
    requireVfioContainer(ctx);
    requireVfioCompat(ctx);
    const [edu] = findPciDevices(QEMU_EDU.vendor, QEMU_EDU.device);
    if (!edu) skipBecause(ctx, 'no QEMU edu device (PCI 1234:11e8): run in the viommu profile');
    const bound = bindVfioPciGroup(edu.bdf);
    if (bound.why !== undefined) skipBecause(ctx, bound.why);
  },
});
