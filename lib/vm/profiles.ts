// What each VM profile adds to the machine and to the kernel's command line.
// Each profile is its own boot: see README ("Why mock domains need their own
// boot") for why the mock domain and intel-iommu do not mix in 6.12.

export type ProfileName = 'mock' | 'viommu';
export const PROFILES: readonly ProfileName[] = ['mock', 'viommu'];

export interface Profile {
  name: ProfileName;
  description: string;
  qemuArgs: string[];
  kernelArgs: string[];
  /** Folders (relative to the package root) whose *.test.ts files run in this profile. */
  suites: string[];
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
};

export function parseProfiles(value: string): ProfileName[] {
  if (value === 'all') return [...PROFILES];
  const names = value.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(PROFILES as readonly string[]).includes(n)) {
      throw new RangeError(`unknown profile '${n}': use ${PROFILES.join(', ')} or all`);
    }
  }
  return names as ProfileName[];
}
