// Lockstep catches a wrong model: the real model with one errno rule flipped
// (IOMMU_IOAS_UNMAP of nothing: the kernel says ENOENT, the flipped model
// EINVAL) runs beside the real kernel, and the first call that reaches the
// rule fails with a report naming the operation and both values.
import { expect } from 'chai';
import { IommuFd } from '../../../lib/kernel/index.ts';
import { DivergenceError } from '../../../lib/lockstep/index.ts';
import { IommufdModel } from '../../../lib/model/iommufd.ts';
import { requireMockDomain } from '../../support/kernel.ts';
import { lockstep } from '../../support/lockstep.ts';

const ENOENT = 2;
const EINVAL = 22;

class ModelWithOneRuleFlipped extends IommufdModel {
  override ioasUnmap(args: Parameters<IommufdModel['ioasUnmap']>[0]): ReturnType<IommufdModel['ioasUnmap']> {
    const r = super.ioasUnmap(args);
    return r.errno === ENOENT ? { ...r, errno: EINVAL } : r;
  }
}

describe('lockstep.wrong_model', () => {
  before(function () {
    requireMockDomain(this);
  });

  it('fails the first call where a flipped errno rule differs from the kernel, with a readable report', () => {
    const kernel = IommuFd.open().iommufd!;
    const fd = lockstep().pair('iommufd', kernel, new ModelWithOneRuleFlipped(lockstep().model) as unknown as Record<string, unknown>);
    try {
      const ioas = fd.ioasAlloc();
      expect(ioas.errno).to.equal(0);
      let caught: unknown;
      try {
        fd.ioasUnmap({ ioasId: ioas.ioasId, iova: 0x100000n, length: 0x1000n });
      } catch (err) {
        caught = err;
      }
      expect(caught, 'a DivergenceError').to.be.instanceOf(DivergenceError);
      const report = (caught as DivergenceError).report;
      expect(report).to.match(/lockstep divergence in iommufd\.ioasUnmap/);
      expect(report).to.match(/errno\s+2\s+22/);
      expect(report).to.match(/iommufd\.ioasAlloc\(\) -> kernel \{"errno":0,"ioasId":\d+\} \| model \{"errno":0,"ioasId":\d+\}/);
    } finally {
      kernel.close();
    }
  });
});
