// drivers/iommu/iommufd/iommufd_test.h of Linux 7.2.13: the selftest mock
// interface (CONFIG_IOMMUFD_TEST). Not a uapi header, but the kernel's own
// selftests (tools/testing/selftests/iommu/) include it, and so does the
// layout check. All-caps number exports are the header's constants. Names
// 6.12.117's copy has and 7.2's dropped (MOCK_FLAGS_DEVICE_HUGE_IOVA) stay,
// marked: the layout check checks each kernel's header for what it defines.
import { _IO } from './ioctl.ts';
import { IOMMUFD_CMD_BASE, IOMMUFD_TYPE, ioctlOp } from './iommufd.ts';
import { aligned_u64, anonymousStruct, anonymousUnion, s32, struct, u32, u64 } from './layout.ts';

// enum { IOMMU_TEST_OP_ADD_RESERVED = 1, ... } (values follow on from 1)
export const IOMMU_TEST_OP_ADD_RESERVED = 1;
export const IOMMU_TEST_OP_MOCK_DOMAIN = 2;
export const IOMMU_TEST_OP_MD_CHECK_MAP = 3;
export const IOMMU_TEST_OP_MD_CHECK_REFS = 4;
export const IOMMU_TEST_OP_CREATE_ACCESS = 5;
export const IOMMU_TEST_OP_DESTROY_ACCESS_PAGES = 6;
export const IOMMU_TEST_OP_ACCESS_PAGES = 7;
export const IOMMU_TEST_OP_ACCESS_RW = 8;
export const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9;
export const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10;
export const IOMMU_TEST_OP_ACCESS_REPLACE_IOAS = 11;
export const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12;
export const IOMMU_TEST_OP_DIRTY = 13;
export const IOMMU_TEST_OP_MD_CHECK_IOTLB = 14;
export const IOMMU_TEST_OP_TRIGGER_IOPF = 15;
export const IOMMU_TEST_OP_DEV_CHECK_CACHE = 16;
export const IOMMU_TEST_OP_TRIGGER_VEVENT = 17;
export const IOMMU_TEST_OP_PASID_ATTACH = 18;
export const IOMMU_TEST_OP_PASID_REPLACE = 19;
export const IOMMU_TEST_OP_PASID_DETACH = 20;
export const IOMMU_TEST_OP_PASID_CHECK_HWPT = 21;
export const IOMMU_TEST_OP_DMABUF_GET = 22;
export const IOMMU_TEST_OP_DMABUF_REVOKE = 23;

// struct iommu_hwpt_selftest.pagetable_type (the generic page table mock, 7.x)
export const MOCK_IOMMUPT_DEFAULT = 0;
export const MOCK_IOMMUPT_HUGE = 1;

// "These values are true for MOCK_IOMMUPT_DEFAULT". 6.12's header has only
// the aperture here; its page sizes live in selftest.c (MOCK_IO_PAGE_SIZE =
// PAGE_SIZE / 2, x86_64 PAGE_SIZE 4096): the same values.
export const MOCK_APERTURE_START = 2 ** 24;
export const MOCK_APERTURE_LAST = 2 ** 31 - 1;
export const MOCK_PAGE_SIZE = 2048;
export const MOCK_HUGE_PAGE_SIZE = 512 * MOCK_PAGE_SIZE;

// IOMMU_TEST_OP_CREATE_ACCESS / ACCESS_PAGES flags
export const MOCK_FLAGS_ACCESS_WRITE = 1 << 0;
export const MOCK_FLAGS_ACCESS_SYZ = 1 << 16;

// IOMMU_TEST_OP_ACCESS_RW flags
export const MOCK_ACCESS_RW_WRITE = 1 << 0;
export const MOCK_ACCESS_RW_SLOW_PATH = 1 << 2;

export const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0;

// IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS dev_flags
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
/** 6.12 only: 7.x's generic page table mock dropped it (MOCK_IOMMUPT_HUGE instead). */
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1;
/** 7.x: a PASID-capable mock device (max_pasids = 1 << MOCK_PASID_WIDTH). */
export const MOCK_FLAGS_DEVICE_PASID = 1 << 2;

export const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3;
export const MOCK_NESTED_DOMAIN_IOTLB_NUM = 4;

// vIOMMU (7.x): the mock device's cache entries
export const MOCK_DEV_CACHE_ID_MAX = 3;
export const MOCK_DEV_CACHE_NUM = 4;

/** Reserved for special pasid replace test */
export const IOMMU_TEST_PASID_RESERVED = 1024;

