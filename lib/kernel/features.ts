// What the running kernel offers, found by asking it, never by its version:
// an ioctl exists if a too-short struct gets EINVAL rather than ENOTTY; a
// test op exists if it does not get EOPNOTSUPP; and so on. Each probe runs
// on its own /dev/iommu open, closed afterwards, so it leaves nothing behind.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { coreSys, sys as fullSys, type SysCore, MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../sys/index.ts';
import * as U from '../uapi/index.ts';
import { contigLeafDirty } from './dirty-leaf.ts';
import { IommuFd } from './iommufd.ts';
import { VfioContainer, VfioGroup } from './vfio.ts';

const EINVAL = 22;
const ENOTTY = 25;
const EOPNOTSUPP = 95;
const EOVERFLOW = 75;

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
} as const;
export type TestOpName = keyof typeof TEST_OPS;

export interface KernelFeatures {
  /** /dev/iommu opens; `iommufdError` says why not. */
  iommufd: boolean;
  iommufdError?: string;
  /** Each iommufd ioctl by name (IOMMU_DESTROY …, IOMMU_TEST_CMD). */
  ioctls: Record<string, boolean>;
  /** Each IOMMU_TEST_CMD op (CONFIG_IOMMUFD_TEST). */
  testOps: Record<TestOpName, boolean>;
  /** A mock domain can be attached (false, for example, while intel-iommu is active: see README). */
  mockDomain: boolean;
  mockDomainErrno: number;
  mockDevFlags: { noDirty: boolean; hugeIova: boolean };
  hwptAllocFlags: { nestParent: boolean; dirtyTracking: boolean; faultIdValid: boolean };
  options: { rlimitMode: boolean; hugePages: boolean };
  /** type1Nesting: real type1 claims VFIO_TYPE1_NESTING_IOMMU (CHECK_EXTENSION on a bare /dev/vfio/vfio is 1). */
  vfio: { container: boolean; compatOnIommufd: boolean; type1Nesting: boolean };
  faultInjection: { failNth: boolean; failslab: boolean; failPageAlloc: boolean; failIommufd: boolean };
  /** MAP_HUGETLB of one 2 MiB page succeeds. */
  hugetlb: boolean;
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
    /** IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS knows MOCK_FLAGS_DEVICE_PASID. */
    mockDevicePasid: boolean;
    /** The IOMMU_IOAS_MAP_FILE ioctl exists (a too-short struct is EINVAL, not ENOTTY). */
    ioasMapFile: boolean;
    /**
     * GET_DIRTY_BITMAP reports a dirty two-item leaf of the generic page table mock as its first item
     * only (lib/kernel/dirty-leaf.ts; docs/findings/KF-0002.md).
     */
    dirtyContigLeafShort: boolean;
  };
}

/** iommufd_test.h MOCK_FLAGS_DEVICE_PASID (kernels after 6.12). */
const MOCK_FLAGS_DEVICE_PASID = 1 << 2;
/** iommufd.h IOMMU_IOAS_MAP_FILE: _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f) (kernels after 6.12). */
const IOMMU_IOAS_MAP_FILE = U._IO(U.IOMMUFD_TYPE, 0x8f);
/** iommufd.h IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED (kernels after 6.12). */
const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1n << 3n;

