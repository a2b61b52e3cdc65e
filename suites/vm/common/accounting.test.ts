// Memory accounting of pinned user pages: what iommufd and vfio type1 charge
// to VmPin (mm->pinned_vm), VmLck (mm->locked_vm) and the uid's locked_vm,
// and how RLIMIT_MEMLOCK and CAP_IPC_LOCK bound it. Every ioctl runs in
// lockstep (the session compares VmPin/VmLck with the model after each
// pinning operation); each step also asserts the kernel's figures, read from
// /proc/self/status here, against values derived from the kernel source:
//
// iommufd (drivers/iommu/iommufd/pages.c):
// - iopt_alloc_pages: a MAP made with CAP_IPC_LOCK is ACCOUNT_NONE, else
//   ACCOUNT_USER; io_pagetable.c:iopt_map_user_pages upgrades USER to MM when
//   the context's IOMMU_OPTION_RLIMIT_MODE is 1 (per process).
// - Pages are pinned when something needs them: an area filled into a domain
//   (iopt_fill_domain, iopt_area_fill_domains) or an access pin
//   (iopt_area_add_access); a MAP into an IOAS without a domain pins nothing.
//   Holders of the same iopt_pages share the pins (a COPY shares the
//   iopt_pages), a second MAP of the same memory is an iopt_pages of its own.
// - do_update_pinned: every mode adds to mm->pinned_vm (VmPin); USER charges
//   user->locked_vm (incr_user_locked_vm: not in /proc, seen through the
//   limit), MM charges mm->locked_vm (update_mm_locked_vm →
//   __account_locked_vm: VmLck), NONE charges no locked_vm. Both charges
//   fail with ENOMEM when they would exceed RLIMIT_MEMLOCK (strict `>`), and
//   the fill that pinned is undone.
//
// vfio type1 (drivers/vfio/vfio_iommu_type1.c): MAP_DMA pins at once when the
// container has a domain (vfio_pin_map_dma); vfio_lock_acct → mm_lock_acct →
// __account_locked_vm charges mm->locked_vm (VmLck) even with CAP_IPC_LOCK
// (which only bypasses the limit: dma->lock_cap); mm->pinned_vm is never
// touched (VmPin unchanged). vfio_pin_pages_remote fails with ENOMEM before
// locked_vm + 1 would pass RLIMIT_MEMLOCK.
import { expect } from 'chai';
import type { VfioContainer } from '../../../lib/kernel/index.ts';
import { type1ReadOnlyPinsZeroPage } from '../../../lib/kernel/features.ts';
import { CAP_IPC_LOCK, CAP_SYS_RESOURCE, capBit, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, RLIMIT_MEMLOCK, sys, type Mapping } from '../../../lib/sys/index.ts';
import { vmPinAndLckKiB } from '../../../lib/sys/proc-status.ts';
import * as U from '../../../lib/uapi/index.ts';
import { assertOk, expectErrno, type Iommufd } from '../../support/iommufd-utils.ts';
import { requireDeviceUnderTest, requireIommufd, requireMockDomain, requireVfioCompat, requireVfioContainer } from '../../support/kernel.ts';
import { lockstep } from '../../support/lockstep.ts';
import { deviceRefusal } from '../../support/platform.ts';
import { skipBecause } from '../../support/skip.ts';

const EPERM = 1;
const ENOMEM = 12;
const EFAULT = 14;
const EBUSY = 16;
const EINVAL = 22;
const EOPNOTSUPP = 95;
const PAGE = 4096;
/** Pages in the test buffer. */
const N = 16;
const HALF = N / 2;
// Inside the mock domain aperture (selftest.c MOCK_APERTURE_START = 1 << 24) and clear of the x86 MSI window.
const IOVA_A = 0x1000000n;
const IOVA_A2 = 0x2000000n;
const IOVA_B = 0x4000000n;
const MAP_RW_FIXED = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
const DMA_RW = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
const bytes = (pages: number) => BigInt(pages * PAGE);

/** IOMMU_OPTION_RLIMIT_MODE values (ioas.c:iommufd_option_rlimit_mode). */
const RLIMIT_MODES = [
  { name: 'per-user (RLIMIT_MODE 0)', value: 0n, chargesVmLck: false },
  { name: 'per-process (RLIMIT_MODE 1)', value: 1n, chargesVmLck: true },
] as const;
type RlimitMode = (typeof RLIMIT_MODES)[number];

interface Figures {
  /** VmPin in kB */
  pin: number;
  /** VmLck in kB */
  lck: number;
}

/** VmPin and VmLck of this process, read from /proc/self/status (kB). */
const readFigures: () => Figures = vmPinAndLckKiB;

