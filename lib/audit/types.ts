// The raw-result format of the audit (issue #6 item 2/3): what the guest audit suites write to
// `${IOMMUFD_CONFORMANCE_OUT}/audit-raw.json`, one file per profile, and what lib/audit/report.ts reads.
// Pure types: nothing here imports the kernel or the model, so the host-side reports can use it anywhere.

/** The backends an audit scenario runs on:
 *  - 'type1': a real VFIO type1 container (/dev/vfio/vfio) with the viommu profile's vfio-pci device group;
 *  - 'compat-device': iommufd's VFIO compat on /dev/iommu with that same group (viommu profile);
 *  - 'compat-mock': iommufd's VFIO compat on /dev/iommu with a selftest mock domain (mock profile);
 *  - 'native': native iommufd on that same device through its VFIO cdev (/dev/vfio/devices/vfioN:
 *    VFIO_DEVICE_BIND_IOMMUFD, IOMMU_IOAS_ALLOC, VFIO_DEVICE_ATTACH_IOMMUFD_PT, then IOMMU_IOAS_MAP/UNMAP/...;
 *    viommu profile), for every scenario that has a native equivalent. */
export type BackendId = 'type1' | 'compat-device' | 'compat-mock' | 'native';

export const BACKEND_IDS: readonly BackendId[] = ['type1', 'compat-device', 'compat-mock', 'native'];

export type AuditProfile = 'mock' | 'viommu';

/** A value an ioctl step reports: bigints are written as decimal strings. */
export type OutValue = string | number | boolean | null;

export interface Step {
  /**
   * The operation: 'VFIO_IOMMU_MAP_DMA', 'VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)', ... Steps are compared by
   * position. Where a backend plays a role with other ioctls, the op names differ and are not a
   * difference: compat-mock has no VFIO group, so the group's VFIO_GROUP_SET_CONTAINER is there
   * 'IOMMU_IOAS_ALLOC+IOMMU_VFIO_IOAS(SET)' (the compat IOAS), VFIO_GROUP_GET_DEVICE_FD (which attaches
   * the device to a domain) is 'IOMMU_TEST_OP_MOCK_DOMAIN', and closing the device fd is
   * 'IOMMU_DESTROY(mock device)'. native has neither group nor container: SET_CONTAINER's role is
   * 'VFIO_DEVICE_BIND_IOMMUFD+IOMMU_IOAS_ALLOC', GET_DEVICE_FD's 'VFIO_DEVICE_ATTACH_IOMMUFD_PT' (the
   * device joins the IOAS, which gets its domain), closing the device fd 'VFIO_DEVICE_DETACH_IOMMUFD_PT';
   * MAP_DMA is 'IOMMU_IOAS_MAP', UNMAP_DMA 'IOMMU_IOAS_UNMAP', GET_INFO's IOVA ranges 'IOMMU_IOAS_IOVA_RANGES'.
   */
  op: string;
  /** The inputs that identify the request (iova, size, flags, argsz...), for the reader: never compared. */
  in?: Record<string, OutValue>;
  /** 'OK' or the errno NAME ('EINVAL', 'ENOTTY', ...): names, never numbers. */
  errno: string;
  /** Outputs that matter for the scenario (unmap size, info flags, caps...); bigint as decimal string. */
  out?: Record<string, OutValue>;
  /**
   * Platform-independent forms of platform-dependent outputs. They are used INSTEAD of `out[key]` when
   * comparing backends that run on different IOMMUs, i.e. type1 (intel-iommu, viommu profile) against
   * compat-mock (the selftest mock domain, mock profile). type1 against compat-device (the same device
   * behind the same intel-iommu) compares the raw `out`, and kernel against model always compares `out`
   * exactly. Present only for keys whose raw value depends on the IOMMU rather than on the uAPI's
   * semantics: the IOVA ranges (aperture and reserved regions: intel-iommu's MSI window vs the mock's
   * [16 MiB, 2 GiB) aperture) and iova_pgsizes (VT-d's 4K|2M|1G vs the mock's). Each normalised value
   * says what it keeps: `iova_pgsizes` -> '0x1000' (the smallest page size), `iova_ranges` ->
   * 'covers [0x2000000,0x2ffffff]: yes' (whether the scenarios' IOVA window is usable), GET_INFO's `argsz`
   * -> 'kept' | 'grown' | 'shrunk' (what the kernel did to the caller's value; the size itself counts the
   * platform's IOVA ranges). A key in `normalised`
   * replaces the same key of `out`; the raw value stays in `out` for the reader.
   */
  normalised?: Record<string, OutValue>;
  /**
   * On a model's step only: bits of a hex `out` value the model cannot tell (written as 0), with the reason on
   * lib/lockstep/unchecked.ts's list; the kernel's value is compared with it without them
   * (record.ts observationDifferences) and the cell says so.
   */
  unknown?: Record<string, { bits: string; reason: string }>;
}

export interface Observation {
  /** Every ioctl of the scenario, in order; the LAST one is the one under audit. */
  steps: Step[];
}

export type BackendResult =
  | {
      status: 'ran';
      /** What the kernel did. */
      kernel: Observation;
      /** The model's own prediction for that backend (VfioCompatModel for compat-*, Type1ContainerModel for
       *  type1), produced by running the same scenario on the model - or the error the model threw. */
      model: Observation | { error: string };
    }
  | { status: 'not-applicable'; reason: string };

