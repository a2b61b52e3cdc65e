// tools/testing/selftests/iommu/iommufd_fail_nth.c: "kernel integrity"
// tests. Each runs a sequence of calls that succeeds, then sweeps every
// fault injection point on that call chain (TEST_FAIL_NTH, see
// suites/support/fail-nth.ts), looking for kernel splats in the error paths.
// The C file does not check what the calls do; here every call is also in
// lockstep with the model, and after every run the kernel's state must be
// the model's: an error path that leaves an object, an IOVA range, a mapping
// or a page pin behind fails the test, naming the nth fault site.
import { expect } from 'chai';
import * as U from '../../../../lib/uapi/index.ts';
import { MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE, type Mapping } from '../../../../lib/sys/index.ts';
import { requireIoctl, requireMockDomain, requireTestOp } from '../../../support/kernel.ts';
import { kernelFeatures } from '../../../../lib/kernel/index.ts';
import { notChecked } from '../../../support/skip.ts';
import { lockstep } from '../../../support/lockstep.ts';
import { assertOk, getHwInfoCall, IOMMU_HW_INFO_TYPE_DEFAULT, memfdMmap, type Iommufd } from '../../../support/iommufd-utils.ts';
import { KernelLogTail, setupFaultInjection, testFailNth, type FaultInjectionSetup, type FailNthFixture } from '../../../support/fail-nth.ts';

const PAGE_SIZE = 4096;
/* setup_buffer(): BUFFER_SIZE = 2*1024*1024 in this file (iommufd.c's is 16 pages) */
const BUFFER_SIZE = 2 * 1024 * 1024;
const MAP_RW = U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE;

let buffer: Mapping | undefined;
/** The C constructor's `buffer`: mmap(0, BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0), never unmapped. */
function failNthBuffer(): Mapping {
  buffer ??= lockstep().mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  return buffer;
}

let mfdBuffer: { buf: Mapping; mfd: number } | undefined;
/** The C constructor's `mfd_buffer` and `mfd`: memfd_mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, &mfd), never unmapped. */
function failNthMfdBuffer(): { buf: Mapping; mfd: number } {
  mfdBuffer ??= memfdMmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED) ?? undefined;
  if (!mfdBuffer) throw new Error('memfd_mmap of mfd_buffer failed');
  return mfdBuffer;
}

let stackBuffers: { tmp: { address: bigint }; tmpBig: { address: bigint } } | undefined;
/** access_rw's stack arrays uint16_t tmp[32] and uint64_t tmp_big[4096], as user memory the model knows. */
function accessRwBuffers() {
  stackBuffers ??= { tmp: lockstep().userBuffer(2 * 32), tmpBig: lockstep().userBuffer(8 * 4096) };
  return stackBuffers;
}

/* FIXTURE(basic_fail_nth) */
interface BasicFailNth {
  fd: Iommufd | null;
  /** The access fd (the selftest's access_id); 0 when none is open. */
  accessId: number;
}

/** teardown_iommufd() with this file's buffer: close, then nothing of the buffer may still be pinned. */
function teardownIommufd(fd: Iommufd | null): void {
  if (!fd || fd.closed) return;
  assertOk(fd.close(), 'close(/dev/iommu)');
  const again = lockstep().openIommufd();
  try {
    assertOk(again.testCheckRefs({ length: BUFFER_SIZE, uptr: failNthBuffer().address, refs: 0 }), 'IOMMU_TEST_OP_MD_CHECK_REFS of the buffer after close');
  } finally {
    assertOk(again.close(), 'close(/dev/iommu)');
  }
}

const basicFailNth: FailNthFixture<BasicFailNth> = {
  /* FIXTURE_SETUP(basic_fail_nth) */
  setup: () => ({ fd: null, accessId: 0 }),
  /* FIXTURE_TEARDOWN(basic_fail_nth) */
  teardown(self) {
    if (self.accessId) {
      /* The access FD holds the iommufd open until it closes */
      assertOk(self.fd!.closeAccess(self.accessId), 'close(access fd)');
      self.accessId = 0;
    }
    teardownIommufd(self.fd);
  },
};

