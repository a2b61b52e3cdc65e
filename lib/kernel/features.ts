// What the running kernel offers, found by asking it, never by its version:
// an ioctl exists if a too-short struct gets EINVAL rather than ENOTTY; a
// test op exists if it does not get EOPNOTSUPP; and so on. Each probe runs
// on its own /dev/iommu open, closed afterwards, so it leaves nothing behind.
import { closeSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { coreSys, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, sys as fullSys, type SysCore } from '../sys/index.ts';
import { vmPinAndLckKiBOf } from '../sys/proc-status.ts';
import { pagemapReader, sharedZeroPageAddress } from '../sys/pagemap.ts';
import * as U from '../uapi/index.ts';
import { contigLeafDirty } from './dirty-leaf.ts';
import { dmabufGetSeen } from './fd-table.ts';
import { type1EndWrapSteps } from './type1-end-wrap.ts';
import { IommuFd } from './iommufd.ts';
import { VfioContainer, VfioDevice, VfioGroup } from './vfio.ts';
import { borrowableVfioCdevs, borrowableVfioGroups } from './device-choice.ts';
import { EBADE, permutedConsecutivePages, topAreaRunSteps } from './top-area-run.ts';
import { attachCompatDevice } from './compat-attach.ts';

const ENOENT = 2;
const EINVAL = 22;
const ENOTTY = 25;
const EOPNOTSUPP = 95;
const EOVERFLOW = 75;

// 7.x's uAPI (lib/uapi is 7.2.13's headers) is probed like everything else:
// a kernel that has a feature is tested with it and one that lacks it is told
// apart. Kept here for the importers of lib/kernel, from lib/uapi:
export { IOMMU_HW_INFO_FLAG_INPUT_TYPE, MOCK_FLAGS_DEVICE_PASID, MOCK_PASID_WIDTH } from '../uapi/index.ts';

/** Every IOMMU_TEST_CMD op of 7.2.13's iommufd_test.h, by its name without IOMMU_TEST_OP_. */
export const TEST_OPS = {
  ADD_RESERVED: U.IOMMU_TEST_OP_ADD_RESERVED,
  MOCK_DOMAIN: U.IOMMU_TEST_OP_MOCK_DOMAIN,
  MD_CHECK_MAP: U.IOMMU_TEST_OP_MD_CHECK_MAP,
  MD_CHECK_REFS: U.IOMMU_TEST_OP_MD_CHECK_REFS,
  CREATE_ACCESS: U.IOMMU_TEST_OP_CREATE_ACCESS,
  DESTROY_ACCESS_PAGES: U.IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  ACCESS_PAGES: U.IOMMU_TEST_OP_ACCESS_PAGES,
  ACCESS_RW: U.IOMMU_TEST_OP_ACCESS_RW,
  SET_TEMP_MEMORY_LIMIT: U.IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
  MOCK_DOMAIN_REPLACE: U.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  ACCESS_REPLACE_IOAS: U.IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  MOCK_DOMAIN_FLAGS: U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  DIRTY: U.IOMMU_TEST_OP_DIRTY,
  MD_CHECK_IOTLB: U.IOMMU_TEST_OP_MD_CHECK_IOTLB,
  TRIGGER_IOPF: U.IOMMU_TEST_OP_TRIGGER_IOPF,
  DEV_CHECK_CACHE: U.IOMMU_TEST_OP_DEV_CHECK_CACHE,
  TRIGGER_VEVENT: U.IOMMU_TEST_OP_TRIGGER_VEVENT,
  PASID_ATTACH: U.IOMMU_TEST_OP_PASID_ATTACH,
  PASID_REPLACE: U.IOMMU_TEST_OP_PASID_REPLACE,
  PASID_DETACH: U.IOMMU_TEST_OP_PASID_DETACH,
  PASID_CHECK_HWPT: U.IOMMU_TEST_OP_PASID_CHECK_HWPT,
  DMABUF_GET: U.IOMMU_TEST_OP_DMABUF_GET,
  DMABUF_REVOKE: U.IOMMU_TEST_OP_DMABUF_REVOKE,
} as const;

/**
 * iommufd ioctls by name whose struct lib/uapi's IOMMUFD_IOCTL_OPS may not
 * carry yet: all are _IO(), so the number alone is enough to probe them.
 */
const IOCTLS_BY_NUMBER: Readonly<Record<string, number>> = {
  IOMMU_IOAS_MAP_FILE: U.IOMMU_IOAS_MAP_FILE,
  IOMMU_VIOMMU_ALLOC: U.IOMMU_VIOMMU_ALLOC,
  IOMMU_VDEVICE_ALLOC: U.IOMMU_VDEVICE_ALLOC,
  IOMMU_IOAS_CHANGE_PROCESS: U.IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_VEVENTQ_ALLOC: U.IOMMU_VEVENTQ_ALLOC,
  IOMMU_HW_QUEUE_ALLOC: U.IOMMU_HW_QUEUE_ALLOC,
};
export type TestOpName = keyof typeof TEST_OPS;

export interface KernelFeatures {
  /** /dev/iommu opens; `iommufdError` says why not. */
  iommufd: boolean;
  iommufdError?: string;
  /** Each iommufd ioctl of 7.2.13's header by name (IOMMU_DESTROY …, IOMMU_HW_QUEUE_ALLOC, IOMMU_TEST_CMD). */
  ioctls: Record<string, boolean>;
  /** Each IOMMU_TEST_CMD op (CONFIG_IOMMUFD_TEST). */
  testOps: Record<TestOpName, boolean>;
  /** A mock domain can be attached (false, for example, while intel-iommu is active: see README). */
  mockDomain: boolean;
  mockDomainErrno: number;
  /**
   * Why the mock domain fails, when a cause is found: a hardware IOMMU driver
   * that owns every device without a firmware node, the mock device included
   * (see README, "Why mock domains need their own boot"). Undefined while the
   * mock domain works, and also when it fails for no cause found: a kernel bug.
   */
  mockDomainBlocker?: string;
  /** IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS device flags the kernel knows. */
  mockDevFlags: { noDirty: boolean; hugeIova: boolean; pasid: boolean };

  /** IOMMU_GET_HW_INFO takes IOMMU_HW_INFO_FLAG_INPUT_TYPE (an input data type). */
  hwInfoInputType: boolean;
  /**
   * A mock device attaches to an IOPF-capable (fault_id) nested HWPT. The mock
   * iommu enables IOMMU_DEV_FEAT_IOPF on an iopf queue that exists only with
   * CONFIG_IOMMU_IOPF (selected by INTEL_IOMMU_SVM, AMD_IOMMU,
   * ARM_SMMU_V3_SVA..., not by IOMMUFD_TEST): without it, selftest.c
   * mock_dev_enable_feat() fails with ENODEV. `errno` is the attach's.
   */
  mockIopf: { works: boolean; errno: number };
  /** IOMMU_HWPT_ALLOC flags the kernel knows (pasid: IOMMU_HWPT_ALLOC_PASID, 7.x). */
  hwptAllocFlags: { nestParent: boolean; dirtyTracking: boolean; faultIdValid: boolean; pasid: boolean };
  options: { rlimitMode: boolean; hugePages: boolean };
  /**
   * type1Nesting: real type1 claims VFIO_TYPE1_NESTING_IOMMU (CHECK_EXTENSION on a bare /dev/vfio/vfio is 1).
   * type1: the bare container answers CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU) with 1, so type1 is a registered
   * driver and type1Nesting is its own answer, whether or not a group can be attached (no MSI isolation).
   */
  vfio: { container: boolean; compatOnIommufd: boolean; type1Nesting: boolean; type1: boolean };
  faultInjection: { failNth: boolean; failslab: boolean; failPageAlloc: boolean; failIommufd: boolean };
  /**
   * The kernel has hugetlbfs (CONFIG_HUGETLBFS: /proc/meminfo shows a
   * Hugepagesize), so MAP_HUGETLB can work; whether pages are free is the
   * machine's reservation (hugetlbPool()), read when a mapping fails.
   */
  hugetlb: boolean;
  /** The default huge page size MAP_HUGETLB uses, in bytes (0 without hugetlbfs). */
  hugetlbPageSize: number;
  /**
   * Facts about the running kernel where iommufd changed after 6.12, each
   * seen on a mock device (false without one); lib/lockstep/models.ts turns
   * them into the model's KernelBehaviour (lib/model/kernel-behaviour.ts
   * names the kernel change behind each).
   */
  changes: {
    /** A paging HWPT_ALLOC takes struct iommu_hwpt_selftest (its pagetable_type): the generic page table mock. */
    mockGenericPt: boolean;
    /** IOMMU_HWPT_INVALIDATE on an IOAS's ID is EINVAL (any object type looked up), not ENOENT. */
    hwptInvalidateAnyObject: boolean;
    /** IOMMU_GET_HW_INFO on a mock device sets IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED. */
    hwInfoAtsNotSupported: boolean;
    /** The IOMMU_IOAS_MAP_FILE ioctl exists (a too-short struct is EINVAL, not ENOTTY). */
    ioasMapFile: boolean;
    /**
     * GET_DIRTY_BITMAP reports a dirty two-item leaf of the generic page table mock as its first item
     * only (lib/kernel/dirty-leaf.ts; docs/findings/KF-0002.md).
     */
    dirtyContigLeafShort: boolean;
    /** GET_DIRTY_BITMAP of length 0 passes the range checks (EOPNOTSUPP on a domain without dirty tracking), not EINVAL. */
    dirtyBitmapZeroLength: boolean;
    /** A paging HWPT_ALLOC takes IOMMU_HWPT_FAULT_ID_VALID (a fault ID never handed out is ENOENT, not EOPNOTSUPP). */
    hwptPagingFault: boolean;
    /**
     * IOMMU_TEST_OP_DMABUF_GET returns 0 and installs its dma-buf's fd without reporting it
     * (docs/findings/KF-0005.md; seen in /proc/self/fd), not the fd as its value.
     */
    dmabufGetFdUnreported: boolean;
  };
}

/** /proc/meminfo's huge page pool, read afresh: HugePages_Total, HugePages_Free and Hugepagesize in bytes (0s without hugetlbfs). */
export function hugetlbPool(meminfo?: string): { total: number; free: number; pageSize: number } {
  let text = meminfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/meminfo', 'utf8');
    } catch {
      text = '';
    }
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { total: field('HugePages_Total'), free: field('HugePages_Free'), pageSize: field('Hugepagesize') * 1024 };
}

