// What each VM profile adds to the machine and to the kernel's command line.
// Each profile is its own boot: see README ("Why mock domains need their own
// boot") for why the mock domain and intel-iommu do not mix in 6.12.

export type ProfileName = 'mock' | 'viommu' | 'amd' | 'virtio';
/** What `--profile all` and `npm test` boot. */
export const PROFILES: readonly ProfileName[] = ['mock', 'viommu'];
/** Further IOMMU platforms (issue 14), booted only when named: their kernel needs an extra fragment. */
export const PLATFORM_PROFILES: readonly ProfileName[] = ['amd', 'virtio'];
/** Every profile a run can name. */
export const KNOWN_PROFILES: readonly ProfileName[] = [...PROFILES, ...PLATFORM_PROFILES];

export interface Profile {
  name: ProfileName;
  description: string;
  qemuArgs: string[];
  kernelArgs: string[];
  /** Folders (relative to the package root) whose *.test.ts files run in this profile. */
  suites: string[];
  /** Fragments in fixtures/kernel/ the guest kernel needs beyond the default ones (lib/vm/kernel.ts fragmentsFor). */
  kernelFragments?: string[];
}

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
    qemuArgs: ['-device', 'intel-iommu,caching-mode=on,intremap=on', '-device', 'edu,id=edu0'],
    kernelArgs: ['intel_iommu=on'],
    suites: ['suites/vm/common', 'suites/vm/viommu'],
  },
  amd: {
    name: 'amd',
    description: "emulated AMD IOMMU (AMD-Vi) with interrupt remapping and QEMU's edu device for vfio-pci",
    // intremap=on: the guest's AMD-Vi remaps interrupts, so its MSIs are isolated. (amd_iommu=on is no
    // option of drivers/iommu/amd/init.c parse_amd_iommu_options: the driver probes the IVRS table alone.)
    qemuArgs: ['-device', 'amd-iommu,intremap=on', '-device', 'edu,id=edu0'],
    kernelArgs: [],
    suites: ['suites/vm/common', 'suites/vm/viommu'],
    kernelFragments: ['platform-iommus.config'],
  },
  virtio: {
    name: 'virtio',
    description: "virtio-iommu (ACPI VIOT, no interrupt remapping) with QEMU's edu device for vfio-pci",
    qemuArgs: ['-device', 'virtio-iommu-pci', '-device', 'edu,id=edu0'],
    kernelArgs: [],
    suites: ['suites/vm/common', 'suites/vm/viommu'],
    kernelFragments: ['platform-iommus.config'],
  },
};

/** The extra kernel fragments the given profiles need (one kernel serves every profile of a run). */
export function kernelFragmentsOf(names: readonly ProfileName[]): string[] {
  return [...new Set(names.flatMap((n) => profiles[n].kernelFragments ?? []))].sort();
}

export function parseProfiles(value: string): ProfileName[] {
  if (value === 'all') return [...PROFILES];
  const names = value.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(KNOWN_PROFILES as readonly string[]).includes(n)) {
      throw new RangeError(`unknown profile '${n}': use ${KNOWN_PROFILES.join(', ')}, or all (${PROFILES.join(', ')})`);
    }
  }
  return names as ProfileName[];
}