export interface ScenarioResult {
  /** Stable, kebab-case, grouped by area: 'map-dma.argsz-short', 'set-iommu.twice', ... */
  id: string;
  /** 'MAP_DMA' | 'UNMAP_DMA' | 'GET_INFO' | 'CHECK_EXTENSION' | 'SET_IOMMU' | 'GROUP' | 'ACCOUNTING' | ... */
  area: string;
  /** One line a VMM author understands. */
  title: string;
  /** The state the container is in before the first step (not recorded as steps), e.g. 'type1v2 container, device open'. */
  setup?: string;
  /**
   * Set (to the reason) when what the scenario audits depends on the IOMMU under the container itself,
   * e.g. the IO page size (the mock domain's is 2 KiB, intel-iommu's 4 KiB) or the aperture, so that
   * compat-mock's result says nothing about compat against type1: the reports then do not compare
   * type1 with compat-mock for this scenario (type1 with compat-device is still compared: same IOMMU).
   * Absent: the scenario is platform-independent (after `normalised`) and all pairs are compared.
   */
  platformDependent?: string;
  results: Partial<Record<BackendId, BackendResult>>;
}

export interface BackendAvailability {
  available: boolean;
  reason?: string;
  /**
   * Unavailable because the running kernel lacks what the backend needs (probed: no iommufd, no compat
   * container): the report shows the backend as skipped, with the reason, and that fails nothing, as a
   * skipped test fails nothing. Unavailable for any other reason fails the audit.
   */
  skipped?: boolean;
}

/**
 * The IOMMU platform a device profile ran on, as the guest read it (lib/audit/targets.ts auditPlatform: the
 * PCI MSI irq chips of /proc/interrupts and the two allow_unsafe_interrupts parameters), never from the ioctls
 * under test. MSI isolation decides whether type1's SET_IOMMU and iommufd's device bind succeed at all.
 */
export interface AuditPlatform {
  /** 'intel-iommu with interrupt remapping', 'intel-iommu without interrupt remapping, allow_unsafe_interrupts: ...' */
  name: string;
  interruptRemapping: boolean;
  /** vfio_iommu_type1.allow_unsafe_interrupts */
  type1AllowUnsafeInterrupts: boolean;
  /** iommufd.allow_unsafe_interrupts */
  iommufdAllowUnsafeInterrupts: boolean;
  /** The IOMMU driver's domain maps an IOVA with neither READ nor WRITE (Type1Platform.domainMapsWithoutAccess); absent: false. */
  domainMapsWithoutAccess?: boolean;
  /** The IOMMU driver serving the device, read from sysfs (lib/model/type1-platform.ts iommuUnitOfGroup); absent: intel-iommu. */
  driver?: 'intel-iommu' | 'amd-iommu' | 'virtio-iommu';
}

export interface AuditRaw {
  format: 1;
  profile: AuditProfile;
  /** The platform of a profile with a real device (absent: mock, or a raw file from before platforms were recorded). */
  platform?: AuditPlatform;
  /** uname -r of the guest. */
  kernel: string;
  /**
   * Where the guest's kernel differs from 6.12 (lib/model/kernel-behaviour.ts, as probed there); known
   * differences with a `when` apply only to raw files whose kernel matches it. Absent: 6.12's.
   */
  behaviour?: Record<string, boolean>;
  /** Only the backends this profile runs. */
  backends: Partial<Record<BackendId, BackendAvailability>>;
  /** EVERY catalogue scenario, in catalogue order. */
  scenarios: ScenarioResult[];
  /** Set by `audit --host`: the device half ran on this host, not in a guest (HostFacts). */
  host?: HostFacts;
}

// audit --host (issue 14 item 8): the host a device half ran on, without a VM, as the raw file records it.
export interface HostFacts {
  /** uname -r */
  kernel: string;
  /** /proc/version */
  procVersion: string;
  /** /proc/cmdline */
  cmdline: string;
  /** DMI's sys_vendor and product_name, where readable. */
  machine: string | null;
  /** /proc/cpuinfo's first model name. */
  cpu: string | null;
  /** The device under audit. */
  device: {
    bdf: string;
    /** vendor:device, hex as sysfs gives them. */
    id: string;
    class: string | null;
    iommuGroup: number;
    /** Every device of its IOMMU group, with its driver: "0000:03:00.0 (vfio-pci)". */
    groupDevices: string[];
  };
  /** The IOMMU unit serving it and the platform the model was given (lib/model/type1-platform.ts). */
  iommu: {
    unit: string;
    cap: string | null;
    ecap: string | null;
    interruptRemapping: boolean;
    allowUnsafeInterrupts: boolean;
    pgsizeBitmap: string;
    aperture: string;
    reservedRegions: string[];
  };
}

/**
 * How the reason of a not-applicable result begins when the platform refused the device in the scenario's
 * setup, as the model predicted (lib/audit/run.ts platformRefusal): the scenario audits nothing there, and a
 * known difference listed for it is not compared on that platform (neither checked nor stale).
 */
export const REFUSED_BY_PLATFORM = 'refused by the platform: ';

/**
 * How the reason of a not-applicable result begins when the kernel run stopped before an ioctl that a known
 * kernel finding, seen by its probe, would turn into lasting damage to the test process (KF-0006: a type1
 * mapping that ends at 2^64 stays charged to it for good): the cell is not run there, the run reports the
 * finding, and it is compared with nothing, as a platform refusal is. The finding's own test shows it.
 */
export const HELD_BACK_BY_FINDING = 'held back by a known kernel finding: ';

/** The name of the raw file inside a profile's results folder. */
export const AUDIT_RAW_FILE = 'audit-raw.json';

/** Backends each profile runs. */
export const PROFILE_BACKENDS: Record<AuditProfile, readonly BackendId[]> = {
  viommu: ['type1', 'compat-device', 'native'],
  mock: ['compat-mock'],
};