/**
 * A hardware IOMMU driver registered with no firmware node, which then owns
 * the selftest's mock device too (README, "Why mock domains need their own
 * boot"): found in /sys/class/iommu by the attribute group each driver adds
 * to its units (drivers/iommu/intel/iommu.c "intel-iommu",
 * drivers/iommu/amd/init.c "amd-iommu"). Undefined when there is none.
 */
export function hardwareIommuOwningMockBus(classDir = '/sys/class/iommu'): string | undefined {
  let units: string[];
  try {
    units = readdirSync(classDir).sort();
  } catch {
    return undefined;
  }
  for (const driver of ['intel-iommu', 'amd-iommu']) {
    const unit = units.find((u) => existsSync(`${classDir}/${u}/${driver}`));
    if (unit) return `${driver} is active (${classDir}/${unit})`;
  }
  return undefined;
}

function probeIoctls(fd: IommuFd): Record<string, boolean> {
  const requests: Record<string, number> = { ...IOCTLS_BY_NUMBER };
  for (const op of [...U.IOMMUFD_IOCTL_OPS, ...U.IOMMUFD_VIOMMU_IOCTL_OPS, U.IOMMU_TEST_CMD_OP]) requests[op.ioctl] = op.request;
  const ioctls: Record<string, boolean> = {};
  // A 4-byte struct whose size field says 4 is shorter than every min_size
  // (iommu_ioas_change_process's is 8): main.c's iommufd_fops_ioctl answers
  // EINVAL before any handler runs, and an unknown number ENOTTY.
  const short = new Uint8Array(new Uint32Array([4]).buffer);
  for (const [name, request] of Object.entries(requests)) {
    const r = fd.ioctl(request, short.slice());
    ioctls[name] = r.errno !== ENOTTY;
  }
  return ioctls;
}

