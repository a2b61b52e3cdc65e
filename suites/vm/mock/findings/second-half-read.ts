// KF-0003's child (suites/vm/mock/findings.test.ts runs it with tsx and a
// timeout): the read of the second item of a dirty two-item leaf, on a
// /dev/iommu of its own. Prints a line before the read and the result as
// JSON after it, if it returns.
import { IommuFd } from '../../../../lib/kernel/index.ts';
import { contigLeafDirty } from '../../../../lib/kernel/dirty-leaf.ts';
import { sys } from '../../../../lib/sys/index.ts';

const { iommufd, errno } = IommuFd.open();
if (!iommufd) throw new Error(`/dev/iommu: errno ${errno}`);
const ioas = iommufd.ioasAlloc();
const mock = iommufd.testMockDomain({ ptId: ioas.ioasId });
if (mock.errno) throw new Error(`IOMMU_TEST_OP_MOCK_DOMAIN: errno ${mock.errno}`);
console.log('reading the second half');
const seen = contigLeafDirty(iommufd, sys(), mock.idevId, { readSecondHalf: true });
if (!seen?.fromSecondHalf) throw new Error('the dirty-tracking steps failed');
console.log(JSON.stringify(seen.fromSecondHalf));
iommufd.close();
