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
import { IommuFd } from '../../lib/kernel/index.ts';
import { DivergenceError, LockstepProcess, lockstepStats, ModelSysCore } from '../../lib/lockstep/index.ts';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { ModelProcess } from '../../lib/model/process.ts';
import { ModelSyscalls } from '../../lib/model/syscalls.ts';
import type { IoctlArg, SysCore } from '../../lib/sys/index.ts';

const ENOMEM = 12;

/**
 * A stand-in kernel (the model on its own process) behind a fault injector
 * stand-in: while `failNext` is set, the next ioctl or close reaches its
 * site, which fires (`injected`) and fails it with ENOMEM without doing
 * anything; with `absorb`, the site fires and the call goes on.
 */
function standIn() {
  const kproc = new ModelProcess();
  const ksys = new ModelSyscalls(kproc, {}, 20_000);
  const core = new ModelSysCore(ksys, { unknownFaults: true });
  const inj = { injected: false, failNext: false, absorb: false };
  const kernel: SysCore = {
    backend: core.backend,
    addressOf: (v) => core.addressOf(v),
    mmap: (...a) => core.mmap(...a),
    munmap: (...a) => core.munmap(...a),
    read: (fd, b) => core.read(fd, b),
    write: (fd, b) => core.write(fd, b),
    poll: (fd, e, t) => core.poll(fd, e, t),
    open: (p, f) => core.open(p, f),
    close: (fd) => {
      const r = core.close(fd);
      if (inj.failNext) {
        inj.failNext = false;
        inj.injected = true;
        return -ENOMEM;
      }
      return r;
    },
    ioctl: (fd: number, request: number, arg: IoctlArg) => {
      if (inj.failNext) {
        inj.failNext = false;
        inj.injected = true;
        return -ENOMEM;
      }
      if (inj.absorb) {
        inj.absorb = false;
        inj.injected = true;
      }
      return core.ioctl(fd, request, arg);
    },
  };
  const proc = new LockstepProcess('lockstep', {}, { kernel, readAccounting: () => ({ pin: kproc.mmPinnedVm, lck: kproc.mmLockedVm }) });
  proc.model.credentials = { ...kproc.credentials };
  proc.model.memlockLimit = kproc.memlockLimit;
  return { proc, inj, fd: IommuFd.open(proc.sys).iommufd! };
}

describe('lockstep under fault injection', () => {
  preserveLockstepStats();
  // The session reads its limits and capabilities, and addresses, through the addon.
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  it('does not run a call that failed by injection on the model, and counts it', () => {
    const { proc, inj, fd } = standIn();
    const before = lockstepStats().reasons['failed by fault injection'] ?? 0;
    inj.failNext = true;
    const r = proc.withFaultInjection(inj, () => fd.ioasAlloc());
    expect(r.errno).to.equal(ENOMEM);
    expect(lockstepStats().reasons['failed by fault injection']).to.equal(before + 1);
    expect(proc.history().at(-1)?.injected).to.equal(true);
    // The model did not make the IOAS: the next one gets ID 1 on both.
    expect(fd.ioasAlloc()).to.deep.include({ errno: 0, ioasId: 1 });
  });

  it('compares a call that succeeded although its site fired', () => {
    const { proc, inj, fd } = standIn();
    inj.absorb = true;
    expect(proc.withFaultInjection(inj, () => fd.ioasAlloc()).errno).to.equal(0);
    // ... and a model that then differs is caught.
    proc.modelSys.iommufdTable = proc.modelSys.iommufdTable.with('IOMMU_IOAS_ALLOC', { execute: () => -22 });
    inj.absorb = true;
    expect(() => proc.withFaultInjection(inj, () => fd.ioasAlloc())).to.throw(DivergenceError, /IOMMU_IOAS_ALLOC/);
  });

  it('still compares calls that fail without the site firing, and calls after it fired', () => {
    const { proc, inj, fd } = standIn();
    proc.modelSys.iommufdTable = proc.modelSys.iommufdTable.with('IOMMU_IOAS_UNMAP', { execute: () => -22 });
    expect(() => proc.withFaultInjection(inj, () => fd.ioasUnmap({ ioasId: 1, iova: 0, length: 4096 }))).to.throw(DivergenceError);
    inj.injected = true; // fired in an earlier call
    expect(() => proc.withFaultInjection(inj, () => fd.ioasUnmap({ ioasId: 1, iova: 0, length: 4096 }))).to.throw(DivergenceError);
  });

  it('closes on the model whatever close() returned', () => {
    const { proc, inj, fd } = standIn();
    const access = fd.testCreateAccess({ ioasId: fd.ioasAlloc().ioasId });
    const modelFd = proc.fdMap.get(access.accessFd)!;
    expect(proc.modelSys.file(modelFd)?.kind).to.equal('access');
    inj.failNext = true;
    proc.withFaultInjection(inj, () => fd.closeAccess(access.accessFd));
    expect(proc.modelSys.file(modelFd)).to.equal(undefined);
  });

  it('watches the injector only inside the body', () => {
    const { proc, inj, fd } = standIn();
    expect(() => proc.withFaultInjection(inj, () => {
      throw new Error('body failed');
    })).to.throw('body failed');
    // Outside withFaultInjection a failure is a failure: compared, and here a divergence.
    inj.failNext = true;
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