function probeIoctls(fd: IommuFd): Record<string, boolean> {
  const ioctls: Record<string, boolean> = {};
  // A 4-byte struct whose size field says 4 is shorter than every min_size.
  const short = new Uint8Array(new Uint32Array([4]).buffer);
  for (const op of [...U.IOMMUFD_IOCTL_OPS, U.IOMMU_TEST_CMD_OP]) {
    const r = fd.ioctl(op.request, short.slice());
    ioctls[op.ioctl] = r.errno !== ENOTTY;
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
    // Zeroed arguments: a known op fails on them (ENOENT, EINVAL, EBADFD...)
    // or succeeds harmlessly; only an unknown op gets EOPNOTSUPP.
    const probeId = name === 'SET_TEMP_MEMORY_LIMIT' ? 0 : 0x7fffffff;
    const fields = name === 'SET_TEMP_MEMORY_LIMIT' ? { memory_limit: { limit: 0 } } : {};
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

export function probeFeatures(sys: SysCore = coreSys()): KernelFeatures {
  const features: KernelFeatures = {
    iommufd: false,
    ioctls: {},
    testOps: Object.fromEntries(Object.keys(TEST_OPS).map((k) => [k, false])) as Record<TestOpName, boolean>,
    mockDomain: false,
    mockDomainErrno: 0,
    mockDevFlags: { noDirty: false, hugeIova: false },
    hwptAllocFlags: { nestParent: false, dirtyTracking: false, faultIdValid: false },
    options: { rlimitMode: false, hugePages: false },
    vfio: { container: false, compatOnIommufd: false, type1Nesting: true },
    faultInjection: probeFaultInjection(),
    hugetlb: false,
    changes: { mockGenericPt: false, hwptInvalidateAnyObject: false, hwInfoAtsNotSupported: false, mockDevicePasid: false, ioasMapFile: false, dirtyContigLeafShort: false },
  };
  const { container } = VfioContainer.open(sys);
  if (container) {
    features.vfio.container = container.getApiVersion().errno === 0;
    // With no driver set, vfio_ioctl_check_extension asks every registered IOMMU driver.
    if (features.vfio.container) features.vfio.type1Nesting = container.checkExtension(U.VFIO_TYPE1_NESTING_IOMMU).value === 1;
    container.close();
  }
  try {
    const m = fullSys().mmap(2 * 1024 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    if (typeof m !== 'number') {
      features.hugetlb = true;
      fullSys().munmap(m);
    }
  } catch {
    // no addon: leave hugetlb false
  }
  const opened = IommuFd.open(sys);
  if (!opened.iommufd) {
    features.iommufdError = opened.errno === 2 ? '/dev/iommu does not exist (kernel without CONFIG_IOMMUFD)' : `/dev/iommu cannot be opened (errno ${opened.errno})`;
    return features;
  }
  const fd = opened.iommufd;
  try {
    features.iommufd = true;
    features.ioctls = probeIoctls(fd);
    features.changes.ioasMapFile = fd.ioctl(IOMMU_IOAS_MAP_FILE, new Uint8Array(new Uint32Array([4]).buffer)).errno !== ENOTTY;
    features.testOps = probeTestOps(fd, features.ioctls.IOMMU_TEST_CMD === true);
    features.options.rlimitMode = fd.option({ optionId: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_GET }).errno === 0;
    // HUGE_PAGES on object 0: ENOENT when the option exists, EOPNOTSUPP when not.
    features.options.hugePages = fd.option({ optionId: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_GET, objectId: 0 }).errno !== EOPNOTSUPP;
    features.vfio.compatOnIommufd = VfioContainer.compatOn(fd).getApiVersion().errno === 0;
    if (features.testOps.MOCK_DOMAIN) {
      const ioas = fd.ioasAlloc();
      const mock = fd.testMockDomain({ ptId: ioas.ioasId });
      features.mockDomain = mock.errno === 0;
      features.mockDomainErrno = mock.errno;
      if (features.testOps.MOCK_DOMAIN_FLAGS) {
        // An unknown device flag is EINVAL before the IOAS lookup; a known one with a bad IOAS is ENOENT.
        features.mockDevFlags.noDirty = fd.testMockDomainFlags({ ptId: 0x7fffffff, devFlags: U.MOCK_FLAGS_DEVICE_NO_DIRTY }).errno !== EINVAL;
        features.mockDevFlags.hugeIova = fd.testMockDomainFlags({ ptId: 0x7fffffff, devFlags: U.MOCK_FLAGS_DEVICE_HUGE_IOVA }).errno !== EINVAL;
        features.changes.mockDevicePasid = fd.testMockDomainFlags({ ptId: 0x7fffffff, devFlags: MOCK_FLAGS_DEVICE_PASID }).errno !== EINVAL;
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
      }
    }
  } finally {
    fd.close();
  }
  return features;
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
    features.changes.hwInfoAtsNotSupported = info.errno === 0 && (info.capabilities & IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED) !== 0n;
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
  let names: string[];
  try {
    names = readdirSync('/dev/vfio').filter((n) => /^\d+$/.test(n));
  } catch {
    return null;
  }
  for (const name of names) {
    const { group } = VfioGroup.open(name, sys);
    if (!group) continue;
    const { container } = VfioContainer.open(sys);
    try {
      if (!container || !group.getStatus().viable || group.setContainer(container.fd).errno) continue;
      if (container.setIommu(U.VFIO_TYPE1v2_IOMMU).errno) continue;
      const rw = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
      const errno = container.mapDma({ flags: rw, vaddr: 0x10000n, iova: 0xffff_ffff_ffff_f000n, size: 0x2000n }).errno;
      if (errno === EOVERFLOW || errno === EINVAL) return errno === EOVERFLOW;
    } finally {
      container?.close();
      group.close();
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