export const iommu_test_cmd = struct('iommu_test_cmd', {
  size: u32,
  op: u32,
  id: u32,
  __reserved: u32,
  // A TS-only label: C's union is anonymous, its members are iommu_test_cmd's.
  union: anonymousUnion({
    add_reserved: anonymousStruct({ start: aligned_u64, length: aligned_u64 }),
    mock_domain: anonymousStruct({ out_stdev_id: u32, out_hwpt_id: u32, out_idev_id: u32 }),
    mock_domain_flags: anonymousStruct({ out_stdev_id: u32, out_hwpt_id: u32, out_idev_id: u32, dev_flags: u32 }),
    mock_domain_replace: anonymousStruct({ pt_id: u32 }),
    check_map: anonymousStruct({ iova: aligned_u64, length: aligned_u64, uptr: aligned_u64 }),
    check_refs: anonymousStruct({ length: aligned_u64, uptr: aligned_u64, refs: u32 }),
    create_access: anonymousStruct({ out_access_fd: u32, flags: u32 }),
    destroy_access_pages: anonymousStruct({ access_pages_id: u32 }),
    access_pages: anonymousStruct({ flags: u32, out_access_pages_id: u32, iova: aligned_u64, length: aligned_u64, uptr: aligned_u64 }),
    access_rw: anonymousStruct({ iova: aligned_u64, length: aligned_u64, uptr: aligned_u64, flags: u32 }),
    memory_limit: anonymousStruct({ limit: u32 }),
    access_replace_ioas: anonymousStruct({ ioas_id: u32 }),
    dirty: anonymousStruct({
      flags: u32,
      iova: aligned_u64,
      length: aligned_u64,
      page_size: aligned_u64,
      uptr: aligned_u64,
      out_nr_dirty: aligned_u64,
    }),
    check_iotlb: anonymousStruct({ id: u32, iotlb: u32 }),
    trigger_iopf: anonymousStruct({ dev_id: u32, pasid: u32, grpid: u32, perm: u32, addr: u64 }),
    check_dev_cache: anonymousStruct({ id: u32, cache: u32 }),
    trigger_vevent: anonymousStruct({ dev_id: u32 }),
    // For the four PASID ops, @id is stdev_id.
    pasid_attach: anonymousStruct({ pasid: u32, pt_id: u32 }),
    pasid_replace: anonymousStruct({ pasid: u32, pt_id: u32 }),
    pasid_detach: anonymousStruct({ pasid: u32 }),
    pasid_check: anonymousStruct({ pasid: u32, hwpt_id: u32 }),
    dmabuf_get: anonymousStruct({ length: u32, open_flags: u32 }),
    dmabuf_revoke: anonymousStruct({ dmabuf_fd: s32, revoked: u32 }),
  }),
  last: u32,
});
export const IOMMU_TEST_CMD = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32);

/** main.c: IOCTL_OP(IOMMU_TEST_CMD, iommufd_test, struct iommu_test_cmd, last). */
export const IOMMU_TEST_CMD_OP = ioctlOp('IOMMU_TEST_CMD', IOMMU_TEST_CMD, iommu_test_cmd, 'last');

/** Mock device/iommu PASID width: out_max_pasid_log2 of a MOCK_FLAGS_DEVICE_PASID device. */
export const MOCK_PASID_WIDTH = 20;

// Mock data for IOMMU_GET_HW_INFO
export const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
export const IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;

export const iommu_test_hw_info = struct('iommu_test_hw_info', { flags: u32, test_reg: u32 });

/** A data_type no real driver uses (enum iommu_hwpt_data_type). */
export const IOMMU_HWPT_DATA_SELFTEST = 0xdead;
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
export const IOMMU_TEST_DEV_CACHE_DEFAULT = 0xbaddad;

/**
 * IOMMU_HWPT_ALLOC data for IOMMU_HWPT_DATA_SELFTEST. 7.x added
 * pagetable_type (6.12's struct ends at iotlb): the kernel takes any length
 * from offsetofend(iotlb) up, so 8 bytes with pagetable_type 0 also suit
 * 6.12's nested alloc (copy_struct_from_user: the tail is zero).
 */
export const iommu_hwpt_selftest = struct('iommu_hwpt_selftest', { iotlb: u32, pagetable_type: u32 });

/** A data_type no real driver uses (enum iommu_hwpt_invalidate_data_type). */
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;

export const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1 << 0;

/** IOMMU_HWPT_INVALIDATE entry for IOMMU_HWPT_INVALIDATE_DATA_SELFTEST. */
export const iommu_hwpt_invalidate_selftest = struct('iommu_hwpt_invalidate_selftest', { flags: u32, iotlb_id: u32 });

// ---------------------------------------------------------------- vIOMMU (7.x)
// iommufd_test.h of 7.2.13: the mock vIOMMU, its invalidation, vEVENT and HW queue types.

export const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;

/** IOMMU_VIOMMU_ALLOC data for IOMMU_VIOMMU_TYPE_SELFTEST: a loopback of in_data and the mmap region. */
export const iommu_viommu_selftest = struct('iommu_viommu_selftest', {
  in_data: u32,
  out_data: u32,
  out_mmap_offset: aligned_u64,
  out_mmap_length: aligned_u64,
});

export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;

/** IOMMU_HWPT_INVALIDATE entry (on a vIOMMU) for IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST. */
export const iommu_viommu_invalidate_selftest = struct('iommu_viommu_invalidate_selftest', { flags: u32, vdev_id: u32, cache_id: u32 });

export const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;

/** The data of a selftest vEVENT, after its struct iommufd_vevent_header. */
export const iommu_viommu_event_selftest = struct('iommu_viommu_event_selftest', { virt_id: u32 });

export const IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
export const IOMMU_TEST_HW_QUEUE_MAX = 2;

/** Constants exported here that iommufd_test.h does not define (the layout check skips them). */
export const NOT_IN_IOMMUFD_TEST_H: readonly string[] = Object.freeze([]);
