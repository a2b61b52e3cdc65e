// Where iommufd changed after 6.12 (the kernel the model was written from),
// the model follows the running kernel: one switch per change, each naming
// the kernel change that made it. Every switch is set from what the running
// kernel shows (lib/kernel/features.ts probes it; lib/lockstep/models.ts maps
// the probe to the switch), never from a version number. BASELINE_BEHAVIOUR
// is 6.12's, the model's default: a model made without a kernel (unit tests,
// model-only runs) is 6.12's.

export interface KernelBehaviour {
  /**
   * The selftest mock domain is a real page table from the generic page
   * table code, not an xarray of 2 KiB entries. Kernel change: "iommupt: Add
   * a mock pagetable format for iommufd selftest to use" and "iommufd: Change
   * the selftest to use iommupt instead of xarray" (drivers/iommu/generic_pt/
   * fmt/iommu_mock.c, an AMDv1 variant with a 2 KiB granule and three levels;
   * drivers/iommu/iommufd/selftest.c:mock_domain_alloc_pgtable). What it
   * changes, each in lib/model/mock.ts or iommufd.ts where it applies:
   * - pgsize_bitmap is every power of two from 2 KiB to 64 GiB
   *   (iommu_pt.h:NS(get_info)), or PAGE_SIZE | 1 MiB for
   *   MOCK_IOMMUPT_HUGE, whose aperture is the whole 2^38 table;
   * - a paging HWPT_ALLOC takes struct iommu_hwpt_selftest (pagetable_type),
   *   and MOCK_FLAGS_DEVICE_HUGE_IOVA is gone (mock_dev_create: EINVAL);
   * - a map with neither IOMMU_READ nor IOMMU_WRITE is refused with EINVAL
   *   (iommu_pt.h:NS(map_range), after a WARN_ON: see docs/findings/);
   * - dirty bits live in the leaf PTEs: IOMMU_TEST_OP_DIRTY marks the whole
   *   leaf holding each IOVA and counts every bit it was given
   *   (selftest.c:iommufd_test_dirty ignores set_dirty's result), and
   *   GET_DIRTY_BITMAP reports whole leaves (iommu_pt.h:record_dirty).
   */
  mockGenericPt: boolean;
  /**
   * IOMMU_HWPT_INVALIDATE looks its hwpt_id up as any object (a nested HWPT
   * or a vIOMMU), so another object type is EINVAL rather than ENOENT.
   * Kernel change: "iommufd: Allow hwpt_id to carry viommu_id for
   * IOMMU_HWPT_INVALIDATE" (hw_pagetable.c:iommufd_hwpt_invalidate).
   */
  hwptInvalidateAnyObject: boolean;
  /**
   * IOMMU_GET_HW_INFO sets IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED for a device
   * whose IOMMU driver does not report IOMMU_CAP_PCI_ATS_SUPPORTED (the mock
   * driver never does). Kernel change: "iommufd: Report ATS not supported
   * status via IOMMU_GET_HW_INFO" (device.c:iommufd_get_hw_info).
   */
  hwInfoAtsNotSupported: boolean;
  /**
   * The mock device takes MOCK_FLAGS_DEVICE_PASID: it then has a 20-bit
   * PASID space (its "pasid-num-bits" property), reported as
   * out_max_pasid_log2 by IOMMU_GET_HW_INFO. Kernel change: the selftest's
   * PASID support (selftest.c:mock_dev_create valid_flags, MOCK_PASID_WIDTH).
   */
  mockDevicePasid: boolean;
  /**
   * Pinning user memory checks that uptr + length does not wrap (EOVERFLOW)
   * before it checks the length (EINVAL): the check moved to
   * pages.c:iopt_alloc_user_pages when iopt_alloc_pages was split for file
   * mappings ("iommufd: Generalize iopt_pages address", the
   * IOMMU_IOAS_MAP_FILE series), so a length that is both too big and wraps
   * is EOVERFLOW, not EINVAL (IOMMU_IOAS_MAP, VFIO_IOMMU_MAP_DMA).
   */
  userPagesOverflowFirst: boolean;
  /**
   * GET_DIRTY_BITMAP reports a dirty leaf that spans n > 1 items of the
   * generic page table as its first n - 1 items (and nothing when the read
   * starts at its last item): iommu_pt.h:record_dirty computes the length as
   * (end_index - index) with end_index = log2_set_mod_max_t(index, ...), the
   * leaf's last item, inclusive. A kernel bug (docs/findings/KF-0002.md),
   * followed here where the probe sees it so that the dirty-tracking mirror
   * can check everything else; KF-0002's own test judges the symptom.
   */
  dirtyContigLeafShort: boolean;
  /**
   * IOMMU_GET_HW_INFO takes IOMMU_HW_INFO_FLAG_INPUT_TYPE: in_data_type (out_data_type's slot) asks for a
   * type, which the mock driver answers for IOMMU_HW_INFO_TYPE_DEFAULT and _SELFTEST and refuses
   * (EOPNOTSUPP) otherwise. Kernel change: iommu_hw_info.in_data_type (device.c:iommufd_get_hw_info,
   * selftest.c:mock_domain_hw_info). Probed: KernelFeatures.hwInfoInputType.
   */
  hwInfoInputType: boolean;
  /**
   * GET_DIRTY_BITMAP takes a length of 0: iommufd_check_iova_range no longer
   * starts with `if (!bitmap->length) return -EINVAL`, so length - 1 wraps to
   * U64_MAX: at IOVA 0 the range is the whole 64-bit space (EOPNOTSUPP on a
   * domain without dirty tracking; with it, a walk of the whole space over
   * however much user memory follows the bitmap, which the model cannot
   * know), at any other IOVA check_add_overflow says EOVERFLOW.
   * io_pagetable.c:iommufd_check_iova_range (7.2.13 line 602; 6.12.117 line
   * 524 has the check). Probed: KernelFeatures.changes.dirtyBitmapZeroLength.
   */
  dirtyBitmapZeroLength: boolean;
  /**
   * A paging HWPT takes IOMMU_HWPT_FAULT_ID_VALID: iommufd_hwpt_paging_alloc's valid_flags list it (and
   * refuse it only with NEST_PARENT), the domain is allocated without it, and iommufd_hwpt_alloc then looks
   * the fault up (ENOENT for an ID that is no fault object). 6.12 refused it for a paging HWPT with
   * EOPNOTSUPP. hw_pagetable.c:iommufd_hwpt_paging_alloc (7.2.13 line 113; 6.12.117 line 110).
   * Found by the fuzzer (7.2.13, seed 3: kernel ENOENT, model EOPNOTSUPP). Probed:
   * KernelFeatures.changes.hwptPagingFault.
   */
  hwptPagingFault: boolean;
  /**
   * vIOMMU (7.x): IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC, IOMMU_VEVENTQ_ALLOC and IOMMU_HW_QUEUE_ALLOC
   * exist (main.c iommufd_ioctl_ops[]), with IOMMU_TEST_OP_DEV_CHECK_CACHE and _TRIGGER_VEVENT
   * (selftest.c:iommufd_test). Without them their slots are empty (ENOTTY) and the ops unknown
   * (EOPNOTSUPP), as on 6.12. Kernel change: the "iommufd: Add IOMMU_VIOMMU_ALLOC" series and its
   * successors (viommu.c, eventq.c). Probed: KernelFeatures.ioctls.IOMMU_VIOMMU_ALLOC.
   */
  viommu: boolean;
  // PASID and CHANGE_PROCESS (7.x: issue 13)
  /**
   * PASIDs of a mock device take HWPTs: IOMMU_HWPT_ALLOC takes
   * IOMMU_HWPT_ALLOC_PASID (a PASID-compatible HWPT, paging or nested), the
   * selftest has IOMMU_TEST_OP_PASID_ATTACH, _REPLACE, _DETACH and
   * _CHECK_HWPT, and every attach and replace, the RID's included, passes
   * device.c:iommufd_hwpt_pasid_compat. Kernel change: "iommufd: Support
   * pasid attach/replace", "iommufd: Enforce PASID-compatible domain for
   * RID" and "iommufd/selftest: Add test ops to test pasid attach/detach"
   * (device.c, hw_pagetable.c, selftest.c). Probed:
   * KernelFeatures.testOps.PASID_ATTACH.
   */
  pasid: boolean;
  /**
   * IOMMU_IOAS_CHANGE_PROCESS exists (ioas.c:iommufd_ioas_change_process,
   * "iommufd: Add IOMMU_IOAS_CHANGE_PROCESS"). Probed:
   * KernelFeatures.ioctls.IOMMU_IOAS_CHANGE_PROCESS.
   */
  ioasChangeProcess: boolean;
  // ---- IOMMU_IOAS_MAP_FILE and the selftest's dma-bufs (7.x)
  /**
   * The IOMMU_IOAS_MAP_FILE ioctl exists: memfd and dma-buf mappings
   * (ioas.c:iommufd_ioas_map_file, io_pagetable.c:iopt_map_file_pages).
   * Kernel change: "iommufd: Add IOMMU_IOAS_MAP_FILE" (and "iommufd: Allow
   * MMIO pages in a batch" / the dma-buf import of 7.x). Without it the slot
   * is empty: ENOTTY. Probed: KernelFeatures.changes.ioasMapFile.
   */
  ioasMapFile: boolean;
  /**
   * IOMMU_TEST_OP_DMABUF_GET and _REVOKE exist (selftest.c:
   * iommufd_test_dmabuf_get, iommufd_test_dmabuf_revoke); without them the
   * ops are EOPNOTSUPP. Probed: KernelFeatures.testOps.DMABUF_GET.
   */
  testDmabuf: boolean;
  /**
   * IOMMU_TEST_OP_DMABUF_GET installs its dma-buf's fd and returns 0, not
   * the fd: 7.3-rc7's selftest.c:iommufd_test_dmabuf_get ends
   * `rc = dma_buf_fd(dmabuf, open_flags); if (rc < 0) { dma_buf_put(dmabuf);
   * return rc; } return 0;` where 7.2.13 had `return dma_buf_fd(dmabuf,
   * open_flags);`. A kernel bug (docs/findings/KF-0005.md): the fd is in the
   * caller's table, its number never reported. Probed:
   * KernelFeatures.changes.dmabufGetFdUnreported.
   */
  dmabufGetFdUnreported: boolean;
}

