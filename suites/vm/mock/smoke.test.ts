// Smoke test of the mock profile: the path every iommufd suite stands on.
import { expect } from 'chai';
import type { IommuFd } from '../../../lib/kernel/index.ts';
import { MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE, type Mapping } from '../../../lib/sys/index.ts';
import * as U from '../../../lib/uapi/index.ts';
import { requireMockDomain } from '../../support/kernel.ts';
import { lockstep } from '../../support/lockstep.ts';

const BUFFER_SIZE = 2 * 1024 * 1024;
const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;

describe('smoke.mock', () => {
  let fd: IommuFd;
  let buffer: Mapping;

  before(function () {
    requireMockDomain(this);
    buffer = lockstep().mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  });
  beforeEach(() => {
    fd = lockstep().openIommufd();
  });
  afterEach(() => fd?.close());
  after(() => {
    if (buffer) lockstep().munmap(buffer);
  });

  it('maps a buffer into a mock domain, checks the mapping, and unmaps it', () => {
    const ioas = fd.ioasAlloc();
    expect(ioas.errno).to.equal(0);
    expect(ioas.ioasId).to.be.greaterThan(0);

    const mock = fd.testMockDomain({ ptId: ioas.ioasId });
    expect(mock.errno).to.equal(0);

    const ranges = fd.ioasIovaRanges({ ioasId: ioas.ioasId });
    expect(ranges.errno).to.equal(0);
    expect(ranges.ranges).to.deep.equal([{ start: BigInt(U.MOCK_APERTURE_START), last: BigInt(U.MOCK_APERTURE_LAST) }]);
    expect(ranges.alignment).to.equal(BigInt(U.MOCK_PAGE_SIZE));

    const map = fd.ioasMap({ ioasId: ioas.ioasId, flags: RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, userVa: buffer.address, length: BUFFER_SIZE, iova: U.MOCK_APERTURE_START });
    expect(map.errno).to.equal(0);
    expect(map.iova).to.equal(BigInt(U.MOCK_APERTURE_START));

    expect(fd.testCheckMap({ hwptId: mock.hwptId, iova: U.MOCK_APERTURE_START, length: BUFFER_SIZE, uptr: buffer.address }).errno).to.equal(0);
    // The same check against the wrong user address must fail: the check is real.
    expect(fd.testCheckMap({ hwptId: mock.hwptId, iova: U.MOCK_APERTURE_START, length: 4096, uptr: buffer.address + 4096n }).errno).to.equal(22);

    const unmap = fd.ioasUnmap({ ioasId: ioas.ioasId, iova: U.MOCK_APERTURE_START, length: BUFFER_SIZE });
    expect(unmap.errno).to.equal(0);
    expect(unmap.length).to.equal(BigInt(BUFFER_SIZE));
    // Nothing left to unmap.
    expect(fd.ioasUnmap({ ioasId: ioas.ioasId, iova: U.MOCK_APERTURE_START, length: BUFFER_SIZE }).errno).to.equal(2);

    expect(fd.destroy(mock.stdevId).errno).to.equal(0);
    expect(fd.destroy(ioas.ioasId).errno).to.equal(0);
  });
});
