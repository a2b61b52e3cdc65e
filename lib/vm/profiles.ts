// What each VM profile adds to the machine and to the kernel's command line.
// Each profile is its own boot: see README ("Why mock domains need their own
// boot") for why the mock domain and intel-iommu do not mix in 6.12.

export type ProfileName = 'mock' | 'viommu' | 'viommu-noir' | 'viommu-noir-unsafe-type1' | 'viommu-noir-unsafe' | 'amd' | 'virtio' | 'virtio-unsafe';
/** The profiles `--profile all` (and npm test) boots. */
export const PROFILES: readonly ProfileName[] = ['mock', 'viommu'];
/**
 * The other IOMMU platforms (issue 14 item 1), booted only when named: the same machine as `viommu`
 * with QEMU's intel-iommu emulating no interrupt remapping, under each setting of the two
 * allow_unsafe_interrupts parameters; QEMU's AMD IOMMU (amd) and virtio-iommu (virtio, virtio-unsafe), whose kernel
 * needs an extra fragment (kernelFragments).
 */
export const PLATFORM_PROFILES: readonly ProfileName[] = ['viommu-noir', 'viommu-noir-unsafe-type1', 'viommu-noir-unsafe', 'amd', 'virtio', 'virtio-unsafe'];
export const ALL_PROFILES: readonly ProfileName[] = [...PROFILES, ...PLATFORM_PROFILES];
/**
 * The platforms whose audit `npm test` runs (lib/cli/test-all.ts): every one. virtio refuses the device (no
 * pins); amd and virtio-unsafe hold back the maps that meet docs/findings/KF-0006.md (type1) and KF-0007.md
 * (iommufd) where the running kernel's probes see them.
 */
export const NPM_TEST_PLATFORM_AUDITS: readonly ProfileName[] = PLATFORM_PROFILES;
/**
 * The profiles with the edu device, whose guest runs the audit's device backends (type1, compat-device,
 * native), each on its platform; their raw files say profile 'viommu' and name the platform they read.
 */
export const DEVICE_PROFILES = ['viommu', 'viommu-noir', 'viommu-noir-unsafe-type1', 'viommu-noir-unsafe', 'amd', 'virtio', 'virtio-unsafe'] as const satisfies readonly ProfileName[];
export type DeviceProfile = (typeof DEVICE_PROFILES)[number];
/**
 * npm test on 7.2 (lib/cli/test-all.ts platformAuditRuns): the audit of every device profile whose 7.2 part
 * is published runs on 7.2 and is compared with that part, except the profiles named here, each with the
 * reason printed beside the part it leaves uncompared.
 */
export const NPM_TEST_7_2_AUDIT_EXCLUSIONS: Partial<Record<DeviceProfile, string>> = {};

export interface Profile {
  name: ProfileName;
  description: string;
  qemuArgs: string[];
  kernelArgs: string[];
  /** Folders (relative to the package root) whose *.test.ts files run in this profile. */
  suites: string[];
  /** Fragments in fixtures/kernel/ the guest kernel needs beyond the default ones (lib/vm/kernel.ts fragmentsFor). */
  kernelFragments?: string[];
  /**
   * A device profile: the IOMMU platform its audit records (lib/audit/targets.ts auditPlatform, read in the
   * guest), which names its published part (docs/audit/KERNEL/platformKey(auditPlatform)/). npm test uses it
   * only to find which profile proves a published part current (lib/cli/test-all.ts platformAuditRuns); the
   * comparison itself is with the part of the platform the run recorded.
   */
  auditPlatform?: string;
}

const EDU = ['-device', 'edu,id=edu0'];
const VIOMMU_SUITES = ['suites/vm/common', 'suites/vm/viommu'];