describe('basic_fail_nth', function () {
  // Hundreds of runs of each body under TCG.
  this.timeout(600_000);
  let faultInjection: FaultInjectionSetup | undefined;
  let kernelLog: KernelLogTail | null = null;

  before(function () {
    requireMockDomain(this);
    requireTestOp(this, 'MD_CHECK_REFS');
    requireTestOp(this, 'SET_TEMP_MEMORY_LIMIT');
    faultInjection = setupFaultInjection(this);
    kernelLog = KernelLogTail.open();
    failNthBuffer();
    failNthMfdBuffer();
  });

  after(() => {
    // SET_TEMP_MEMORY_LIMIT is global to the kernel: the next suites get iommufd's default back.
    if (faultInjection) {
      const fd = lockstep().openIommufd();
      assertOk(fd.testSetTempMemoryLimit({ limit: 65536 }), 'IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT (default)');
      assertOk(fd.close(), 'close(/dev/iommu)');
    }
    faultInjection?.restore();
    kernelLog?.close();
  });

  const opts = {
    userMemory: () => [{ address: failNthBuffer().address, length: BUFFER_SIZE }],
    kernelLog: () => kernelLog,
  };

  /* Cover ioas.c */
  testFailNth('basic', basicFailNth, (self, nth) => {
    nth.enable();

    self.fd = nth.openIommufd();
    if (!self.fd) return -1;

    const alloc = self.fd.ioasAlloc();
    if (alloc.errno) return -1;
    const ioasId = alloc.ioasId;

    if (self.fd.ioasIovaRanges({ ioasId, capacity: 10 }).errno) return -1;

    if (self.fd.ioasAllowIovas({ ioasId, ranges: [{ start: 16 * 1024, last: BUFFER_SIZE + 16 * 1024 * 600 - 1 }] }).errno) return -1;

    const map = self.fd.ioasMap({ ioasId, flags: MAP_RW, userVa: failNthBuffer().address, length: BUFFER_SIZE });
    if (map.errno) return -1;
    const iova = map.iova;

    /* .length = sizeof(ranges): struct iommu_iova_range ranges[10] */
    if (self.fd.ioasCopy({ dstIoasId: ioasId, srcIoasId: ioasId, flags: MAP_RW, srcIova: iova, length: 10 * U.iommu_iova_range.sizeof }).errno) return -1;

    if (self.fd.ioasUnmap({ ioasId, iova, length: BUFFER_SIZE }).errno) return -1;
    /* Failure path of no IOVA to unmap */
    self.fd.ioasUnmap({ ioasId, iova, length: BUFFER_SIZE });
    return 0;
  }, opts);

  /* iopt_area_fill_domains() and iopt_area_fill_domain() */
  testFailNth('map_domain', basicFailNth, (self, nth) => {
    self.fd = nth.openIommufd();
    if (!self.fd) return -1;

    const alloc = self.fd.ioasAlloc();
    if (alloc.errno) return -1;
    const ioasId = alloc.ioasId;

    if (self.fd.testSetTempMemoryLimit({ limit: 32 }).errno) return -1;

    nth.enable();

    let md = self.fd.testMockDomain({ ptId: ioasId });
    if (md.errno) return -1;

    if (self.fd.ioasMap({ ioasId, flags: MAP_RW, userVa: failNthBuffer().address, length: 262144 }).errno) return -1;

    if (self.fd.destroy(md.stdevId).errno) return -1;

    md = self.fd.testMockDomain({ ptId: ioasId });
    if (md.errno) return -1;
    return 0;
  }, opts);

  /* iopt_area_fill_domains() and iopt_area_fill_domain() */
  testFailNth('map_file_domain', basicFailNth, (self, nth) => {
    self.fd = nth.openIommufd();
    if (!self.fd) return -1;

    const alloc = self.fd.ioasAlloc();
    if (alloc.errno) return -1;
    const ioasId = alloc.ioasId;

    if (self.fd.testSetTempMemoryLimit({ limit: 32 }).errno) return -1;

    nth.enable();

    let md = self.fd.testMockDomain({ ptId: ioasId });
    if (md.errno) return -1;

    if (self.fd.ioasMapFile({ ioasId, flags: MAP_RW, fd: failNthMfdBuffer().mfd, start: 0, length: 262144 }).errno) return -1;

    if (self.fd.destroy(md.stdevId).errno) return -1;

    md = self.fd.testMockDomain({ ptId: ioasId });
    if (md.errno) return -1;
    return 0;
  }, {
    ...opts,
    // The memfd's pages are pinned too: compared after every run like the buffer's.
    userMemory: () => [...opts.userMemory(), { address: failNthMfdBuffer().buf.address, length: BUFFER_SIZE }],
    requires: (ctx) => requireIoctl(ctx, 'IOMMU_IOAS_MAP_FILE'),
  });

  testFailNth('map_two_domains', basicFailNth, (self, nth) => {
    self.fd = nth.openIommufd();
    if (!self.fd) return -1;

    const alloc = self.fd.ioasAlloc();
    if (alloc.errno) return -1;
    const ioasId = alloc.ioasId;

    if (self.fd.testSetTempMemoryLimit({ limit: 32 }).errno) return -1;

    let md = self.fd.testMockDomain({ ptId: ioasId });
    if (md.errno) return -1;

    nth.enable();

    let md2 = self.fd.testMockDomain({ ptId: ioasId });
    if (md2.errno) return -1;

    if (self.fd.ioasMap({ ioasId, flags: MAP_RW, userVa: failNthBuffer().address, length: 262144 }).errno) return -1;

    if (self.fd.destroy(md.stdevId).errno) return -1;

    if (self.fd.destroy(md2.stdevId).errno) return -1;

    md = self.fd.testMockDomain({ ptId: ioasId });
    if (md.errno) return -1;
    md2 = self.fd.testMockDomain({ ptId: ioasId });
    if (md2.errno) return -1;
    return 0;
  }, opts);

  testFailNth('access_rw', basicFailNth, (self, nth) => {
    const { tmp, tmpBig } = accessRwBuffers();

    self.fd = nth.openIommufd();
    if (!self.fd) return -1;

    const alloc = self.fd.ioasAlloc();
    if (alloc.errno) return -1;
    const ioasId = alloc.ioasId;

    if (self.fd.testSetTempMemoryLimit({ limit: 32 }).errno) return -1;

    const map = self.fd.ioasMap({ ioasId, flags: MAP_RW, userVa: failNthBuffer().address, length: 262144 });
    if (map.errno) return -1;
    const iova = map.iova;

    nth.enable();

    const access = self.fd.testCreateAccess({ ioasId, flags: 0 });
    if (access.errno) return -1;
    self.accessId = access.accessFd;

    {
      const accessRw = (flags: number) => self.fd!.testAccessRw({ accessFd: self.accessId, iova, length: 2 * 32, uptr: tmp.address, flags });

      // READ
      if (accessRw(0).errno) return -1;

      if (accessRw(U.MOCK_ACCESS_RW_WRITE).errno) return -1;

      if (accessRw(U.MOCK_ACCESS_RW_SLOW_PATH).errno) return -1;
      if (accessRw(U.MOCK_ACCESS_RW_SLOW_PATH | U.MOCK_ACCESS_RW_WRITE).errno) return -1;
    }

    {
      if (self.fd.testAccessRw({ accessFd: self.accessId, iova, flags: U.MOCK_ACCESS_RW_SLOW_PATH, length: 8 * 4096, uptr: tmpBig.address }).errno) return -1;
    }
    if (self.fd.closeAccess(self.accessId).errno) return -1;
    self.accessId = 0;
    return 0;
  }, opts);

  /* pages.c access functions */
  testFailNth('access_pin', basicFailNth, (self, nth) => {
    self.fd = nth.openIommufd();
    if (!self.fd) return -1;

    const alloc = self.fd.ioasAlloc();
    if (alloc.errno) return -1;
    const ioasId = alloc.ioasId;

    if (self.fd.testSetTempMemoryLimit({ limit: 32 }).errno) return -1;

    const map = self.fd.ioasMap({ ioasId, flags: MAP_RW, userVa: failNthBuffer().address, length: BUFFER_SIZE });
    if (map.errno) return -1;
    const iova = map.iova;

    const access = self.fd.testCreateAccess({ ioasId, flags: U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES });
    if (access.errno) return -1;
    self.accessId = access.accessFd;

    nth.enable();

    const pages = self.fd.testAccessPages({ accessFd: self.accessId, iova, length: BUFFER_SIZE, uptr: failNthBuffer().address });
    if (pages.errno) return -1;
    const accessPagesId = pages.accessPagesId;

    if (self.fd.testDestroyAccessPages({ accessFd: self.accessId, accessPagesId }).errno) return -1;

    if (self.fd.closeAccess(self.accessId).errno) return -1;
    self.accessId = 0;
    return 0;
  }, opts);

  /* iopt_pages_fill_xarray() */
  testFailNth('access_pin_domain', basicFailNth, (self, nth) => {
    self.fd = nth.openIommufd();
    if (!self.fd) return -1;

    const alloc = self.fd.ioasAlloc();
    if (alloc.errno) return -1;
    const ioasId = alloc.ioasId;

    if (self.fd.testSetTempMemoryLimit({ limit: 32 }).errno) return -1;

    const md = self.fd.testMockDomain({ ptId: ioasId });
    if (md.errno) return -1;

    const map = self.fd.ioasMap({ ioasId, flags: MAP_RW, userVa: failNthBuffer().address, length: BUFFER_SIZE });
    if (map.errno) return -1;
    const iova = map.iova;

    const access = self.fd.testCreateAccess({ ioasId, flags: U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES });
    if (access.errno) return -1;
    self.accessId = access.accessFd;

    nth.enable();

    const pages = self.fd.testAccessPages({ accessFd: self.accessId, iova, length: BUFFER_SIZE, uptr: failNthBuffer().address });
    if (pages.errno) return -1;
    const accessPagesId = pages.accessPagesId;

    if (self.fd.testDestroyAccessPages({ accessFd: self.accessId, accessPagesId }).errno) return -1;

    if (self.fd.closeAccess(self.accessId).errno) return -1;
    self.accessId = 0;

    if (self.fd.destroy(md.stdevId).errno) return -1;
    return 0;
  }, opts);

  /* device.c */
  testFailNth('device', basicFailNth, (self, nth) => {
    self.fd = nth.openIommufd();
    if (!self.fd) return -1;

    const alloc = self.fd.ioasAlloc();
    if (alloc.errno) return -1;
    const ioasId = alloc.ioasId;

    const alloc2 = self.fd.ioasAlloc();
    if (alloc2.errno) return -1;
    const ioasId2 = alloc2.ioasId;

    const iova = U.MOCK_APERTURE_START;
    const fixed = U.IOMMU_IOAS_MAP_FIXED_IOVA | MAP_RW;
    if (self.fd.ioasMap({ ioasId, flags: fixed, userVa: failNthBuffer().address, length: PAGE_SIZE, iova }).errno) return -1;
    if (self.fd.ioasMap({ ioasId: ioasId2, flags: fixed, userVa: failNthBuffer().address, length: PAGE_SIZE, iova }).errno) return -1;

    nth.enable();

    const md = self.fd.testMockDomain({ ptId: ioasId });
    if (md.errno) return -1;
    const { stdevId, idevId } = md;

    {
      // _test_cmd_get_hw_info(): its asserts on success
      const info = getHwInfoCall({ fd: self.fd }, idevId, IOMMU_HW_INFO_TYPE_DEFAULT, U.iommu_test_hw_info.sizeof);
      if (info.errno) return -1;
      expect(info.dataType, 'out_data_type').to.equal(U.IOMMU_HW_INFO_TYPE_SELFTEST);
      expect(info.dataLen, 'data_len').to.equal(U.iommu_test_hw_info.sizeof);
      const hw = U.iommu_test_hw_info.decode(info.data);
      expect(hw.test_reg, 'test_reg').to.equal(U.IOMMU_HW_INFO_SELFTEST_REGVAL);
      expect(hw.flags, 'flags').to.equal(0);
    }

    const hwpt = self.fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: 0, dataType: U.IOMMU_HWPT_DATA_NONE });
    if (hwpt.errno) return -1;

    if (self.fd.testMockDomainReplace({ stdevId, ptId: ioasId2 }).errno) return -1;

    if (self.fd.testMockDomainReplace({ stdevId, ptId: hwpt.hwptId }).errno) return -1;

    // vIOMMU (7.x): a nesting parent, a vIOMMU on it, a vDEVICE, a HW queue, a fault queue with a nested
    // HWPT, a vEVENTQ. The state comparison after every run covers them (lib/lockstep/state.ts).
    if (!kernelFeatures().ioctls.IOMMU_VIOMMU_ALLOC) {
      if (nth.iteration === 0) notChecked(nth.ctx, 'the vIOMMU, vDEVICE, HW queue, fault queue and vEVENTQ allocations', 'kernel lacks IOMMU_VIOMMU_ALLOC');
      return 0;
    }
    const parent = self.fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT, dataType: U.IOMMU_HWPT_DATA_NONE });
    if (parent.errno) return -1;
    const hwptId = parent.hwptId;

    const viommu = self.fd.viommuAlloc({ devId: idevId, hwptId, type: U.IOMMU_VIOMMU_TYPE_SELFTEST });
    if (viommu.errno) return -1;

    if (self.fd.vdeviceAlloc({ viommuId: viommu.viommuId, devId: idevId, virtId: 0 }).errno) return -1;

    const queue = self.fd.hwQueueAlloc({ viommuId: viommu.viommuId, type: U.IOMMU_HW_QUEUE_TYPE_SELFTEST, index: 0, nestingParentIova: iova, length: PAGE_SIZE });
    if (queue.errno) return -1;

    const fault = self.fd.faultQueueAlloc();
    if (fault.errno) return -1;
    self.fd.closeAccess(fault.faultFd);

    // struct iommu_hwpt_selftest { .iotlb = IOMMU_TEST_IOTLB_DEFAULT } at 7.x's size
    const data = new Uint8Array(8);
    new DataView(data.buffer).setUint32(0, U.IOMMU_TEST_IOTLB_DEFAULT, true);
    const faultHwpt = self.fd.hwptAlloc({ devId: idevId, ptId: hwptId, faultId: fault.faultId, flags: U.IOMMU_HWPT_FAULT_ID_VALID, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data });
    if (faultHwpt.errno) return -1;

    const veventq = self.fd.veventqAlloc({ viommuId: viommu.viommuId, type: U.IOMMU_VEVENTQ_TYPE_SELFTEST, depth: 2 });
    if (veventq.errno) return -1;
    self.fd.closeAccess(veventq.veventqFd);
    return 0;
  }, opts);
});