function probeTestOps(fd: IommuFd, testCmd: boolean): Record<TestOpName, boolean> {
  const ops = {} as Record<TestOpName, boolean>;
  for (const [name, op] of Object.entries(TEST_OPS) as [TestOpName, number][]) {
    if (!testCmd) {
      ops[name] = false;
      continue;
    }
    // Zeroed arguments: a known op fails on them (ENOENT for the unknown ID
    // or dev_id 0, EINVAL for limit 0 or a DMABUF_GET of length 0, EBADF for
    // DMABUF_REVOKE of fd -1) or succeeds harmlessly; only an unknown op gets
    // EOPNOTSUPP (selftest.c iommufd_test()'s default). DMABUF_REVOKE gets
    // -1: fd 0 could be some other dma-buf, which that op answers EOPNOTSUPP.
    const probeId = name === 'SET_TEMP_MEMORY_LIMIT' ? 0 : 0x7fffffff;
    const fields = name === 'SET_TEMP_MEMORY_LIMIT' ? { memory_limit: { limit: 0 } } : name === 'DMABUF_REVOKE' ? { dmabuf_revoke: { dmabuf_fd: -1 } } : {};
    const r = fd.testCmd(op, probeId, fields);
    ops[name] = r.errno !== EOPNOTSUPP && r.errno !== ENOTTY;
  }
  return ops;
}

/**
 * Fault injection as tools/testing/selftests/iommu/iommufd_fail_nth.c uses
 * it: /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION) and the debugfs
 * attributes it tunes (CONFIG_FAULT_INJECTION_DEBUG_FS with CONFIG_FAILSLAB,
 * CONFIG_FAIL_PAGE_ALLOC; fail_iommufd is CONFIG_IOMMUFD_TEST's own). Read
 * afresh on each call, not cached: debugfs may be mounted after the probe.
 */
export function probeFaultInjection(debugfs = '/sys/kernel/debug'): KernelFeatures['faultInjection'] {
  return {
    failNth: existsSync('/proc/thread-self/fail-nth'),
    failslab: existsSync(`${debugfs}/failslab`),
    failPageAlloc: existsSync(`${debugfs}/fail_page_alloc`),
    failIommufd: existsSync(`${debugfs}/fail_iommufd`),
  };
}

/**
 * Why /dev/iommu did not open. ENOENT alone does not prove the kernel lacks
 * iommufd (a missing device node would do the same): iommufd registers the
 * misc device "iommu", so the kernel has it exactly when /sys/class/misc/iommu exists.
 */
export function iommufdAbsence(errno: number, sysClassMisc = '/sys/class/misc'): string {
  const registered = existsSync(`${sysClassMisc}/iommu`);
  if (errno === 2) {
    return registered
      ? '/dev/iommu does not exist, although the kernel registered iommufd (/sys/class/misc/iommu): the device node is missing'
      : `/dev/iommu does not exist and the kernel has no iommufd (no ${sysClassMisc}/iommu: built without CONFIG_IOMMUFD, or older than 6.2)`;
  }
  return `/dev/iommu cannot be opened (errno ${errno})`;
}

/** Whether the running kernel has iommufd, whatever became of /dev/iommu: it registers the misc device "iommu". */
export function kernelHasIommufd(sysClassMisc = '/sys/class/misc'): boolean {
  return existsSync(`${sysClassMisc}/iommu`);
}

