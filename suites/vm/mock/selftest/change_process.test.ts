// tools/testing/selftests/iommu/iommufd.c (7.x), FIXTURE(change_process):
// IOMMU_IOAS_CHANGE_PROCESS moves the accounting of a file mapping's pinned
// pages to the calling process, here and from a forked child, under each
// accounting mode, without CAP_IPC_LOCK. In lockstep the model's
// ioas.c:iommufd_ioas_change_process runs beside the kernel, the parent's
// VmPin/VmLck are compared after every call and the child's after its call
// (LockstepProcess.forkIoctl).
import { expect } from 'chai';
import * as U from '../../../../lib/uapi/index.ts';
import { ACCOUNT_MM, ACCOUNT_NONE, ACCOUNT_USER, type AccountMode } from '../../../../lib/model/pages.ts';
import { CAP_IPC_LOCK, errnoName } from '../../../../lib/sys/index.ts';
import { vmPinAndLckKiB, vmPinAndLckKiBOf } from '../../../../lib/sys/proc-status.ts';
import { requireIoctl, requireMockDomain } from '../../../support/kernel.ts';
import { lockstep } from '../../../support/lockstep.ts';
import {
  EINVAL, PAGE_SIZE, assertOk, expectErrno, forkRelease, ioasAlloc, ioasMap, ioasMapFile, ioasUnmap, mockDomain, selftestBuffer,
  selftestMfdBuffer, teardownIommufd, type Iommufd,
} from '../../../support/iommufd-utils.ts';

interface Variant {
  name: string;
  accounting: AccountMode;
}

// FIXTURE_VARIANT_ADD(change_process, ...)
const VARIANTS: Variant[] = [
  { name: 'account_none', accounting: ACCOUNT_NONE },
  { name: 'account_user', accounting: ACCOUNT_USER },
  { name: 'account_mm', accounting: ACCOUNT_MM },
];

interface ChangeProcessSelf {
  fd: Iommufd;
  ioasId: number;
}

for (const variant of VARIANTS) {
  describe(`change_process.${variant.name}`, () => {
    let self: ChangeProcessSelf;
    let droppedIpcLock = false;

    beforeEach(function () {
      self = {} as ChangeProcessSelf;
      requireMockDomain(this);
      self.fd = lockstep().openIommufd();

      // drop_cap_ipc_lock(_metadata)
      expect(lockstep().setCapability(CAP_IPC_LOCK, false), 'dropping CAP_IPC_LOCK').to.equal(0);
      droppedIpcLock = true;
      if (variant.accounting !== ACCOUNT_NONE) {
        assertOk(
          self.fd.option({ optionId: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: variant.accounting === ACCOUNT_MM ? 1 : 0 }),
          'IOMMU_OPTION_RLIMIT_MODE',
        );
      }

      self.ioasId = ioasAlloc(self);
      mockDomain(self, self.ioasId);
    });

    afterEach(() => {
      try {
        if (self.fd && !self.fd.closed) teardownIommufd(self.fd);
      } finally {
        // (The C harness forks each test; here the process goes on, so the capability comes back.)
        if (droppedIpcLock) expect(lockstep().setCapability(CAP_IPC_LOCK, true), 'raising CAP_IPC_LOCK').to.equal(0);
        droppedIpcLock = false;
      }
    });

    it('basic', function () {
      requireIoctl(this, 'IOMMU_IOAS_CHANGE_PROCESS');
      requireIoctl(this, 'IOMMU_IOAS_MAP_FILE');
      const buffer = selftestBuffer();
      const { mfd } = selftestMfdBuffer();

      /* Expect failure if non-file maps exist */
      let iova = ioasMap(self, buffer.address, PAGE_SIZE);
      expectErrno(EINVAL, self.fd.ioasChangeProcess(), 'IOMMU_IOAS_CHANGE_PROCESS');
      ioasUnmap(self, iova, PAGE_SIZE);

      /* Change process works in current process. */
      iova = ioasMapFile(self, mfd, 0, PAGE_SIZE);
      assertOk(self.fd.ioasChangeProcess(), 'IOMMU_IOAS_CHANGE_PROCESS');

      /* Change process works in another process */
      const nlock = PAGE_SIZE / 1024;
      /* Parent accounts for locked memory before */
      const before = vmPinAndLckKiB();
      expect(before.pin, 'VmPin of the parent before').to.equal(nlock);
      if (variant.accounting === ACCOUNT_MM) expect(before.lck, 'VmLck of the parent before').to.equal(nlock);
      // (The C child also reads its own VmPin and VmLck, 0, before its ioctl: the addon's forked child
      // issues the ioctl at once, so the child's counters are read after it only; a new mm starts at 0.)

      const cmd = U.iommu_ioas_change_process.encode({});
      const child = lockstep().forkIoctl(self.fd.fd, U.IOMMU_IOAS_CHANGE_PROCESS, cmd, true);
      if (typeof child === 'number') throw new Error(`fork failed: ${errnoName(child)}`);
      try {
        expect(child.ret < 0 ? errnoName(child.ret) : 'success', 'IOMMU_IOAS_CHANGE_PROCESS in the child').to.equal('success');

        /* Child accounts for locked memory after */
        const parent = vmPinAndLckKiB();
        expect(parent.pin, 'VmPin of the parent after').to.equal(0);
        expect(parent.lck, 'VmLck of the parent after').to.equal(0);
        const mine = vmPinAndLckKiBOf(child.pid);
        expect(mine.pin, 'VmPin of the child after').to.equal(nlock);
        if (variant.accounting === ACCOUNT_MM) expect(mine.lck, 'VmLck of the child after').to.equal(nlock);
      } finally {
        expect(forkRelease(child.pid), 'child exit status').to.equal(0);
      }
    });
  });
}
