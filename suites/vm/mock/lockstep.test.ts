// Lockstep against the real kernel catches a wrong model, at the system-call
// boundary: (a) raw malformed structs (a short one, a longer one with a
// non-zero tail) are compared with the model, and a model with one size
// rule flipped is caught on the first raw call that reaches it; (b) a call
// the model cannot answer fails; (c) a kernel that pins one page more than
// the model is caught on the very call that did it. Each test has a session
// of its own, so the run's session is left as it was.
import { expect } from 'chai';
import { IommuFd } from '../../../lib/kernel/index.ts';
import { coreSys } from '../../../lib/sys/index.ts';
import { DivergenceError, LockstepProcess, lockstepStats, UncheckedCallError } from '../../../lib/lockstep/index.ts';
import { modelFactories } from '../../../lib/lockstep/models.ts';
import { IommufdModel } from '../../../lib/model/iommufd.ts';
import { IOMMUFD_IOCTL_TABLE } from '../../../lib/model/iommufd/main.ts';
import { MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../lib/sys/index.ts';
import * as U from '../../../lib/uapi/index.ts';
import { requireMockDomain } from '../../support/kernel.ts';
import { preserveLockstepStats } from '../../support/lockstep-stats.ts';

const EINVAL = 22;
const E2BIG = 7;

/** After a divergence the session's model no longer mirrors the kernel: its fd is closed on the kernel alone. */
function closeOnKernel(fd: IommuFd): void {
  if (!fd.closed) coreSys().close(fd.fd);
}

function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (e) {
    return e;
  }
  return null;
}

describe('lockstep.wrong_model', () => {
  preserveLockstepStats();
  before(function () {
    requireMockDomain(this);
  });

  it('compares raw malformed structs with the model: short is EINVAL, a non-zero tail E2BIG, a zero tail accepted', () => {
    const session = new LockstepProcess('lockstep', modelFactories());
    const fd = IommuFd.open(session.sys).iommufd!;
    try {
      const before = lockstepStats().ops.IOMMU_IOAS_ALLOC?.checked ?? 0;
      expect(fd.ioctl(U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc.encode({}, { length: U.MIN_SIZE.IOMMU_IOAS_ALLOC - 1 })).errno).to.equal(EINVAL);
      expect(fd.ioctl(U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc.encode({}, { tail: [0, 0, 0, 1] })).errno).to.equal(E2BIG);
      const long = U.iommu_ioas_alloc.encode({}, { tail: [0, 0, 0, 0] });
      expect(fd.ioctl(U.IOMMU_IOAS_ALLOC, long).errno).to.equal(0);
      expect(lockstepStats().ops.IOMMU_IOAS_ALLOC!.checked, 'each raw call checked against the model').to.equal(before + 3);
    } finally {
      fd.close();
    }
  });

  it('catches a model with one size rule flipped on the first raw call that reaches it', () => {
    const session = new LockstepProcess('lockstep', modelFactories());
    // The model takes IOMMU_IOAS_MAP's minimum size as offsetofend(length), where main.c has offsetofend(iova).
    session.modelSys.iommufdTable = IOMMUFD_IOCTL_TABLE.with('IOMMU_IOAS_MAP', { minSize: U.iommu_ioas_map.offsetEnd('length') });
    const fd = IommuFd.open(session.sys).iommufd!;
    try {
      const ioas = fd.ioasAlloc();
      expect(ioas.errno).to.equal(0);
      const short = U.iommu_ioas_map.encode({ ioas_id: ioas.ioasId, flags: U.IOMMU_IOAS_MAP_READABLE, length: 4096 }, { length: U.iommu_ioas_map.offsetEnd('length') });
      const err = caught(() => fd.ioctl(U.IOMMU_IOAS_MAP, short));
      expect(err, 'a DivergenceError').to.be.instanceOf(DivergenceError);
      const report = (err as DivergenceError).report;
      expect(report).to.match(/lockstep divergence in IOMMU_IOAS_MAP on fd \d+ with \{"size":32,/);
      expect(report).to.match(/return\s+"EINVAL \(22\)"/);
      expect(report).to.match(/IOMMU_IOAS_ALLOC on fd \d+ \{"size":12,"flags":0,"out_ioas_id":0\} -> kernel 0 \| model 0/);
    } finally {
      closeOnKernel(fd);
    }
  });

  it('fails a call the model cannot answer (a user pointer it was not told about)', () => {
    const session = new LockstepProcess('lockstep', modelFactories());
    const fd = IommuFd.open(session.sys).iommufd!;
    const elsewhere = session.userBuffer(4096);
    try {
      const ioas = fd.ioasAlloc();
      // allowed_iovas points into memory made outside the session's sight (no addressOf, no session mapping).
      session.mappings.delete(elsewhere.mapping);
      const cmd = U.iommu_ioas_iova_ranges.encode({ ioas_id: ioas.ioasId, num_iovas: 1, allowed_iovas: elsewhere.address });
      expect(caught(() => fd.ioctl(U.IOMMU_IOAS_IOVA_RANGES, cmd))).to.be.instanceOf(UncheckedCallError);
    } finally {
      closeOnKernel(fd);
      session.mappings.add(elsewhere.mapping);
      session.munmap(elsewhere.mapping);
    }
  });

  it('catches a kernel that pins one page more than the model on the very call that did it', () => {
    class OnePageShort extends IommufdModel {
      override ioasMap(args: Parameters<IommufdModel['ioasMap']>[0]): ReturnType<IommufdModel['ioasMap']> {
        const r = super.ioasMap(args);
        if (r.errno === 0) this.process.mmPinnedVm -= 1n;
        return r;
      }
    }
    const session = new LockstepProcess('lockstep', { ...modelFactories(), iommufd: (p) => new OnePageShort(p) });
    const buffer = session.mmap(16 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    const fd = IommuFd.open(session.sys).iommufd!;
    try {
      const ioas = fd.ioasAlloc();
      expect(fd.testMockDomain({ ptId: ioas.ioasId }).errno).to.equal(0);
      const map = () => fd.ioasMap({ ioasId: ioas.ioasId, flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, userVa: buffer.address, length: 16 * 4096 });
      const err = caught(map);
      expect(err, 'a DivergenceError').to.be.instanceOf(DivergenceError);
      expect((err as DivergenceError).op).to.match(/^IOMMU_IOAS_MAP on fd/);
      expect((err as DivergenceError).report).to.match(/VmPin \(pages, since the session began\)\s+(\d+)\s+(\d+)/);
      const [, k, m] = /VmPin \(pages, since the session began\)\s+(\d+)\s+(\d+)/.exec((err as DivergenceError).report)!;
      expect(Number(k) - Number(m)).to.equal(1);
    } finally {
      closeOnKernel(fd);
      session.munmap(buffer);
    }
  });
});