/** Attaches the mock device to an IOPF-capable nested HWPT (see KernelFeatures.mockIopf); the fd's close undoes it all. */
function probeMockIopf(fd: IommuFd, ioasId: number, idevId: number, stdevId: number): KernelFeatures['mockIopf'] {
  const parent = fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
  const fault = fd.faultQueueAlloc();
  try {
    if (parent.errno !== 0 || fault.errno !== 0) return { works: false, errno: parent.errno || fault.errno };
    // Up to iotlb: 6.12's struct ends there and refuses a longer data_len; 7.x takes it (pagetable_type 0).
    const data = U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT }, { length: U.iommu_hwpt_selftest.offsetEnd('iotlb') });
    const nested = fd.hwptAlloc({ devId: idevId, ptId: parent.hwptId, flags: U.IOMMU_HWPT_FAULT_ID_VALID, faultId: fault.faultId, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data });
    if (nested.errno !== 0) return { works: false, errno: nested.errno };
    const r = fd.testMockDomainReplace({ stdevId, ptId: nested.hwptId });
    // Back to the IOAS, so the features' fd closes as it would have.
    if (r.errno === 0) fd.testMockDomainReplace({ stdevId, ptId: ioasId });
    return { works: r.errno === 0, errno: r.errno };
  } finally {
    if (fault.errno === 0) closeSync(fault.faultFd);
  }
}