/** Asserts VmPin and VmLck grew by exactly these page counts since `base`. */
function expectCharged(base: Figures, pinPages: number, lckPages: number, after: string): void {
  const now = readFigures();
  expect({ VmPin: now.pin - base.pin, VmLck: now.lck - base.lck }, `VmPin/VmLck growth (kB) after ${after}`).to.deep.equal({
    VmPin: (pinPages * PAGE) / 1024,
    VmLck: (lckPages * PAGE) / 1024,
  });
}

/** What iommufd charges to VmLck for `pages` pinned pages: only ACCOUNT_MM, and a MAP with CAP_IPC_LOCK is ACCOUNT_NONE. */
function iommufdVmLck(mode: RlimitMode, ipcLock: boolean, pages: number): number {
  return mode.chargesVmLck && !ipcLock ? pages : 0;
}

/** Whether the capability is in this thread's effective set (where the ioctls run). */
function hasCap(cap: number): boolean {
  const caps = sys().capget();
  if (typeof caps === 'number') throw new Error(`capget failed: errno ${-caps}`);
  return (caps.effective & capBit(cap)) !== 0n;
}

function memlockLimit(): bigint {
  const lim = sys().getrlimit(RLIMIT_MEMLOCK);
  if (typeof lim === 'number') throw new Error(`getrlimit failed: errno ${-lim}`);
  return lim.cur;
}

function setIpcLock(on: boolean): void {
  expect(lockstep().setCapability(CAP_IPC_LOCK, on), `${on ? 'raising' : 'dropping'} CAP_IPC_LOCK`).to.equal(0);
  expect(hasCap(CAP_IPC_LOCK), 'CAP_IPC_LOCK in the effective set').to.equal(on);
}

function setLimitPages(pages: number): void {
  expect(lockstep().setMemlockLimit(bytes(pages)), `RLIMIT_MEMLOCK = ${pages} pages`).to.equal(0);
  expect(memlockLimit()).to.equal(bytes(pages));
}

/** IOMMU_OPTION(RLIMIT_MODE, SET) on object 0 of a fresh context (needs CAP_SYS_RESOURCE and no objects yet). */
function setRlimitMode(fd: Iommufd, mode: RlimitMode): void {
  assertOk(fd.option({ optionId: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, objectId: 0, val64: mode.value }), 'IOMMU_OPTION RLIMIT_MODE SET');
  const got = assertOk(fd.option({ optionId: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_GET, objectId: 0 }), 'IOMMU_OPTION RLIMIT_MODE GET');
  expect(got.val64, 'RLIMIT_MODE read back').to.equal(mode.value);
}

function mapFixed(fd: Iommufd, ioasId: number, userVa: bigint, pages: number, iova: bigint) {
  return fd.ioasMap({ ioasId, flags: MAP_RW_FIXED, userVa, length: bytes(pages), iova });
}

const capLabel = (ipcLock: boolean) => (ipcLock ? 'with CAP_IPC_LOCK' : 'without CAP_IPC_LOCK');