export const profiles: Record<ProfileName, Profile> = {
  mock: {
    name: 'mock',
    description: 'no vIOMMU: iommufd with the IOMMU_TEST_CMD mock domains',
    qemuArgs: [],
    kernelArgs: [],
    suites: ['suites/vm/common', 'suites/vm/mock'],
  },
  viommu: {
    name: 'viommu',
    description: "emulated intel-iommu with QEMU's edu device for vfio-pci: real type1 and iommufd compat",
    // intremap=on gives the guest interrupt remapping, so type1 accepts the
    // device without allow_unsafe_interrupts.
    qemuArgs: ['-device', 'intel-iommu,caching-mode=on,intremap=on', ...EDU],
    kernelArgs: ['intel_iommu=on'],
    suites: VIOMMU_SUITES,
    auditPlatform: 'intel-iommu with interrupt remapping',
  },
  // Without interrupt remapping no MSI is isolated (iommu_group_has_isolated_msi is false), so
  // vfio_iommu_type1_attach_group and iommufd_device_bind refuse the device with EPERM unless their
  // module's allow_unsafe_interrupts is set. Both modules are built in (fixtures/kernel: VFIO_IOMMU_TYPE1=y,
  // IOMMUFD=y), so the parameters are set on the kernel's command line.
  'viommu-noir': {
    name: 'viommu-noir',
    description: 'emulated intel-iommu WITHOUT interrupt remapping, allow_unsafe_interrupts off: type1 and iommufd refuse the edu device (EPERM)',
    qemuArgs: ['-device', 'intel-iommu,caching-mode=on,intremap=off', ...EDU],
    kernelArgs: ['intel_iommu=on'],
    suites: VIOMMU_SUITES,
    auditPlatform: 'intel-iommu without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=N, iommufd=N',
  },
  // The host a VMM author moving from type1 to iommufd most likely has: type1's parameter set long ago
  // (modprobe.d), iommufd's not. iommufd never reads type1's.
  'viommu-noir-unsafe-type1': {
    name: 'viommu-noir-unsafe-type1',
    description: 'emulated intel-iommu WITHOUT interrupt remapping, vfio_iommu_type1.allow_unsafe_interrupts=1 only: type1 takes the edu device, iommufd refuses it (EPERM)',
    qemuArgs: ['-device', 'intel-iommu,caching-mode=on,intremap=off', ...EDU],
    kernelArgs: ['intel_iommu=on', 'vfio_iommu_type1.allow_unsafe_interrupts=1'],
    suites: VIOMMU_SUITES,
    auditPlatform: 'intel-iommu without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=Y, iommufd=N',
  },
  'viommu-noir-unsafe': {
    name: 'viommu-noir-unsafe',
    description: 'emulated intel-iommu WITHOUT interrupt remapping, vfio_iommu_type1 and iommufd allow_unsafe_interrupts=1',
    qemuArgs: ['-device', 'intel-iommu,caching-mode=on,intremap=off', ...EDU],
    kernelArgs: ['intel_iommu=on', 'vfio_iommu_type1.allow_unsafe_interrupts=1', 'iommufd.allow_unsafe_interrupts=1'],
    suites: VIOMMU_SUITES,
    auditPlatform: 'intel-iommu without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=Y, iommufd=Y',
  },
  amd: {
    name: 'amd',
    description: "emulated AMD IOMMU (AMD-Vi) with interrupt remapping and QEMU's edu device for vfio-pci",
    // intremap=on: the guest's AMD-Vi remaps interrupts, so its MSIs are isolated. (amd_iommu=on is no
    // option of drivers/iommu/amd/init.c parse_amd_iommu_options: the driver probes the IVRS table alone.)
    qemuArgs: ['-device', 'amd-iommu,intremap=on', ...EDU],
    // The model reads AMD-Vi's boot-time "Using global IVHD EFR" line (7.x's v1 table size, lib/model/type1-platform.ts
    // amdHptVasize): a larger ring buffer than the test kernel's 128 KiB keeps it, as for virtio.
    kernelArgs: ['log_buf_len=4M'],
    suites: VIOMMU_SUITES,
    auditPlatform: 'amd-iommu with interrupt remapping',
    kernelFragments: ['platform-iommus.config'],
  },
  // virtio-iommu remaps no interrupt: like viommu-noir, type1 and iommufd refuse the device (EPERM).
  virtio: {
    name: 'virtio',
    description: "virtio-iommu (ACPI VIOT; no interrupt remapping, allow_unsafe_interrupts off) with QEMU's edu device for vfio-pci",
    qemuArgs: ['-device', 'virtio-iommu-pci', ...EDU],
    // The model reads virtio-iommu's page mask and input range from viommu_probe's log lines
    // (lib/model/type1-platform.ts): a larger ring buffer than the test kernel's 128 KiB keeps them.
    kernelArgs: ['log_buf_len=4M'],
    suites: VIOMMU_SUITES,
    auditPlatform: 'virtio-iommu without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=N, iommufd=N',
    kernelFragments: ['platform-iommus.config'],
  },
  // The same with both allow_unsafe_interrupts set: the backends take the device, so virtio-iommu's own
  // domain (its page mask and 64-bit input range) is what the suites meet.
  'virtio-unsafe': {
    name: 'virtio-unsafe',
    description: "virtio-iommu (no interrupt remapping) with vfio_iommu_type1 and iommufd allow_unsafe_interrupts=1, and QEMU's edu device for vfio-pci",
    qemuArgs: ['-device', 'virtio-iommu-pci', ...EDU],
    kernelArgs: ['log_buf_len=4M', 'vfio_iommu_type1.allow_unsafe_interrupts=1', 'iommufd.allow_unsafe_interrupts=1'],
    suites: VIOMMU_SUITES,
    auditPlatform: 'virtio-iommu without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=Y, iommufd=Y',
    kernelFragments: ['platform-iommus.config'],
  },
};

/** The extra kernel fragments the given profiles need (one kernel serves every profile of a run). */
export function kernelFragmentsOf(names: readonly ProfileName[]): string[] {
  return [...new Set(names.flatMap((n) => profiles[n].kernelFragments ?? []))].sort();
}

/** `all` is PROFILES; the platform profiles are named one by one. */
export function parseProfiles(value: string): ProfileName[] {
  if (value === 'all') return [...PROFILES];
  const names = value.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(ALL_PROFILES as readonly string[]).includes(n)) {
      throw new RangeError(`unknown profile '${n}': use ${ALL_PROFILES.join(', ')} or all (${PROFILES.join(', ')})`);
    }
  }
  return names as ProfileName[];
}