export function probeFeatures(sys: SysCore = coreSys()): KernelFeatures {
  const features: KernelFeatures = {
    iommufd: false,
    ioctls: {},
    testOps: Object.fromEntries(Object.keys(TEST_OPS).map((k) => [k, false])) as Record<TestOpName, boolean>,
    mockDomain: false,
    mockDomainErrno: 0,
    mockDevFlags: { noDirty: false, hugeIova: false, pasid: false },
    hwInfoInputType: false,
    mockIopf: { works: false, errno: 0 },
    hwptAllocFlags: { nestParent: false, dirtyTracking: false, faultIdValid: false, pasid: false },
    options: { rlimitMode: false, hugePages: false },
    vfio: { container: false, compatOnIommufd: false, type1Nesting: true, type1: false },
    faultInjection: probeFaultInjection(),
    hugetlb: false,
    changes: { mockGenericPt: false, hwptInvalidateAnyObject: false, hwInfoAtsNotSupported: false, ioasMapFile: false, dirtyContigLeafShort: false, dirtyBitmapZeroLength: false, hwptPagingFault: false, dmabufGetFdUnreported: false },
    hugetlbPageSize: 0,
  };
  const { container } = VfioContainer.open(sys);
  if (container) {
    features.vfio.container = container.getApiVersion().errno === 0;
    // With no driver set, vfio_ioctl_check_extension asks every registered IOMMU driver.
    if (features.vfio.container) features.vfio.type1Nesting = container.checkExtension(U.VFIO_TYPE1_NESTING_IOMMU).value === 1;
    // vfio_container_ioctl_check_extension polls every registered driver; only type1's
    // vfio_iommu_type1_check_extension says 1 to VFIO_TYPE1v2_IOMMU with no container data (7.2.13 container.c
    // 205-220, vfio_iommu_type1.c 2727-2730).
    if (features.vfio.container) features.vfio.type1 = container.checkExtension(U.VFIO_TYPE1v2_IOMMU).value === 1;
    container.close();
  }
  features.hugetlbPageSize = hugetlbPool().pageSize;
  features.hugetlb = features.hugetlbPageSize > 0;
  const opened = IommuFd.open(sys);
  if (!opened.iommufd) {
    features.iommufdError = iommufdAbsence(opened.errno);
    return features;
  }
  const fd = opened.iommufd;
  try {
    features.iommufd = true;
    features.ioctls = probeIoctls(fd);
    features.changes.ioasMapFile = features.ioctls.IOMMU_IOAS_MAP_FILE === true;
    features.testOps = probeTestOps(fd, features.ioctls.IOMMU_TEST_CMD === true);
    if (features.testOps.DMABUF_GET) features.changes.dmabufGetFdUnreported = probeDmabufGetFdUnreported(fd);
    features.options.rlimitMode = fd.option({ optionId: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_GET }).errno === 0;
    // HUGE_PAGES on object 0: ENOENT when the option exists, EOPNOTSUPP when not.
    features.options.hugePages = fd.option({ optionId: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_GET, objectId: 0 }).errno !== EOPNOTSUPP;
    features.vfio.compatOnIommufd = VfioContainer.compatOn(fd).getApiVersion().errno === 0;
    // An unknown hw_info flag is EOPNOTSUPP before the device lookup; a known one with a bad device is ENOENT.
    if (features.ioctls.IOMMU_GET_HW_INFO) features.hwInfoInputType = fd.getHwInfo({ devId: 0x7fffffff, dataLen: 0, flags: U.IOMMU_HW_INFO_FLAG_INPUT_TYPE }).errno !== EOPNOTSUPP;
    if (features.testOps.MOCK_DOMAIN) {
      const ioas = fd.ioasAlloc();
      const mock = fd.testMockDomain({ ptId: ioas.ioasId });
      features.mockDomain = mock.errno === 0;
      features.mockDomainErrno = mock.errno;
      if (mock.errno === EINVAL) {
        const owner = hardwareIommuOwningMockBus();
        if (owner) features.mockDomainBlocker = `${owner}: it owns the mock device, so IOMMU_TEST_OP_MOCK_DOMAIN fails with EINVAL (see README, "Why mock domains need their own boot")`;
      }
      if (features.testOps.MOCK_DOMAIN_FLAGS) {
        // An unknown device flag is EINVAL before the IOAS lookup; a known one with a bad IOAS is ENOENT.
        const devFlagKnown = (devFlags: number) => fd.testMockDomainFlags({ ptId: 0x7fffffff, devFlags }).errno !== EINVAL;
        features.mockDevFlags.noDirty = devFlagKnown(U.MOCK_FLAGS_DEVICE_NO_DIRTY);
        features.mockDevFlags.hugeIova = devFlagKnown(U.MOCK_FLAGS_DEVICE_HUGE_IOVA);
        features.mockDevFlags.pasid = devFlagKnown(U.MOCK_FLAGS_DEVICE_PASID);
      }
      if (mock.errno === 0) probeChanges(fd, ioas.ioasId, mock.idevId, features);
      if (mock.errno === 0 && features.ioctls.IOMMU_HWPT_ALLOC) {
        // Flags are checked once a device is found: EOPNOTSUPP means unknown.
        const flagKnown = (flags: number) => {
          const r = fd.hwptAlloc({ flags, devId: mock.idevId, ptId: ioas.ioasId });
          if (r.errno === 0) fd.destroy(r.hwptId);
          return r.errno !== EOPNOTSUPP;
        };
        features.hwptAllocFlags.nestParent = flagKnown(U.IOMMU_HWPT_ALLOC_NEST_PARENT);
        features.hwptAllocFlags.dirtyTracking = flagKnown(U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
        features.hwptAllocFlags.faultIdValid = flagKnown(U.IOMMU_HWPT_FAULT_ID_VALID);
        // hw_pagetable.c valid_flags and selftest.c mock_domain_alloc_paging_flags' PAGING_FLAGS take it on any mock device.
        features.hwptAllocFlags.pasid = flagKnown(U.IOMMU_HWPT_ALLOC_PASID);
        if (features.ioctls.IOMMU_FAULT_QUEUE_ALLOC) features.mockIopf = probeMockIopf(fd, ioas.ioasId, mock.idevId, mock.stdevId);
      }
    }
  } finally {
    fd.close();
  }
  return features;
}

/**
 * Whether IOMMU_TEST_OP_DMABUF_GET's value is its dma-buf's fd: one page's dma-buf, with the process's
 * fd table listed before and after. 7.3-rc7's iommufd_test_dmabuf_get returns 0 after dma_buf_fd
 * installed the fd (KF-0005); 7.2.13's returns the fd. Every fd the call made is closed again.
 */
function probeDmabufGetFdUnreported(fd: IommuFd): boolean {
  const { errno, value, made } = dmabufGetSeen(fd, 4096);
  // Where fd 0 was free the dma-buf takes it, and 0 is then its fd either way.
  return errno === 0 && value === 0 && made.length === 1 && made[0]!.fd !== 0;
}

/**
 * The facts behind KernelFeatures.changes, on the probe's IOAS and mock
 * device. Each looks at one uAPI fact, not at the outputs the model predicts
 * from it (a mock domain's page sizes, dirty granularity and so on follow
 * from the first).
 */
function probeChanges(fd: IommuFd, ioasId: number, idevId: number, features: KernelFeatures): void {
  if (features.ioctls.IOMMU_HWPT_ALLOC) {
    // struct iommu_hwpt_selftest { iotlb, pagetable_type = MOCK_IOMMUPT_DEFAULT }: the xarray mock's
    // mock_domain_alloc_user refuses any user data for a paging domain (EOPNOTSUPP).
    const r = fd.hwptAlloc({ devId: idevId, ptId: ioasId, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data: new Uint8Array(8) });
    if (r.errno === 0) fd.destroy(r.hwptId);
    features.changes.mockGenericPt = r.errno === 0;
  }
  if (features.ioctls.IOMMU_HWPT_INVALIDATE) {
    features.changes.hwptInvalidateAnyObject = fd.hwptInvalidate({ hwptId: ioasId, dataType: U.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, entryLen: 0, entryNum: 0, entries: null }).errno === EINVAL;
  }
  if (features.ioctls.IOMMU_GET_HW_INFO) {
    const info = fd.getHwInfo({ devId: idevId, dataLen: 0 });
    features.changes.hwInfoAtsNotSupported = info.errno === 0 && (info.capabilities & BigInt(U.IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED)) !== 0n;
  }
  if (features.ioctls.IOMMU_HWPT_ALLOC && features.ioctls.IOMMU_HWPT_GET_DIRTY_BITMAP) {
    // A paging HWPT without dirty tracking (no walk can start) read at IOVA 0 for length 0:
    // iommufd_check_iova_range's `if (!bitmap->length) return -EINVAL` is gone from 7.x.
    const hwpt = fd.hwptAlloc({ devId: idevId, ptId: ioasId });
    if (hwpt.errno === 0) {
      const r = fd.hwptGetDirtyBitmap({ hwptId: hwpt.hwptId, iova: 0n, length: 0n, pageSize: 4096n, bitmap: new Uint8Array(8) });
      features.changes.dirtyBitmapZeroLength = r.errno === EOPNOTSUPP;
      fd.destroy(hwpt.hwptId);
    }
  }
  // hwptPagingFault: 7.x's iommufd_hwpt_paging_alloc lists IOMMU_HWPT_FAULT_ID_VALID among its valid flags,
  // so the fault ID (0: never an object) is looked up after the domain is made.
  if (features.ioctls.IOMMU_HWPT_ALLOC) {
    const r = fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: U.IOMMU_HWPT_FAULT_ID_VALID, faultId: 0 });
    if (r.errno === 0) fd.destroy(r.hwptId);
    features.changes.hwptPagingFault = r.errno === ENOENT;
  }
  if (features.changes.mockGenericPt && features.ioctls.IOMMU_HWPT_GET_DIRTY_BITMAP && features.testOps.DIRTY) {
    try {
      features.changes.dirtyContigLeafShort = contigLeafDirty(fd, fullSys(), idevId)?.wholeLeaf === 0b01;
    } catch {
      // no addon (mmap): leave it false
    }
  }
}