describe('accounting', function () {
  let savedIpcLock: boolean;
  let savedSysResource: boolean;
  let savedLimit: bigint;
  let buffer: Mapping | undefined;

  beforeEach(function () {
    savedIpcLock = hasCap(CAP_IPC_LOCK);
    savedSysResource = hasCap(CAP_SYS_RESOURCE);
    savedLimit = memlockLimit();
  });

  // Capabilities and the limit come back even when a test failed half-way.
  afterEach(function () {
    const failures: string[] = [];
    // CAP_SYS_RESOURCE first: raising RLIMIT_MEMLOCK back may need it.
    if (lockstep().setCapability(CAP_SYS_RESOURCE, savedSysResource) !== 0) failures.push('restoring CAP_SYS_RESOURCE');
    if (lockstep().setCapability(CAP_IPC_LOCK, savedIpcLock) !== 0) failures.push('restoring CAP_IPC_LOCK');
    if (lockstep().setMemlockLimit(savedLimit) !== 0) failures.push('restoring RLIMIT_MEMLOCK');
    if (buffer) {
      lockstep().munmap(buffer);
      buffer = undefined;
    }
    expect(failures, 'restoring the process').to.deep.equal([]);
  });

  /** N pages of shared anonymous memory, made through the session so the model knows them. */
  function newBuffer(): Mapping {
    buffer = lockstep().mmap(N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    return buffer;
  }

  describe('accounting.iommufd RLIMIT_MODE option', function () {
    before(function () {
      requireIommufd(this);
    });

    it('RLIMIT_MODE changes only with CAP_SYS_RESOURCE, on object 0, to 0 or 1, while the context has no objects', function () {
      const fd = lockstep().openIommufd();
      const get = () => assertOk(fd.option({ optionId: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_GET, objectId: 0 }), 'RLIMIT_MODE GET').val64;
      const set = (val64: bigint, objectId = 0) => fd.option({ optionId: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, objectId, val64 });
      try {
        expect(get(), 'a /dev/iommu context starts per-user (main.c:iommufd_fops_open)').to.equal(0n);
        expect(lockstep().setCapability(CAP_SYS_RESOURCE, false), 'dropping CAP_SYS_RESOURCE').to.equal(0);
        expectErrno(EPERM, set(1n), 'SET without CAP_SYS_RESOURCE');
        expect(lockstep().setCapability(CAP_SYS_RESOURCE, true), 'raising CAP_SYS_RESOURCE').to.equal(0);
        expectErrno(EOPNOTSUPP, set(1n, 1), 'SET on an object other than 0');
        expectErrno(EINVAL, set(2n), 'SET to 2');
        expect(get()).to.equal(0n);
        assertOk(set(1n), 'SET to 1');
        expect(get()).to.equal(1n);
        const ioas = assertOk(fd.ioasAlloc()).ioasId;
        expectErrno(EBUSY, set(0n), 'SET with an object in the context');
        assertOk(fd.destroy(ioas));
        assertOk(set(0n), 'SET once the context is empty again');
        expect(get()).to.equal(0n);
      } finally {
        fd.close();
      }
    });
  });

  describe('accounting.iommufd (mock domains)', function () {
    before(function () {
      requireMockDomain(this);
    });

    for (const mode of RLIMIT_MODES) {
      for (const ipcLock of [true, false]) {
        it(`${mode.name}, ${capLabel(ipcLock)}: map, domain attach, copy, access pin/unpin, unmap, detach and close`, function () {
          const buf = newBuffer();
          setIpcLock(ipcLock);
          const base = readFigures();
          const lck = (pages: number) => iommufdVmLck(mode, ipcLock, pages);
          const fd = lockstep().openIommufd();
          let accessFd = -1;
          try {
            setRlimitMode(fd, mode);
            const ioasA = assertOk(fd.ioasAlloc()).ioasId;
            assertOk(mapFixed(fd, ioasA, buf.address, N, IOVA_A), 'MAP into A');
            expectCharged(base, 0, 0, 'a MAP into an IOAS with no domain (nothing needs the pages yet)');

            const domA = assertOk(fd.testMockDomain({ ptId: ioasA }), 'mock domain on A');
            expectCharged(base, N, lck(N), 'attaching a mock domain (iopt_fill_domain pins every page)');

            assertOk(mapFixed(fd, ioasA, buf.address, N, IOVA_A2), 'second MAP of the same memory');
            expectCharged(base, 2 * N, lck(2 * N), 'a second MAP of the same memory (an iopt_pages of its own: pinned and charged again)');
            assertOk(fd.ioasUnmap({ ioasId: ioasA, iova: IOVA_A2, length: bytes(N) }), 'UNMAP of the second MAP');
            expectCharged(base, N, lck(N), 'unmapping the second MAP');

            const ioasB = assertOk(fd.ioasAlloc()).ioasId;
            assertOk(fd.ioasCopy({ dstIoasId: ioasB, srcIoasId: ioasA, flags: MAP_RW_FIXED, length: bytes(N), dstIova: IOVA_B, srcIova: IOVA_A }), 'COPY A → B');
            expectCharged(base, N, lck(N), 'COPY into an IOAS with no domain');
            const domB = assertOk(fd.testMockDomain({ ptId: ioasB }), 'mock domain on B');
            expectCharged(base, N, lck(N), 'a domain on the COPY (same iopt_pages: read from A\'s domain, no second pin, no double charge)');

            const access = assertOk(fd.testCreateAccess({ ioasId: ioasA, flags: U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES }), 'access on A');
            accessFd = access.accessFd;
            const half = assertOk(fd.testAccessPages({ accessFd, iova: IOVA_A, length: bytes(HALF), uptr: buf.address }), 'access pin of half');
            expectCharged(base, N, lck(N), 'an access pin of pages a domain already holds');

            assertOk(fd.destroy(domA.stdevId), 'destroying the mock device on A');
            expectCharged(base, N, lck(N), "detaching A's domain (B's domain still holds every page)");
            assertOk(fd.destroy(domB.stdevId), 'destroying the mock device on B');
            expectCharged(base, HALF, lck(HALF), "detaching B's domain (only the access's half stays pinned)");

            assertOk(fd.testDestroyAccessPages({ accessFd, accessPagesId: half.accessPagesId }), 'access unpin');
            expectCharged(base, 0, 0, 'the access unpin (nothing holds the pages)');
            assertOk(fd.testAccessPages({ accessFd, iova: IOVA_A, length: bytes(N), uptr: buf.address }), 'access pin of all');
            expectCharged(base, N, lck(N), 'an access pin with no domain (the access pins and is charged)');
            assertOk(fd.ioasUnmap({ ioasId: ioasA, iova: IOVA_A, length: bytes(N) }), 'UNMAP of A under the access pin');
            expectCharged(base, 0, 0, 'unmapping A (the access is told to unpin first)');
            assertOk(fd.closeAccess(accessFd), 'closing the access');
            accessFd = -1;

            assertOk(fd.testMockDomain({ ptId: ioasB }), 'a new mock domain on B');
            expectCharged(base, N, lck(N), "a new domain on B (the COPY's area pinned afresh)");
          } finally {
            if (accessFd >= 0) fd.closeAccess(accessFd);
            fd.close();
          }
          expectCharged(base, 0, 0, 'closing the iommufd (everything unpinned and uncharged)');
        });
      }
    }
  });

  describe('accounting.iommufd RLIMIT_MEMLOCK (mock domains)', function () {
    before(function () {
      requireMockDomain(this);
    });

    for (const mode of RLIMIT_MODES) {
      it(`${mode.name}, without CAP_IPC_LOCK: pins beyond RLIMIT_MEMLOCK fail with ENOMEM and charge nothing`, function () {
        const buf = newBuffer();
        setIpcLock(false);
        const base = readFigures();
        // The limit is on top of what is charged already (VmLck in MM mode; the uid's locked_vm is 0 with nothing else pinning).
        const already = mode.chargesVmLck ? base.lck / 4 : 0;
        setLimitPages(already + HALF);
        const fd = lockstep().openIommufd();
        try {
          setRlimitMode(fd, mode);
          const ioas = assertOk(fd.ioasAlloc()).ioasId;
          assertOk(fd.testMockDomain({ ptId: ioas }), 'mock domain');
          expectErrno(ENOMEM, mapFixed(fd, ioas, buf.address, N, IOVA_A), `MAP of ${N} pages under a ${HALF}-page limit`);
          expectCharged(base, 0, 0, 'the failed MAP (the fill is undone)');
          assertOk(mapFixed(fd, ioas, buf.address, HALF, IOVA_A), `MAP of ${HALF} pages (exactly the limit)`);
          expectCharged(base, HALF, mode.chargesVmLck ? HALF : 0, 'a MAP up to the limit');
          // In per-user mode VmLck shows nothing: the uid's locked_vm holds the pages, as the next page proves.
          const onePage = buf.address + bytes(HALF);
          expectErrno(ENOMEM, mapFixed(fd, ioas, onePage, 1, IOVA_A2), 'one page more than the limit');
          expectCharged(base, HALF, mode.chargesVmLck ? HALF : 0, 'the failed one-page MAP');
          setLimitPages(already + HALF + 1);
          assertOk(mapFixed(fd, ioas, onePage, 1, IOVA_A2), 'the page with the limit one page higher');
          expectCharged(base, HALF + 1, mode.chargesVmLck ? HALF + 1 : 0, 'the one-page MAP');
        } finally {
          fd.close();
        }
        expectCharged(base, 0, 0, 'closing the iommufd');
      });

      it(`${mode.name}, without CAP_IPC_LOCK: a domain attach or an access pin beyond the limit fails with ENOMEM`, function () {
        const buf = newBuffer();
        setIpcLock(false);
        const base = readFigures();
        const already = mode.chargesVmLck ? base.lck / 4 : 0;
        setLimitPages(already + HALF);
        const fd = lockstep().openIommufd();
        let accessFd = -1;
        try {
          setRlimitMode(fd, mode);
          const ioas = assertOk(fd.ioasAlloc()).ioasId;
          assertOk(mapFixed(fd, ioas, buf.address, N, IOVA_A), 'MAP with no domain (nothing pinned, no limit met)');
          expectCharged(base, 0, 0, 'the MAP');
          expectErrno(ENOMEM, fd.testMockDomain({ ptId: ioas }), `a domain attach that pins ${N} pages`);
          expectCharged(base, 0, 0, 'the failed attach');
          accessFd = assertOk(fd.testCreateAccess({ ioasId: ioas, flags: U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES })).accessFd;
          expectErrno(ENOMEM, fd.testAccessPages({ accessFd, iova: IOVA_A, length: bytes(N), uptr: buf.address }), `an access pin of ${N} pages`);
          expectCharged(base, 0, 0, 'the failed access pin');
          assertOk(fd.testAccessPages({ accessFd, iova: IOVA_A, length: bytes(HALF), uptr: buf.address }), `an access pin of ${HALF} pages`);
          expectCharged(base, HALF, mode.chargesVmLck ? HALF : 0, 'the access pin up to the limit');
        } finally {
          if (accessFd >= 0) fd.closeAccess(accessFd);
          fd.close();
        }
        expectCharged(base, 0, 0, 'closing the access and the iommufd');
      });

      it(`${mode.name}: the account mode is fixed at MAP time (CAP_IPC_LOCK then, not at the pin)`, function () {
        const buf = newBuffer();
        const base = readFigures();
        const fd = lockstep().openIommufd();
        try {
          setRlimitMode(fd, mode);
          // Mapped with CAP_IPC_LOCK: ACCOUNT_NONE (iopt_alloc_pages), no limit and no locked_vm, whoever pins later.
          setIpcLock(true);
          const none = assertOk(fd.ioasAlloc()).ioasId;
          assertOk(mapFixed(fd, none, buf.address, N, IOVA_A), 'MAP with CAP_IPC_LOCK');
          setIpcLock(false);
          setLimitPages(1);
          assertOk(fd.testMockDomain({ ptId: none }), `a domain pinning ${N} pages under a 1-page limit, without CAP_IPC_LOCK now`);
          expectCharged(base, N, 0, 'the attach (ACCOUNT_NONE: VmPin only, no limit)');
          // Mapped without it: ACCOUNT_USER (or MM); the limit applies even when the pin runs with CAP_IPC_LOCK
          // (incr_user_locked_vm and __account_locked_vm(bypass_rlim=false) ask no capability).
          const charged = assertOk(fd.ioasAlloc()).ioasId;
          assertOk(mapFixed(fd, charged, buf.address, N, IOVA_A), 'MAP without CAP_IPC_LOCK');
          setIpcLock(true);
          expectErrno(ENOMEM, fd.testMockDomain({ ptId: charged }), 'a domain pinning them with CAP_IPC_LOCK back, under a 1-page limit');
          expectCharged(base, N, 0, 'the failed attach');
        } finally {
          fd.close();
        }
        expectCharged(base, 0, 0, 'closing the iommufd');
      });
    }
    it('per-user and per-process charges are separate pools, each bounded by RLIMIT_MEMLOCK on its own', function () {
      const buf = newBuffer();
      setIpcLock(false);
      const base = readFigures();
      // One limit value bounds both pools (the uid's locked_vm and mm->locked_vm): start from an empty VmLck.
      expect(base.lck, 'VmLck before the test').to.equal(0);
      setLimitPages(HALF);
      const [perUser, perUser2, perProcess] = [lockstep().openIommufd(), lockstep().openIommufd(), lockstep().openIommufd()];
      try {
        setRlimitMode(perUser, RLIMIT_MODES[0]);
        setRlimitMode(perUser2, RLIMIT_MODES[0]);
        setRlimitMode(perProcess, RLIMIT_MODES[1]);
        const ioasUser = assertOk(perUser.ioasAlloc()).ioasId;
        assertOk(perUser.testMockDomain({ ptId: ioasUser }));
        assertOk(mapFixed(perUser, ioasUser, buf.address, HALF, IOVA_A), `per-user MAP of ${HALF} pages (the whole limit)`);
        expectCharged(base, HALF, 0, 'the per-user MAP');
        const ioasProcess = assertOk(perProcess.ioasAlloc()).ioasId;
        assertOk(perProcess.testMockDomain({ ptId: ioasProcess }));
        assertOk(mapFixed(perProcess, ioasProcess, buf.address + bytes(HALF), HALF, IOVA_A), `per-process MAP of ${HALF} more pages`);
        expectCharged(base, N, HALF, 'the per-process MAP (mm->locked_vm was empty; VmPin counts both)');
        const ioasUser2 = assertOk(perUser2.ioasAlloc()).ioasId;
        assertOk(perUser2.testMockDomain({ ptId: ioasUser2 }));
        expectErrno(ENOMEM, mapFixed(perUser2, ioasUser2, buf.address, 1, IOVA_A), 'one page on a second per-user iommufd (the same uid pool is full)');
        expectCharged(base, N, HALF, 'the failed MAP');
      } finally {
        perUser.close();
        perUser2.close();
        perProcess.close();
      }
      expectCharged(base, 0, 0, 'closing the three iommufds');
    });
  });

  // ---------------------------------------------------------------- the edu device's group (viommu profile)

  describe('accounting.vfio (edu device group)', function () {
    let groupId: number;
    let bdf: string;

    before(function () {
      requireVfioContainer(this);
      ({ groupId, bdf } = requireDeviceUnderTest(this));
      type1Refusal = deviceRefusal(groupId, 'type1');
      iommufdRefusal = deviceRefusal(groupId, 'iommufd');
    });
    let type1Refusal: string | null = null;
    let iommufdRefusal: string | null = null;
    /** Skips a test on a platform that refuses one of the backends it needs the device on. */
    function needDevice(ctx: Mocha.Context, ...backends: ('type1' | 'iommufd')[]) {
      for (const b of backends) {
        const why = b === 'type1' ? type1Refusal : iommufdRefusal;
        if (why) skipBecause(ctx, why);
      }
    }

    /** A group attached to `container` with TYPE1v2 set; the caller closes it. */
    function attach(container: VfioContainer | Iommufd) {
      const group = lockstep().openGroup(groupId);
      assertOk(group.setContainer(container), 'VFIO_GROUP_SET_CONTAINER');
      return group;
    }

    for (const ipcLock of [true, false]) {
      it(`type1, ${capLabel(ipcLock)}: MAP_DMA charges VmLck (never VmPin), UNMAP and close uncharge`, function () {
        needDevice(this, 'type1');
        const buf = newBuffer();
        setIpcLock(ipcLock);
        const base = readFigures();
        const container = lockstep().openContainer();
        const group = attach(container);
        let deviceFd = -1;
        try {
          assertOk(container.setIommu(U.VFIO_TYPE1v2_IOMMU), 'VFIO_SET_IOMMU TYPE1v2');
          assertOk(container.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A, size: bytes(N) }), 'MAP_DMA');
          expectCharged(base, 0, N, 'MAP_DMA (pinned at once into the group\'s domain; vfio_lock_acct charges locked_vm even with CAP_IPC_LOCK)');
          assertOk(container.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A2, size: bytes(N) }), 'second MAP_DMA of the same memory');
          expectCharged(base, 0, 2 * N, 'a second MAP_DMA of the same memory (each vfio_dma charges its own pins)');
          deviceFd = assertOk(group.getDeviceFd(bdf), 'VFIO_GROUP_GET_DEVICE_FD').deviceFd;
          expectCharged(base, 0, 2 * N, 'opening the device (type1 pins at MAP_DMA, not at open)');
          assertOk(group.closeDevice(deviceFd), 'closing the device');
          deviceFd = -1;
          expect(container.unmapDma({ iova: IOVA_A2, size: bytes(N) }).size, 'bytes unmapped').to.equal(bytes(N));
          expectCharged(base, 0, N, 'UNMAP_DMA of the second mapping');
          container.close();
          expectCharged(base, 0, N, 'closing the container fd (the group still holds the container)');
        } finally {
          if (deviceFd >= 0) group.closeDevice(deviceFd);
          group.close();
          container.close();
        }
        expectCharged(base, 0, 0, 'closing the group (its detach unmaps and unpins everything)');
      });

      it(`type1, ${capLabel(ipcLock)}, RLIMIT_MEMLOCK ${HALF} pages: ${ipcLock ? 'the limit is bypassed but still charged' : 'MAP_DMA beyond it fails with ENOMEM and charges nothing'}`, function () {
        needDevice(this, 'type1');
        const buf = newBuffer();
        setIpcLock(ipcLock);
        const base = readFigures();
        const already = base.lck / 4;
        setLimitPages(already + HALF);
        const container = lockstep().openContainer();
        const group = attach(container);
        try {
          assertOk(container.setIommu(U.VFIO_TYPE1v2_IOMMU), 'VFIO_SET_IOMMU TYPE1v2');
          const whole = container.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A, size: bytes(N) });
          if (ipcLock) {
            assertOk(whole, `MAP_DMA of ${N} pages over the limit with CAP_IPC_LOCK`);
            expectCharged(base, 0, N, 'MAP_DMA with CAP_IPC_LOCK (__account_locked_vm bypass_rlim: charged past the limit)');
          } else {
            expectErrno(ENOMEM, whole, `MAP_DMA of ${N} pages under a ${HALF}-page limit`);
            expectCharged(base, 0, 0, 'the failed MAP_DMA (vfio_remove_dma uncharges what was pinned)');
            assertOk(container.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A, size: bytes(HALF) }), `MAP_DMA of ${HALF} pages`);
            expectCharged(base, 0, HALF, 'MAP_DMA up to the limit');
            expectErrno(ENOMEM, container.mapDma({ flags: DMA_RW, vaddr: buf.address + bytes(HALF), iova: IOVA_A2, size: bytes(1) }), 'one page more');
            expectCharged(base, 0, HALF, 'the failed one-page MAP_DMA');
          }
        } finally {
          group.close();
          container.close();
        }
        expectCharged(base, 0, 0, 'closing the group and the container');
      });
    }

    // Can a read-only MAP_DMA of never-written private memory pin the shared zero page, which is
    // PageReserved, so that vfio_pin_pages_remote neither limits nor charges it ("Reserved pages aren't
    // counted against the user")? Not since "mm/gup: reliable R/O long-term pinning in COW mappings"
    // (6.2): a FOLL_PIN|FOLL_LONGTERM read of a non-anonymous page in a COW mapping must unshare
    // (mm/internal.h:gup_must_unshare), so GUP pins a new anonymous page, charged and limited as written
    // memory is. Before it (6.1) the zero page itself is pinned: nothing is charged or limited, and a
    // device reading that IOVA never sees what the process writes there later. Which one the running
    // kernel does is probed (type1ReadOnlyPinsZeroPage: the page's PFN after a pin), and the model
    // follows the same fact.
    it('type1, without CAP_IPC_LOCK: a read-only MAP_DMA of never-written private memory is charged and limited page by page, unless it pins the zero page', function () {
      needDevice(this, 'type1');
      const zeroPage = type1ReadOnlyPinsZeroPage();
      expect(zeroPage, 'the probe of read-only pins (a VFIO group to borrow, PFNs in /proc/self/pagemap)').to.not.equal(null);
      buffer = lockstep().mmap(N * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const buf = buffer;
      setIpcLock(false);
      const base = readFigures();
      const container = lockstep().openContainer();
      const group = attach(container);
      try {
        assertOk(container.setIommu(U.VFIO_TYPE1v2_IOMMU), 'VFIO_SET_IOMMU TYPE1v2');
        assertOk(container.mapDma({ flags: U.VFIO_DMA_MAP_FLAG_READ, vaddr: buf.address, iova: IOVA_A, size: bytes(N) }), `read-only MAP_DMA of ${N} untouched pages`);
        const oneMore = { flags: U.VFIO_DMA_MAP_FLAG_READ, vaddr: buf.address, iova: IOVA_A2, size: bytes(1) };
        if (zeroPage) {
          expectCharged(base, 0, 0, 'the read-only MAP_DMA of the zero page (is_invalid_reserved_pfn: not charged)');
          setLimitPages(base.lck / 4);
          assertOk(container.mapDma(oneMore), 'one page more, read-only, with the limit reached (the zero page is not limited)');
          expectCharged(base, 0, 0, 'the second MAP_DMA of the zero page');
        } else {
          expectCharged(base, 0, N, 'the read-only MAP_DMA (unshared into real pages: all charged)');
          setLimitPages(base.lck / 4 + N);
          expectErrno(ENOMEM, container.mapDma(oneMore), 'one page more, read-only, with the limit reached');
          expectCharged(base, 0, N, 'the failed MAP_DMA');
        }
      } finally {
        group.close();
        container.close();
      }
      expectCharged(base, 0, 0, 'closing the group and the container');
    });

    it('type1: a device fd holds the group file, so closing the group keeps the container and its pins until the device closes', function () {
      needDevice(this, 'type1');
      const buf = newBuffer();
      const base = readFigures();
      const container = lockstep().openContainer();
      const group = attach(container);
      let deviceFd = -1;
      try {
        assertOk(container.setIommu(U.VFIO_TYPE1v2_IOMMU), 'VFIO_SET_IOMMU TYPE1v2');
        assertOk(container.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A, size: bytes(N) }), 'MAP_DMA');
        deviceFd = assertOk(group.getDeviceFd(bdf), 'VFIO_GROUP_GET_DEVICE_FD').deviceFd;
        expectErrno(EBUSY, group.unsetContainer(), 'UNSET_CONTAINER with the device open (container_users != 1)');
        group.close();
        container.close();
        expectCharged(base, 0, N, 'closing the group and the container fds (vfio_group_use_container took a reference on the group file)');
        assertOk(group.closeDevice(deviceFd), 'closing the device');
        deviceFd = -1;
        expectCharged(base, 0, 0, 'closing the device (the group file is released: the last group leaves the container)');
      } finally {
        if (deviceFd >= 0) group.closeDevice(deviceFd);
        group.close();
        container.close();
      }
    });

    it('type1 and iommufd: a fill that faults part-way (EFAULT) charges nothing', function () {
      needDevice(this, 'type1', 'iommufd');
      requireVfioCompat(this);
      const buf = newBuffer();
      setIpcLock(false);
      // The last page cannot be pinned: PROT_NONE.
      expect(lockstep().mprotect(buf, (N - 1) * PAGE, PAGE, 0), 'mprotect').to.equal(0);
      const base = readFigures();
      const container = lockstep().openContainer();
      let group = attach(container);
      try {
        assertOk(container.setIommu(U.VFIO_TYPE1v2_IOMMU), 'VFIO_SET_IOMMU TYPE1v2');
        expectErrno(EFAULT, container.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A, size: bytes(N) }), 'type1 MAP_DMA over the PROT_NONE page');
        expectCharged(base, 0, 0, 'the failed MAP_DMA (vfio_remove_dma uncharges the pages pinned before the fault)');
      } finally {
        group.close();
        container.close();
      }
      const fd = lockstep().openIommufd();
      let deviceFd = -1;
      try {
        setRlimitMode(fd, RLIMIT_MODES[1]);
        const compat = lockstep().compatOn(fd);
        group = attach(compat);
        assertOk(compat.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A, size: bytes(HALF) }), 'compat MAP_DMA of the first half');
        deviceFd = assertOk(group.getDeviceFd(bdf), 'opening the device').deviceFd;
        expectCharged(base, HALF, HALF, 'the device open');
        expectErrno(EFAULT, compat.mapDma({ flags: DMA_RW, vaddr: buf.address + bytes(HALF), iova: IOVA_A2, size: bytes(HALF) }), 'compat MAP_DMA over the PROT_NONE page');
        expectCharged(base, HALF, HALF, 'the failed compat MAP_DMA (the fill is undone)');
      } finally {
        if (deviceFd >= 0) group.closeDevice(deviceFd);
        group.close();
        fd.close();
      }
      expectCharged(base, 0, 0, 'closing everything');
    });

    for (const mode of RLIMIT_MODES) {
      for (const ipcLock of [true, false]) {
        it(`iommufd compat, ${mode.name}, ${capLabel(ipcLock)}: pins at device open, charged as iommufd charges`, function () {
          needDevice(this, 'iommufd');
          requireVfioCompat(this);
          const buf = newBuffer();
          setIpcLock(ipcLock);
          const base = readFigures();
          const lck = (pages: number) => iommufdVmLck(mode, ipcLock, pages);
          const fd = lockstep().openIommufd();
          let group: ReturnType<typeof attach> | null = null;
          let deviceFd = -1;
          try {
            setRlimitMode(fd, mode);
            const compat = lockstep().compatOn(fd);
            group = attach(compat);
            assertOk(compat.setIommu(U.VFIO_TYPE1v2_IOMMU), 'VFIO_SET_IOMMU TYPE1v2 (compat)');
            assertOk(compat.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A, size: bytes(N) }), 'MAP_DMA');
            expectCharged(base, 0, 0, 'MAP_DMA with no device open (the compat IOAS has no domain yet: nothing pinned, unlike type1)');
            deviceFd = assertOk(group.getDeviceFd(bdf), 'VFIO_GROUP_GET_DEVICE_FD').deviceFd;
            expectCharged(base, N, lck(N), 'opening the device (it attaches to the compat IOAS: its domain pins)');
            const second = assertOk(group.getDeviceFd(bdf), 'a second fd of the same device').deviceFd;
            assertOk(group.closeDevice(second), 'closing the second fd');
            expectCharged(base, N, lck(N), 'a second open and its close (only the first open attaches, only the last close detaches)');
            assertOk(compat.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A2, size: bytes(N) }), 'second MAP_DMA of the same memory');
            expectCharged(base, 2 * N, lck(2 * N), 'a second MAP_DMA of the same memory');
            expect(compat.unmapDma({ iova: IOVA_A2, size: bytes(N) }).size, 'bytes unmapped').to.equal(bytes(N));
            expectCharged(base, N, lck(N), 'UNMAP_DMA of the second mapping');
            assertOk(group.closeDevice(deviceFd), 'closing the device');
            deviceFd = -1;
            expectCharged(base, 0, 0, 'closing the device (detached: its domain is gone, nothing holds the pages)');
          } finally {
            if (deviceFd >= 0) group?.closeDevice(deviceFd);
            group?.close();
            fd.close();
          }
          expectCharged(base, 0, 0, 'closing the group and the iommufd');
        });
      }

      it(`iommufd compat, ${mode.name}, without CAP_IPC_LOCK, RLIMIT_MEMLOCK ${HALF} pages: the device open fails with ENOMEM`, function () {
        needDevice(this, 'iommufd');
        requireVfioCompat(this);
        const buf = newBuffer();
        setIpcLock(false);
        const base = readFigures();
        const already = mode.chargesVmLck ? base.lck / 4 : 0;
        setLimitPages(already + HALF);
        const fd = lockstep().openIommufd();
        let group: ReturnType<typeof attach> | null = null;
        let deviceFd = -1;
        try {
          setRlimitMode(fd, mode);
          const compat = lockstep().compatOn(fd);
          group = attach(compat);
          assertOk(compat.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A, size: bytes(N) }), 'MAP_DMA with no device (nothing pinned, no limit met)');
          expectErrno(ENOMEM, group.getDeviceFd(bdf), `opening the device, whose attach pins ${N} pages`);
          expectCharged(base, 0, 0, 'the failed open');
          expect(compat.unmapDma({ iova: IOVA_A, size: bytes(N) }).size).to.equal(bytes(N));
          assertOk(compat.mapDma({ flags: DMA_RW, vaddr: buf.address, iova: IOVA_A, size: bytes(HALF) }), `MAP_DMA of ${HALF} pages`);
          deviceFd = assertOk(group.getDeviceFd(bdf), 'opening the device').deviceFd;
          expectCharged(base, HALF, mode.chargesVmLck ? HALF : 0, 'the open with the mapping within the limit');
          expectErrno(ENOMEM, compat.mapDma({ flags: DMA_RW, vaddr: buf.address + bytes(HALF), iova: IOVA_A2, size: bytes(1) }), 'one page more');
          expectCharged(base, HALF, mode.chargesVmLck ? HALF : 0, 'the failed one-page MAP_DMA');
        } finally {
          if (deviceFd >= 0) group?.closeDevice(deviceFd);
          group?.close();
          fd.close();
        }
        expectCharged(base, 0, 0, 'closing the device, the group and the iommufd');
      });
    }
  });
});
