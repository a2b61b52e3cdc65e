// What the running kernel offers, found by asking it, never by its version:
// an ioctl exists if a too-short struct gets EINVAL rather than ENOTTY; a
// test op exists if it does not get EOPNOTSUPP; and so on. Each probe runs
// on its own /dev/iommu open, closed afterwards, so it leaves nothing behind.
import { existsSync, readFileSync } from 'node:fs';
import { coreSys, sys as fullSys, type SysCore, MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../sys/index.ts';
import * as U from '../uapi/index.ts';
import { IommuFd } from './iommufd.ts';
import { VfioContainer } from './vfio.ts';

const EINVAL = 22;
const ENOTTY = 25;
const EOPNOTSUPP = 95;

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
  vfio: { container: boolean; compatOnIommufd: boolean };
  faultInjection: { failNth: boolean; failslab: boolean; failPageAlloc: boolean; failIommufd: boolean };
  /** MAP_HUGETLB of one 2 MiB page succeeds. */
  hugetlb: boolean;
}

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
    vfio: { container: false, compatOnIommufd: false },
    faultInjection: probeFaultInjection(),
    hugetlb: false,
  };
  const { container } = VfioContainer.open(sys);
  if (container) {
    features.vfio.container = container.getApiVersion().errno === 0;
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
    features.iommufdError = iommufdAbsence(opened.errno);
    return features;
  }
  const fd = opened.iommufd;
  try {
    features.iommufd = true;
    features.ioctls = probeIoctls(fd);
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
      }
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