/**
 * Whether real type1 (/dev/vfio/vfio) answers a VFIO_IOMMU_MAP_DMA whose IOVA range wraps with EOVERFLOW
 * rather than EINVAL. It borrows the first viable VFIO group that opens (the viommu profile's vfio-pci
 * device, once bound) to ask: a MAP_DMA of 8 KiB at 2^64 - 4 KiB. Nothing is mapped either way, and the
 * group and container are closed again. Null where no group could be borrowed (none bound yet, or busy):
 * asked again next time; an answer is kept.
 */
let type1Wrap: boolean | null = null;
export function type1WrapOverflow(sys: SysCore = coreSys()): boolean | null {
  type1Wrap ??= probeType1Wrap(sys);
  return type1Wrap;
}

function probeType1Wrap(sys: SysCore): boolean | null {
  return withBorrowedType1(sys, (container) => {
    const rw = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
    const errno = container.mapDma({ flags: rw, vaddr: 0x10000n, iova: 0xffff_ffff_ffff_f000n, size: 0x2000n }).errno;
    return errno === EOVERFLOW || errno === EINVAL ? errno === EOVERFLOW : null;
  });
}

/**
 * vfio.h's 7.x additions to the VFIO device cdev, asked of a real one: it
 * borrows the first /dev/vfio/devices/vfioN that opens and binds to a fresh
 * iommufd (the viommu profile's vfio-pci device). Everything is closed again.
 * Null where no cdev could be borrowed (none, or busy): asked again next
 * time; an answer is kept.
 */
export interface VfioCdevFeatures {
  /** The cdev asked. */
  device: string;
  /**
   * VFIO_DEVICE_ATTACH_PASID / VFIO_DEVICE_DETACH_PASID are known, from a detach of a PASID never
   * attached: device_cdev.c answers an unknown flag EINVAL (6.12: any flag), a known one EOPNOTSUPP
   * when the driver has no pasid_detach_ioas, else 0 (nothing attached, nothing done).
   */
  pasidFlags: boolean;
  /** The device's driver attaches PASIDs (pasid_attach_ioas / pasid_detach_ioas). */
  pasidDriver: boolean;
  /**
   * VFIO_DEVICE_FEATURE_DMA_BUF answers a PROBE|GET with 0 (vfio_pci_core_feature_dma_buf); `dmaBufErrno`
   * otherwise: ENOTTY where the kernel lacks it (6.12, or no CONFIG_VFIO_PCI_DMABUF), EOPNOTSUPP where
   * the driver cannot export this device's MMIO (no get_dmabuf_phys).
   */
  dmaBuf: boolean;
  dmaBufErrno: number;
}
let cdevFeatures: VfioCdevFeatures | null = null;
export function vfioCdevFeatures(sys: SysCore = coreSys()): VfioCdevFeatures | null {
  cdevFeatures ??= probeVfioCdev(sys);
  return cdevFeatures;
}

/** What a probe may borrow (device-choice.ts lists it), or nothing where the list cannot be read: no answer then. */
function borrowable(list: () => string[]): string[] {
  try {
    return list();
  } catch {
    return [];
  }
}

function probeVfioCdev(sys: SysCore): VfioCdevFeatures | null {
  // Only the device under audit's cdev where one is named (lib/kernel/device-choice.ts).
  for (const name of borrowable(borrowableVfioCdevs)) {
    const path = `/dev/vfio/devices/${name}`;
    const { device } = VfioDevice.openCdev(path, sys);
    if (!device) continue;
    const { iommufd } = IommuFd.open(sys);
    try {
      if (!iommufd || device.bindIommufd(iommufd.fd).errno) continue;
      const detach = device.detachPasidPt(1).errno;
      if (detach !== 0 && detach !== EOPNOTSUPP && detach !== EINVAL) continue;
      const dmaBufErrno = device.getDmaBuf({ regionIndex: 0, openFlags: 0, ranges: [], probe: true }).errno;
      return { device: path, pasidFlags: detach !== EINVAL, pasidDriver: detach === 0, dmaBuf: dmaBufErrno === 0, dmaBufErrno };
    } finally {
      device.close();
      iommufd?.close();
    }
  }
  return null;
}


// VFIO type1 facts that differ between kernels, each read on a borrowed group (6.1, Debian 12's kernel,
// is the older side of them).

/**
 * Runs `fn` on a type1v2 container that holds a viable VFIO group (the viommu profile's vfio-pci
 * device, once bound), then closes both: the first group whose container gives an answer (`fn` returns
 * null when this one could not tell, and the next group is tried). Null where no group answered.
 */
