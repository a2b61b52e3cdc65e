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
import { CAP_IPC_LOCK, errnoName, MAP_SHARED, PROT_READ, PROT_WRITE, sys, type Mapping } from '../../../../lib/sys/index.ts';
import { vmPinAndLckKiB, vmPinAndLckKiBOf } from '../../../../lib/sys/proc-status.ts';
import { requireIoctl, requireMockDomain } from '../../../support/kernel.ts';
import { lockstep } from '../../../support/lockstep.ts';
import {
  BUFFER_SIZE, EINVAL, PAGE_SIZE, assertOk, expectErrno, forkRelease, ioasAlloc, ioasMap, ioasUnmap, mockDomain, selftestBuffer,
  teardownIommufd, type Iommufd,
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

/** The selftest's global mfd/mfd_buffer: memfd_mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, &mfd). */
let mfd: { fd: number; buffer: Mapping } | null = null;
function selftestMfd(): { fd: number; buffer: Mapping } {
  if (mfd) return mfd;
  const fd = sys().memfdCreate('buffer', 0);
  if (fd < 0) throw new Error(`memfd_create: ${errnoName(fd)}`);
  const rc = sys().ftruncate(fd, BUFFER_SIZE);
  if (rc < 0) throw new Error(`ftruncate(mfd): ${errnoName(rc)}`);
  mfd = { fd, buffer: lockstep().mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) };
  return mfd;
}

/**
 * test_ioctl_ioas_map_file(mfd, start, length, &iova): struct iommu_ioas_map_file
 * { size, flags, ioas_id, fd, start, length, iova } (40 bytes), READABLE | WRITEABLE.
 */
function ioasMapFile(self: ChangeProcessSelf, fd: number, start: number, length: number): bigint {
  const cmd = new Uint8Array(40);
  const dv = new DataView(cmd.buffer);
  dv.setUint32(0, cmd.length, true);
  dv.setUint32(4, U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, true);
  dv.setUint32(8, self.ioasId, true);
  dv.setInt32(12, fd, true);
  dv.setBigUint64(16, BigInt(start), true);
  dv.setBigUint64(24, BigInt(length), true);
  assertOk(self.fd.ioctl(U.IOMMU_IOAS_MAP_FILE, cmd), 'IOMMU_IOAS_MAP_FILE');
  return dv.getBigUint64(32, true);
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
      const file = selftestMfd();

      /* Expect failure if non-file maps exist */
      let iova = ioasMap(self, buffer.address, PAGE_SIZE);
      expectErrno(EINVAL, self.fd.ioasChangeProcess(), 'IOMMU_IOAS_CHANGE_PROCESS');
      ioasUnmap(self, iova, PAGE_SIZE);

      /* Change process works in current process. */
      iova = ioasMapFile(self, file.fd, 0, PAGE_SIZE);
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
