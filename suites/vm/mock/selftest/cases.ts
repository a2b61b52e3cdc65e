// The kernel selftest cases mirrored in this folder, by their kselftest
// harness names (FIXTURE.VARIANT.TEST, or FIXTURE.TEST for a fixture without
// variants): tools/testing/selftests/iommu/iommufd.c of Debian's 6.12.117
// (5 fixtures, 19 variants, 52 TEST_F = 190 cases; no plain TEST()).
// Each mocha case's full title (`<describe>.<it>`) is exactly one of these,
// for a parity table against the C selftest's results.

export interface SelftestFixture {
  fixture: string;
  /** FIXTURE_VARIANT_ADD names, in file order; empty for a fixture without variants. */
  variants: readonly string[];
  /** TEST_F names, in file order. */
  tests: readonly string[];
  /** The suite file that mirrors it (relative to this folder). */
  file: string;
}

export const SELFTEST_FIXTURES: readonly SelftestFixture[] = Object.freeze([
  {
    fixture: 'iommufd',
    variants: [],
    tests: [
      'simple_close', 'cmd_fail', 'cmd_length', 'cmd_ex_fail', 'global_options',
      // VFIO compatibility IOCTLs (further down in iommufd.c)
      'simple_ioctls', 'unmap_cmd', 'map_cmd', 'info_cmd', 'set_iommu_cmd', 'vfio_ioas',
    ],
    file: 'iommufd.test.ts',
  },
  {
    fixture: 'iommufd_ioas',
    variants: ['no_domain', 'mock_domain', 'two_mock_domain', 'mock_domain_limit'],
    tests: [
      'ioas_auto_destroy', 'ioas_destroy', 'alloc_hwpt_nested', 'hwpt_attach', 'ioas_area_destroy', 'ioas_area_auto_destroy',
      'get_hw_info', 'area', 'unmap_fully_contained_areas', 'area_auto_iova', 'area_allowed', 'copy_area', 'iova_ranges',
      'access_domain_destory', 'access_pin', 'access_pin_unmap', 'access_rw', 'access_rw_unaligned', 'fork_gone', 'fork_present',
      'ioas_option_huge_pages', 'ioas_iova_alloc', 'ioas_align_change', 'copy_sweep',
    ],
    file: 'iommufd_ioas.test.ts',
  },
  {
    fixture: 'iommufd_mock_domain',
    variants: ['one_domain', 'two_domains', 'one_domain_hugepage', 'two_domains_hugepage'],
    tests: ['basic', 'ro_unshare', 'all_aligns', 'all_aligns_copy', 'user_copy', 'replace', 'alloc_hwpt'],
    file: 'iommufd_mock_domain.test.ts',
  },
  {
    fixture: 'iommufd_dirty_tracking',
    variants: [
      'domain_dirty8k', 'domain_dirty16k', 'domain_dirty64k', 'domain_dirty128k', 'domain_dirty320k',
      'domain_dirty64M', 'domain_dirty64M_huge', 'domain_dirty128M', 'domain_dirty128M_huge',
    ],
    tests: ['enforce_dirty', 'set_dirty_tracking', 'device_dirty_capability', 'get_dirty_bitmap', 'get_dirty_bitmap_no_clear'],
    file: 'iommufd_dirty_tracking.test.ts',
  },
  // vIOMMU (7.x): 7.2.13's FIXTURE(iommufd_viommu); on a kernel without the ioctls its cases skip, naming them.
  {
    fixture: 'iommufd_viommu',
    variants: ['no_viommu', 'mock_viommu'],
    tests: [
      'viommu_auto_destroy', 'viommu_negative_tests', 'viommu_alloc_nested_iopf', 'viommu_alloc_with_data', 'vdevice_alloc',
      'vdevice_cache', 'hw_queue', 'vdevice_tombstone',
    ],
    file: 'iommufd_viommu.test.ts',
  },
  {
    fixture: 'vfio_compat_mock_domain',
    variants: ['Ver1v2', 'Ver1v0'],
    tests: ['simple_close', 'option_huge_pages', 'get_info', 'map', 'huge_map'],
    file: 'vfio_compat_mock_domain.test.ts',
  },
]);

/** Every mirrored case name, in the selftest's order: 190 for this iommufd.c. */
export const SELFTEST_CASES: readonly string[] = Object.freeze(
  SELFTEST_FIXTURES.flatMap(({ fixture, variants, tests }) =>
    variants.length === 0 ? tests.map((t) => `${fixture}.${t}`) : variants.flatMap((v) => tests.map((t) => `${fixture}.${v}.${t}`)),
  ),
);

/**
 * tools/testing/selftests/iommu/iommufd_fail_nth.c of the same kernel: one
 * fixture without variants, 7 TEST_FAIL_NTH (each a TEST_F that sweeps every
 * fault site of its body), mirrored in iommufd_fail_nth.test.ts. A separate
 * file in the kernel (its own kselftest binary), so a list of its own.
 */
export const FAIL_NTH_FIXTURE: SelftestFixture = Object.freeze({
  fixture: 'basic_fail_nth',
  variants: [],
  tests: ['basic', 'map_domain', 'map_two_domains', 'access_rw', 'access_pin', 'access_pin_domain', 'device'],
  file: 'iommufd_fail_nth.test.ts',
});

/** The 7 case names of iommufd_fail_nth.c, in file order (FIXTURE.TEST). */
export const FAIL_NTH_CASES: readonly string[] = Object.freeze(FAIL_NTH_FIXTURE.tests.map((t) => `${FAIL_NTH_FIXTURE.fixture}.${t}`));