/** 6.12's behaviour, what the model was written from. */
export const BASELINE_BEHAVIOUR: Readonly<KernelBehaviour> = Object.freeze({
  mockGenericPt: false,
  hwptInvalidateAnyObject: false,
  hwInfoAtsNotSupported: false,
  mockDevicePasid: false,
  userPagesOverflowFirst: false,
  dirtyContigLeafShort: false,
  hwInfoInputType: false,
  dirtyBitmapZeroLength: false,
  hwptPagingFault: false,
  viommu: false,
  // PASID and CHANGE_PROCESS (7.x: issue 13)
  pasid: false,
  ioasChangeProcess: false,
  ioasMapFile: false,
  testDmabuf: false,
  dmabufGetFdUnreported: false,
});

// ---- VFIO type1 (real /dev/vfio/vfio) after 6.12: the type1 model's probed rules
/**
 * Where real type1 changed after 6.12. The type1 model (lib/model/type1.ts, through Type1ModelOptions)
 * follows each switch, and known audit differences can be limited by them (`when`), exactly as by
 * KernelBehaviour. Each is probed on a borrowed VFIO group (lib/kernel/features.ts), never read from a
 * version; a run that could borrow no group (the mock profile) records none of them.
 */
export interface Type1Behaviour {
  /**
   * A MAP_DMA, UNMAP_DMA or DIRTY_PAGES range that wraps past 2^64 is EOVERFLOW, checked right after a
   * zero size, before the protection and alignment checks: "vfio/type1: sanitize for overflow using
   * check_*_overflow()" (7.2.13 drivers/vfio/vfio_iommu_type1.c:vfio_dma_do_map
   * `if (check_add_overflow(iova, size - 1, &iova_end) || check_add_overflow(vaddr, size - 1, &vaddr_end))
   * return -EOVERFLOW;`, vfio_dma_do_unmap `ret = -EOVERFLOW`). 6.12.117 tests
   * `iova + size - 1 < iova` after them and answers EINVAL. Probed: features.ts type1WrapOverflow (a
   * MAP_DMA of 8 KiB at 2^64 - 4 KiB).
   */
  type1WrapOverflow: boolean;
  /**
   * Type1 no longer claims VFIO_TYPE1_NESTING_IOMMU: "vfio: Remove VFIO_TYPE1_NESTING_IOMMU" renamed it
   * __VFIO_RESERVED_TYPE1_NESTING_IOMMU and dropped it from vfio_iommu_type1_check_extension (7.2.13:
   * `case VFIO_TYPE1_IOMMU: case VFIO_TYPE1v2_IOMMU: case VFIO_UNMAP_ALL: return 1;`), so
   * CHECK_EXTENSION answers 0 and SET_IOMMU finds no driver claiming it: drivers/vfio/container.c:
   * vfio_ioctl_set_iommu's `long ret = -ENODEV;`. 6.12.117 answers 1 and opens a v2 container.
   * Probed: features.ts vfio.type1Nesting (CHECK_EXTENSION on a bare /dev/vfio/vfio).
   */
  type1NestingRemoved: boolean;
  /**
   * KF-0006 (docs/findings/KF-0006.md): a mapping whose last byte is IOVA 2^64 - 1 is never unpinned,
   * unmapped or uncharged when it is removed (UNMAP_DMA, the last group leaving, closing the container):
   * 6.12.117 drivers/vfio/vfio_iommu_type1.c:vfio_unmap_unpin's `end = dma->iova + dma->size` wraps to 0
   * and its `while (iova < end)` loop never runs. 7.2.13 walks `pos` from 0 to `dma->size` and gives the
   * pages back. Only a platform whose IOMMU aperture reaches 2^64 - 1 can make such a mapping (AMD-Vi's v1
   * table, virtio-iommu with a 64-bit input range; not VT-d). Probed: features.ts type1UnmapEndWrapLeaks (a
   * forked child maps the last page, the parent unmaps it, the child's VmLck is read).
   */
  type1UnmapEndWrapLeaks: boolean;
}

/** 6.12's type1. */
export const BASELINE_TYPE1_BEHAVIOUR: Readonly<Type1Behaviour> = Object.freeze({
  type1WrapOverflow: false,
  type1NestingRemoved: false,
  type1UnmapEndWrapLeaks: true,
});

/** Every switch a known difference's `when` may name, at 6.12's value. */
export const BASELINE_SWITCHES: Readonly<Record<keyof KernelBehaviour | keyof Type1Behaviour, boolean>> = Object.freeze({ ...BASELINE_BEHAVIOUR, ...BASELINE_TYPE1_BEHAVIOUR });