function withBorrowedType1<T>(sys: SysCore, fn: (container: VfioContainer, group: VfioGroup) => T | null): T | null {
  // Only the device under audit's group where one is named (lib/kernel/device-choice.ts).
  for (const name of borrowable(borrowableVfioGroups)) {
    const { group } = VfioGroup.open(name, sys);
    if (!group) continue;
    const { container } = VfioContainer.open(sys);
    try {
      if (!container || !group.getStatus().viable || group.setContainer(container.fd).errno) continue;
      if (container.setIommu(U.VFIO_TYPE1v2_IOMMU).errno) continue;
      const answer = fn(container, group);
      if (answer !== null) return answer;
    } finally {
      container?.close();
      group.close();
    }
  }
  return null;
}

/**
 * Whether VFIO_IOMMU_GET_INFO lays its capabilities out 8-byte aligned: "vfio: align capability
 * structures" (vfio_main.c:vfio_info_cap_add, `size = ALIGN(size, sizeof(u64))`, Linux 6.6). Before it
 * (6.1) each capability takes its own size, so dma_avail's 12 bytes leave what follows at 4 mod 8 and the
 * whole argsz 4 bytes shorter. Seen on the borrowed container's chain: every offset and the argsz a
 * multiple of 8. Null where no group could be borrowed; an answer is kept.
 */
let type1CapsAligned: boolean | null = null;
export function type1InfoCapsAligned(sys: SysCore = coreSys()): boolean | null {
  type1CapsAligned ??= withBorrowedType1(sys, (container) => {
    const info = container.getInfo();
    if (info.errno !== 0 || !info.caps.ok || info.caps.caps.length === 0) return null;
    return info.argsz % 8 === 0 && info.caps.caps.every((c) => c.offset % 8 === 0);
  });
  return type1CapsAligned;
}

/**
 * Whether a read-only VFIO_IOMMU_MAP_DMA of a never-written private anonymous page pins the shared zero
 * page itself. Before "mm/gup: reliable R/O long-term pinning in COW mappings" (Linux 6.2) a FOLL_PIN
 * without FOLL_WRITE follows the read fault's zero-page PTE (6.1 mm/gup.c:follow_page_pte; 6.1's
 * gup_must_unshare returns false for a non-anonymous page); since then gup_must_unshare
 * (mm/internal.h) makes FOLL_LONGTERM unshare it into a new anonymous page in a COW mapping. Seen in
 * /proc/self/pagemap: after the pin, the page's physical address is the zero page's
 * (sys/pagemap.ts:sharedZeroPageAddress) or not. Null where no group could be borrowed or PFNs are
 * hidden (not CAP_SYS_ADMIN); an answer is kept.
 */
