// Lockstep under fault injection (LockstepProcess.withFaultInjection), on
// stand-ins for the kernel and the model: a call that failed because its
// nth fault site fired is not run on the model; one that succeeded anyway is,
// with the kernel's result at hand (IommufdModel.absorbedFault); close-like
// calls always are. And the one kernel fault site whose failure changes a
// successful result: the auto-domain attach of iommufd_device_auto_get_domain.
import { expect } from 'chai';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';
import { preserveLockstepStats } from '../support/lockstep-stats.ts';
import { DivergenceError, LockstepProcess, lockstepStats } from '../../lib/lockstep/index.ts';
import { IommufdModel } from '../../lib/model/iommufd.ts';

const ENOMEM = 12;

/** A stand-in for FailNthInjector: the fake kernel calls set `injected` where their site fires. */
function injector() {
  return { injected: false };
}

describe('lockstep under fault injection', () => {
  preserveLockstepStats();
  // The process reads its limits and capabilities through the addon.
  let proc: LockstepProcess;
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
    proc = new LockstepProcess('lockstep', { iommufd: () => ({}) });
  });

  it('does not run a call that failed by injection on the model, and counts it', () => {
    const inj = injector();
    let modelCalls = 0;
    const fd = proc.pair(
      'iommufd',
      {
        ioasAlloc: () => {
          inj.injected = true;
          return { errno: ENOMEM, ioasId: 0 };
        },
      },
      {
        ioasAlloc: () => {
          modelCalls++;
          return { errno: 0, ioasId: 1 };
        },
      },
    );
    const before = lockstepStats().ops['iommufd.ioasAlloc [failed by fault injection]']?.unchecked ?? 0;
    const r = proc.withFaultInjection(inj, () => fd.ioasAlloc());
    expect(r.errno).to.equal(ENOMEM);
    expect(modelCalls).to.equal(0);
    expect(lockstepStats().ops['iommufd.ioasAlloc [failed by fault injection]']?.unchecked).to.equal(before + 1);
    expect(proc.history.at(-1)?.injected).to.equal(true);
  });

  it('compares a call that succeeded although its site fired, telling the model the kernel result', () => {
    const inj = injector();
    const seen: unknown[] = [];
    const model = {
      absorbedFault: null as { kernel: unknown } | null,
      ioasAlloc() {
        seen.push(this.absorbedFault);
        return { errno: 0, ioasId: 2 };
      },
    };
    const fd = proc.pair(
      'iommufd',
      {
        ioasAlloc: () => {
          inj.injected = true;
          return { errno: 0, ioasId: 1 };
        },
      },
      model,
    );
    expect(() => proc.withFaultInjection(inj, () => fd.ioasAlloc())).to.throw(DivergenceError, /ioasId\s+1\s+2/);
    expect(seen).to.deep.equal([{ kernel: { errno: 0, ioasId: 1 } }]);
    expect(model.absorbedFault).to.equal(null);
  });

  it('still compares calls that fail without the site firing, and calls after it fired', () => {
    const inj = injector();
    const fd = proc.pair('iommufd', { ioasUnmap: () => ({ errno: 2 }) }, { ioasUnmap: () => ({ errno: 22 }) });
    expect(() => proc.withFaultInjection(inj, () => fd.ioasUnmap())).to.throw(DivergenceError);
    inj.injected = true; // fired in an earlier call
    expect(() => proc.withFaultInjection(inj, () => fd.ioasUnmap())).to.throw(DivergenceError);
  });

  it('applies close-like calls to the model whatever close() returned', () => {
    const inj = injector();
    let modelClosed = false;
    const fd = proc.pair(
      'iommufd',
      {
        closeAccess: (_fd: number) => {
          inj.injected = true;
          return { errno: ENOMEM };
        },
      },
      {
        closeAccess: () => {
          modelClosed = true;
          return { errno: ENOMEM };
        },
      },
    );
    proc.withFaultInjection(inj, () => fd.closeAccess(5));
    expect(modelClosed).to.equal(true);
  });

  it('watches the injector only inside the body', () => {
    const inj = injector();
    const fd = proc.pair(
      'iommufd',
      {
        ioasAlloc: () => {
          inj.injected = true;
          return { errno: ENOMEM, ioasId: 0 };
        },
      },
      { ioasAlloc: () => ({ errno: 0, ioasId: 1 }) },
    );
    expect(() => proc.withFaultInjection(inj, () => {
      throw new Error('body failed');
    })).to.throw('body failed');
    // Outside withFaultInjection a failure is a failure: compared, and here a divergence.
    expect(() => fd.ioasAlloc()).to.throw(DivergenceError);
  });
});

describe('IommufdModel under an absorbed fault (iommufd_device_auto_get_domain)', () => {
  // Two mock devices on one IOAS: the second joins the first one's auto
  // domain, unless its attach failed with the injected -EINVAL of
  // iopt_table_enforce_dev_resv_regions, which the kernel takes for
  // "incompatible" and answers with a new auto domain.
  function firstDevice() {
    const m = new IommufdModel();
    const ioasId = m.ioasAlloc().ioasId;
    const first = m.testMockDomain({ ptId: ioasId });
    expect(first.errno).to.equal(0);
    return { m, ioasId, hwptId: first.hwptId };
  }

  it('joins the existing auto domain normally', () => {
    const { m, ioasId, hwptId } = firstDevice();
    expect(m.testMockDomain({ ptId: ioasId }).hwptId).to.equal(hwptId);
  });

  it('takes a new auto domain when the kernel reports one', () => {
    const { m, ioasId, hwptId } = firstDevice();
    m.absorbedFault = { kernel: { errno: 0, stdevId: 5, hwptId: 7, idevId: 6 } };
    const second = m.testMockDomain({ ptId: ioasId });
    m.absorbedFault = null;
    expect(second).to.deep.equal({ errno: 0, stdevId: 5, hwptId: 7, idevId: 6 });
    expect(second.hwptId).to.not.equal(hwptId);
  });

  it('joins the existing one when the kernel did too (the site was elsewhere)', () => {
    const { m, ioasId, hwptId } = firstDevice();
    m.absorbedFault = { kernel: { errno: 0, stdevId: 5, hwptId, idevId: 6 } };
    expect(m.testMockDomain({ ptId: ioasId }).hwptId).to.equal(hwptId);
  });
});
