// The lockstep machinery on stand-ins for the kernel and the model: a
// difference in any field fails with a report that names the operation, both
// values field by field and the operations that led there; an operation the
// model lacks is counted as unchecked.
import { expect } from 'chai';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';
import { preserveLockstepStats } from '../support/lockstep-stats.ts';
import { DivergenceError, differences, LockstepProcess, lockstepStats, describeStats } from '../../lib/lockstep/index.ts';

function fakeKernel() {
  return {
    ioasAlloc: () => ({ errno: 0, ioasId: 1 }),
    ioasUnmap: (a: { iova: bigint; length: bigint }) => ({ errno: 2, length: a.length }),
    ioasIovaRanges: () => ({ errno: 0, numIovas: 1, alignment: 1n, ranges: [{ start: 0n, last: 0xffff_ffff_ffff_ffffn }] }),
    testCreateAccess: () => ({ errno: 0, accessFd: 17 }),
    testAccessRw: (a: { accessFd: number }) => ({ errno: a.accessFd === 17 ? 0 : 9 }),
    hwptInvalidate: () => ({ errno: 0, entryNum: 1 }),
  };
}

function honestModel() {
  return {
    ioasAlloc: () => ({ errno: 0, ioasId: 1 }),
    ioasUnmap: (a: { iova: bigint; length: bigint }) => ({ errno: 2, length: a.length }),
    ioasIovaRanges: () => ({ errno: 0, numIovas: 1, alignment: 1n, ranges: [{ start: 0n, last: 0xffff_ffff_ffff_ffffn }] }),
    testCreateAccess: () => ({ errno: 0, accessFd: 3 }),
    // The model sees its own fd number: lockstep must translate 17 -> 3.
    testAccessRw: (a: { accessFd: number }) => ({ errno: a.accessFd === 3 ? 0 : 9 }),
  };
}

describe('lockstep', () => {
  preserveLockstepStats();
  // The process reads its limits and capabilities through the addon.
  let proc: LockstepProcess;
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
    proc = new LockstepProcess('lockstep', { iommufd: () => ({}) });
  });

  it('passes when every field agrees, and translates access fds', () => {
    const fd = proc.pair('iommufd', fakeKernel(), honestModel());
    expect(fd.ioasAlloc()).to.deep.equal({ errno: 0, ioasId: 1 });
    expect(fd.ioasUnmap({ iova: 0x1000n, length: 0x1000n }).errno).to.equal(2);
    const access = fd.testCreateAccess();
    expect(fd.testAccessRw({ accessFd: access.accessFd }).errno).to.equal(0);
  });

  it('catches a model rule with one errno flipped, with a readable report', () => {
    const wrong = honestModel();
    wrong.ioasUnmap = (a) => ({ errno: 22, length: a.length }); // EINVAL where the kernel says ENOENT
    const fd = proc.pair('iommufd', fakeKernel(), wrong);
    fd.ioasAlloc();
    let caught: unknown;
    try {
      fd.ioasUnmap({ iova: 0x1000n, length: 0x2000n });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(DivergenceError);
    const report = (caught as DivergenceError).report;
    expect(report).to.match(/lockstep divergence in iommufd\.ioasUnmap\(\{"iova":"4096","length":"8192"\}\)/);
    expect(report).to.match(/errno\s+2\s+22/);
    expect(report).to.match(/operations that led here[\s\S]*iommufd\.ioasAlloc\(\) -> kernel \{"errno":0,"ioasId":1\}/);
  });

  it('compares nested fields and names their paths', () => {
    expect(differences({ errno: 0, ranges: [{ start: 1n, last: 2n }] }, { errno: 0, ranges: [{ start: 1n, last: 3n }] })).to.deep.equal([
      { path: 'ranges[0].last', kernel: 2n, model: 3n },
    ]);
    expect(differences({ errno: 0, ranges: [] }, { errno: 0, ranges: [{ start: 1n, last: 1n }] })[0]!.path).to.equal('ranges.length');
    expect(differences({ errno: 0, accessFd: 5 }, { errno: 0, accessFd: 9 }, ['accessFd'])).to.deep.equal([]);
    expect(differences({ n: 5 }, { n: 5n })).to.deep.equal([]);
  });

  it('runs an operation the model lacks on the kernel alone and counts it unchecked', () => {
    const before = lockstepStats().ops['iommufd.hwptInvalidate']?.unchecked ?? 0;
    const fd = proc.pair('iommufd', fakeKernel(), honestModel());
    expect(fd.hwptInvalidate().entryNum).to.equal(1);
    expect(lockstepStats().ops['iommufd.hwptInvalidate']!.unchecked).to.equal(before + 1);
    expect(describeStats()).to.match(/operations checked against the model \(unchecked: .*iommufd\.hwptInvalidate \d+/);
  });

  it('labels model-only runs as such', () => {
    new LockstepProcess('model', null);
    expect(describeStats()).to.match(/MODEL ONLY \(no kernel: not a conformance result\)/);
  });
});