let type1ZeroPagePin: boolean | null = null;
export function type1ReadOnlyPinsZeroPage(sys: SysCore = coreSys()): boolean | null {
  if (type1ZeroPagePin !== null) return type1ZeroPagePin;
  type1ZeroPagePin = withBorrowedType1(sys, (container) => {
    // Opened once a group is borrowed, and kept (pagemapReader holds its fd): the answer is kept too.
    const physical = pagemapReader();
    const zero = sharedZeroPageAddress(sys, physical);
    if (zero === null || physical === null) return null;
    const info = container.getInfo();
    const ranges = info.errno === 0 && info.caps.ok ? info.caps.caps.flatMap((c) => (c.kind === 'iova_range' ? c.iova_ranges : [])) : [];
    const PAGE = 4096n;
    const range = ranges.find((r) => r.end - ((r.start + PAGE - 1n) & ~(PAGE - 1n)) >= PAGE - 1n);
    if (!range) return null;
    const iova = (range.start + PAGE - 1n) & ~(PAGE - 1n);
    const page = sys.mmap(Number(PAGE), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (typeof page === 'number') return null;
    try {
      if (container.mapDma({ flags: U.VFIO_DMA_MAP_FLAG_READ, vaddr: page.address, iova, size: PAGE }).errno !== 0) return null;
      const pinned = physical(page.address);
      container.unmapDma({ iova, size: PAGE });
      return pinned === zero;
    } finally {
      sys.munmap(page);
    }
  });
  return type1ZeroPagePin;
}

// KF-0006: type1's unmap of a mapping that ends at IOVA 2^64
/**
 * Whether removing a type1 mapping whose last byte is IOVA 2^64 - 1 leaves its pages charged (KF-0006,
 * docs/findings/KF-0006.md: 6.12's vfio_unmap_unpin computes `end = dma->iova + dma->size`, which wraps to
 * 0, so nothing is unmapped, unpinned or uncharged). Asked on a borrowed type1v2 container: a forked child,
 * kept alive, maps the last page of the IOVA space (its mm takes the charge: `dma->mm = current->mm`), this
 * process unmaps it (its range; 6.12's UNMAP_DMA finds nothing, its end wraps as well) and takes the group
 * out of the container (which removes every mapping), and the child's VmLck says whether the page was
 * given back. The leak, if any, dies
 * with the child's mm (the page itself stays pinned); this process is never charged. Null where it cannot
 * tell: no group to borrow, no fork (the koffi backend), or a platform whose IOMMU aperture stops short of
 * 2^64 (VT-d: the MAP_DMA is refused, so no such mapping can exist there). An answer is kept.
 */
let type1EndWrap: boolean | 'refused' | null = null;
export function type1UnmapEndWrapLeaks(): boolean | null {
  type1EndWrap ??= withBorrowedType1(coreSys(), (container, group) => type1EndWrapProbe(container, group));
  return type1EndWrap === 'refused' ? null : type1EndWrap;
}

/**
 * What type1UnmapEndWrapLeaks does on a type1v2 container that holds a group (the steps: type1EndWrapSteps,
 * which KF-0006's test takes too): 'refused' where the platform cannot make the mapping (kept: asking again
 * cannot change it), null where it cannot tell otherwise.
 */
function type1EndWrapProbe(container: VfioContainer, group: VfioGroup): boolean | 'refused' | null {
  let s: ReturnType<typeof fullSys>;
  try {
    s = fullSys();
  } catch {
    return null; // no addon (the koffi backend): no fork
  }
  const page = s.mmap(4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  if (typeof page === 'number') return null;
  let pid = 0;
  try {
    new Uint8Array(page.buffer)[0] = 1;
    const seen = type1EndWrapSteps(s, container, group, page);
    if (seen.step === 'fork') return null;
    pid = seen.pid;
    if (seen.step === 'map') return 'refused';
    if (seen.unmap.errno !== 0 || seen.unset !== 0 || seen.charged === 0) return null;
    return seen.left === seen.charged;
  } finally {
    if (pid) s.forkRelease(pid);
    s.munmap(page);
  }
}

// KF-0007: an IOAS area whose last IOVA is 2^64 - 1 is mapped into a domain as one physical run
/**
 * Whether IOMMU_IOAS_MAP of an area whose last byte is IOVA 2^64 - 1 maps it into a hardware domain as one
 * physically contiguous run from the area's first page, instead of the pages the area pinned (KF-0007,
 * docs/findings/KF-0007.md: `batch_to_domain`'s `min(last_iova + 1, ...)` is min(0, ...) there, so the first
 * iommu_map covers the whole rest of the area and the others map 0 bytes; the unmap later reads those PFNs
 * back from the domain and unpins them). Asked harmlessly: the three pages mapped are physically
 * consecutive (p, p+1, p+2, found through /proc/self/pagemap) laid out p, p+2, p+1, so the run the bug
 * maps (p, p+1, p+2) is the same set of pages and every pin is still matched by its unpin; what differs is
 * which page each IOVA reaches, and IOMMU_TEST_OP_ACCESS_PAGES, which checks the pages an access gets (read
 * back from the domain) against the user's, says so with EBADE. A control mapping of the same pages at a
 * low IOVA must pass that check. On a borrowed group's device, attached to iommufd's compat IOAS. Null
 * where this cannot be asked (no group, no IOMMUFD_TEST, no pagemap PFNs, no three consecutive pages) or
 * where the IOMMU's aperture stops short of 2^64 (VT-d: no such area can be mapped into its domain). An
 * answer is kept.
 */
let topAreaRun: boolean | 'refused' | null = null;
export function iommufdTopAreaMapsFirstRun(): boolean | null {
  topAreaRun ??= withBorrowedCompatDevice((iommufd, ioasId) => topAreaRunProbe(iommufd, ioasId));
  return topAreaRun === 'refused' ? null : topAreaRun;
}

/**
 * What iommufdTopAreaMapsFirstRun asks (topAreaRunSteps), on an IOAS a device is attached to: 'refused' where
 * the top cannot be mapped, null where it cannot tell.
 */
function topAreaRunProbe(iommufd: IommuFd, ioasId: number): boolean | 'refused' | null {
  const pages = permutedConsecutivePages();
  if (!pages) return null;
  try {
    const seen = topAreaRunSteps(iommufd, ioasId, pages);
    if (seen.step === 'top-map') return 'refused';
    if (seen.step !== 'checked') return null;
    return seen.top === EBADE ? true : seen.top === 0 ? false : null;
  } finally {
    pages.dispose();
  }
}

/**
 * Runs fn on iommufd's compat IOAS with a borrowed group's device attached to it (its device fd open): a
 * domain of the platform's IOMMU under the IOAS. Null where no group can be borrowed or fn cannot tell.
 */
function withBorrowedCompatDevice<T>(fn: (iommufd: IommuFd, ioasId: number) => T | null): T | null {
  const s = coreSys();
  for (const name of borrowable(borrowableVfioGroups)) {
    let bdfs: string[];
    try {
      bdfs = readdirSync(`/sys/kernel/iommu_groups/${name}/devices`);
    } catch {
      continue;
    }
    if (bdfs.length !== 1) continue;
    const { iommufd } = IommuFd.open(s);
    if (!iommufd) return null;
    const attach = attachCompatDevice(iommufd, name, bdfs[0]!, s);
    try {
      if (!attach.attached) continue;
      const answer = fn(iommufd, attach.ioasId);
      if (answer !== null) return answer;
    } finally {
      attach.release();
      iommufd.close();
    }
  }
  return null;
}

let cached: KernelFeatures | undefined;
/** The features of the running kernel, probed once per process. */
export function kernelFeatures(): KernelFeatures {
  cached ??= probeFeatures();
  return cached;
}

/** Whether this process may do what root may (the suites need root for /dev/iommu and debugfs). */
export { isRoot } from '../sys/credentials.ts';

/** The kernel's version string, for reports only: behaviour is never keyed on it. */
export function kernelRelease(): string {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
