// include/uapi/linux/iommufd.h of Linux 7.2.13: every enum, struct and
// ioctl. Names are the header's. All-caps number exports are the header's
// constants (the layout check compares each with the C value of every
// kernel whose header defines it); lowercase exports are struct layouts.
// A struct 7.x extended (iommu_hw_info's in_data_type) is 7.2's: on 6.12 the
// codec still reads and writes it, the kernel there ignores or refuses what
// it does not know, exactly as it would for a program built on 7.2's header.
import { _IO } from './ioctl.ts';
import { aligned_le64, aligned_u64, anonymousUnion, array, s32, struct, u16, u32, u8 } from './layout.ts';
import type { AnyStructLayout, StructLayout, Spec } from './layout.ts';

export const IOMMUFD_TYPE = ';';

export const IOMMUFD_CMD_BASE = 0x80;
export const IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE;
export const IOMMUFD_CMD_IOAS_ALLOC = 0x81;
export const IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82;
export const IOMMUFD_CMD_IOAS_COPY = 0x83;
export const IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84;
export const IOMMUFD_CMD_IOAS_MAP = 0x85;
export const IOMMUFD_CMD_IOAS_UNMAP = 0x86;
export const IOMMUFD_CMD_OPTION = 0x87;
export const IOMMUFD_CMD_VFIO_IOAS = 0x88;
export const IOMMUFD_CMD_HWPT_ALLOC = 0x89;
export const IOMMUFD_CMD_GET_HW_INFO = 0x8a;
export const IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b;
export const IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c;
export const IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d;
export const IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e;
export const IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f;
export const IOMMUFD_CMD_VIOMMU_ALLOC = 0x90;
export const IOMMUFD_CMD_VDEVICE_ALLOC = 0x91;
export const IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92;
export const IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93;
export const IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94;

// ---------------------------------------------------------------- IOAS

export const iommu_destroy = struct('iommu_destroy', { size: u32, id: u32 });
export const IOMMU_DESTROY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY);

export const iommu_ioas_alloc = struct('iommu_ioas_alloc', { size: u32, flags: u32, out_ioas_id: u32 });
export const IOMMU_IOAS_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC);

/** Element of the separate user array that allowed_iovas points to. */
export const iommu_iova_range = struct('iommu_iova_range', { start: aligned_u64, last: aligned_u64 });

export const iommu_ioas_iova_ranges = struct('iommu_ioas_iova_ranges', {
  size: u32,
  ioas_id: u32,
  num_iovas: u32,
  __reserved: u32,
  allowed_iovas: aligned_u64,
  out_iova_alignment: aligned_u64,
});
export const IOMMU_IOAS_IOVA_RANGES = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES);

export const iommu_ioas_allow_iovas = struct('iommu_ioas_allow_iovas', {
  size: u32,
  ioas_id: u32,
  num_iovas: u32,
  __reserved: u32,
  allowed_iovas: aligned_u64,
});
export const IOMMU_IOAS_ALLOW_IOVAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS);

// enum iommufd_ioas_map_flags
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

export const iommu_ioas_map = struct('iommu_ioas_map', {
  size: u32,
  flags: u32,
  ioas_id: u32,
  __reserved: u32,
  user_va: aligned_u64,
  length: aligned_u64,
  iova: aligned_u64,
});
export const IOMMU_IOAS_MAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP);

// IOMMU_IOAS_MAP_FILE (7.x): flags as for iommu_ioas_map; fd a memfd or a supported dma-buf.
export const iommu_ioas_map_file = struct('iommu_ioas_map_file', {
  size: u32,
  flags: u32,
  ioas_id: u32,
  fd: s32,
  start: aligned_u64,
  length: aligned_u64,
  iova: aligned_u64,
});
export const IOMMU_IOAS_MAP_FILE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE);

export const iommu_ioas_copy = struct('iommu_ioas_copy', {
  size: u32,
  flags: u32,
  dst_ioas_id: u32,
  src_ioas_id: u32,
  length: aligned_u64,
  dst_iova: aligned_u64,
  src_iova: aligned_u64,
});
export const IOMMU_IOAS_COPY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY);

export const iommu_ioas_unmap = struct('iommu_ioas_unmap', { size: u32, ioas_id: u32, iova: aligned_u64, length: aligned_u64 });
export const IOMMU_IOAS_UNMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP);

// ---------------------------------------------------------------- options and VFIO compat

// enum iommufd_option
export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;

// enum iommufd_option_ops
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;

export const iommu_option = struct('iommu_option', {
  size: u32,
  option_id: u32,
  op: u16,
  __reserved: u16,
  object_id: u32,
  val64: aligned_u64,
});
export const IOMMU_OPTION = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION);

// enum iommufd_vfio_ioas_op
export const IOMMU_VFIO_IOAS_GET = 0;
export const IOMMU_VFIO_IOAS_SET = 1;
export const IOMMU_VFIO_IOAS_CLEAR = 2;

export const iommu_vfio_ioas = struct('iommu_vfio_ioas', { size: u32, ioas_id: u32, op: u16, __reserved: u16 });
export const IOMMU_VFIO_IOAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS);

// ---------------------------------------------------------------- HW page tables

// enum iommufd_hwpt_alloc_flags
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

// enum iommu_hwpt_vtd_s1_flags
export const IOMMU_VTD_S1_SRE = 1 << 0;
export const IOMMU_VTD_S1_EAFE = 1 << 1;
export const IOMMU_VTD_S1_WPE = 1 << 2;

export const iommu_hwpt_vtd_s1 = struct('iommu_hwpt_vtd_s1', {
  flags: aligned_u64,
  pgtbl_addr: aligned_u64,
  addr_width: u32,
  __reserved: u32,
});

/** ARM SMMUv3 nested STE (IOMMU_HWPT_DATA_ARM_SMMUV3); __aligned_le64, little-endian like the host. */
export const iommu_hwpt_arm_smmuv3 = struct('iommu_hwpt_arm_smmuv3', { ste: array(aligned_le64, 2) });

/** AMD guest DTE (IOMMU_HWPT_DATA_AMD_GUEST). */
export const iommu_hwpt_amd_guest = struct('iommu_hwpt_amd_guest', { dte: array(aligned_u64, 4) });

// enum iommu_hwpt_data_type
export const IOMMU_HWPT_DATA_NONE = 0;
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
export const IOMMU_HWPT_DATA_AMD_GUEST = 3;

export const iommu_hwpt_alloc = struct('iommu_hwpt_alloc', {
  size: u32,
  flags: u32,
  dev_id: u32,
  pt_id: u32,
  out_hwpt_id: u32,
  __reserved: u32,
  data_type: u32,
  data_len: u32,
  data_uptr: aligned_u64,
  fault_id: u32,
  __reserved2: u32,
});
export const IOMMU_HWPT_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC);

// enum iommu_hw_info_vtd_flags
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

export const iommu_hw_info_vtd = struct('iommu_hw_info_vtd', {
  flags: u32,
  __reserved: u32,
  cap_reg: aligned_u64,
  ecap_reg: aligned_u64,
});

export const iommu_hw_info_arm_smmuv3 = struct('iommu_hw_info_arm_smmuv3', {
  flags: u32,
  __reserved: u32,
  idr: array(u32, 6),
  iidr: u32,
  aidr: u32,
});

export const iommu_hw_info_tegra241_cmdqv = struct('iommu_hw_info_tegra241_cmdqv', {
  flags: u32,
  version: u8,
  log2vcmdqs: u8,
  log2vsids: u8,
  __reserved: u8,
});

export const iommu_hw_info_amd = struct('iommu_hw_info_amd', { efr: aligned_u64, efr2: aligned_u64 });

// enum iommu_hw_info_type
export const IOMMU_HW_INFO_TYPE_NONE = 0;
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
export const IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3;
export const IOMMU_HW_INFO_TYPE_AMD = 4;

// enum iommufd_hw_capabilities
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1;
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2;
export const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3;

// enum iommufd_hw_info_flags
/** in_data_type (out_data_type's slot) is an input: which type of data to report. */
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;

export const iommu_hw_info = struct('iommu_hw_info', {
  size: u32,
  flags: u32,
  dev_id: u32,
  data_len: u32,
  data_uptr: aligned_u64,
  // A TS-only label: C's union is anonymous (6.12's header has out_data_type alone, at the same offset).
  union: anonymousUnion({ in_data_type: u32, out_data_type: u32 }),
  out_max_pasid_log2: u8,
  __reserved: array(u8, 3),
  out_capabilities: aligned_u64,
});
export const IOMMU_GET_HW_INFO = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO);

// ---------------------------------------------------------------- dirty tracking

// enum iommufd_hwpt_set_dirty_tracking_flags
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;

export const iommu_hwpt_set_dirty_tracking = struct('iommu_hwpt_set_dirty_tracking', {
  size: u32,
  flags: u32,
  hwpt_id: u32,
  __reserved: u32,
});
export const IOMMU_HWPT_SET_DIRTY_TRACKING = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING);

// enum iommufd_hwpt_get_dirty_bitmap_flags
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

export const iommu_hwpt_get_dirty_bitmap = struct('iommu_hwpt_get_dirty_bitmap', {
  size: u32,
  hwpt_id: u32,
  flags: u32,
  __reserved: u32,
  iova: aligned_u64,
  length: aligned_u64,
  page_size: aligned_u64,
  data: aligned_u64,
});
export const IOMMU_HWPT_GET_DIRTY_BITMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP);

// ---------------------------------------------------------------- invalidation

// enum iommu_hwpt_invalidate_data_type
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;

// enum iommu_hwpt_vtd_s1_invalidate_flags
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;

export const iommu_hwpt_vtd_s1_invalidate = struct('iommu_hwpt_vtd_s1_invalidate', {
  addr: aligned_u64,
  npages: aligned_u64,
  flags: u32,
  __reserved: u32,
});

/** A 128-bit SMMU CMDQ command (IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3), little-endian. */
export const iommu_viommu_arm_smmuv3_invalidate = struct('iommu_viommu_arm_smmuv3_invalidate', { cmd: array(aligned_le64, 2) });

export const iommu_hwpt_invalidate = struct('iommu_hwpt_invalidate', {
  size: u32,
  hwpt_id: u32,
  data_uptr: aligned_u64,
  data_type: u32,
  entry_len: u32,
  entry_num: u32,
  __reserved: u32,
});
export const IOMMU_HWPT_INVALIDATE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE);

// ---------------------------------------------------------------- IO page faults

// enum iommu_hwpt_pgfault_flags
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;

// enum iommu_hwpt_pgfault_perm
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;

/** Read from the fault fd, one per fault. */
export const iommu_hwpt_pgfault = struct('iommu_hwpt_pgfault', {
  flags: u32,
  dev_id: u32,
  pasid: u32,
  grpid: u32,
  perm: u32,
  __reserved: u32,
  addr: aligned_u64,
  length: u32,
  cookie: u32,
});

// enum iommufd_page_response_code
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
export const IOMMUFD_PAGE_RESP_INVALID = 1;

/** Written to the fault fd to answer a fault. */
export const iommu_hwpt_page_response = struct('iommu_hwpt_page_response', { cookie: u32, code: u32 });

export const iommu_fault_alloc = struct('iommu_fault_alloc', { size: u32, flags: u32, out_fault_id: u32, out_fault_fd: u32 });
export const IOMMU_FAULT_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC);

// ---------------------------------------------------------------- vIOMMU, vDEVICE, vEVENTQ, HW queue (7.x)
// include/uapi/linux/iommufd.h of 7.2.13, in the header's order.

// enum iommu_viommu_type
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
export const IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2;

/** IOMMU_VIOMMU_ALLOC data for IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV: where to mmap the VINTF's page0. */
export const iommu_viommu_tegra241_cmdqv = struct('iommu_viommu_tegra241_cmdqv', { out_vintf_mmap_offset: aligned_u64, out_vintf_mmap_length: aligned_u64 });

export const iommu_viommu_alloc = struct('iommu_viommu_alloc', {
  size: u32,
  flags: u32,
  type: u32,
  dev_id: u32,
  hwpt_id: u32,
  out_viommu_id: u32,
  data_len: u32,
  __reserved: u32,
  data_uptr: aligned_u64,
});
export const IOMMU_VIOMMU_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC);

export const iommu_vdevice_alloc = struct('iommu_vdevice_alloc', {
  size: u32,
  viommu_id: u32,
  dev_id: u32,
  out_vdevice_id: u32,
  virt_id: aligned_u64,
});
export const IOMMU_VDEVICE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC);

// IOMMU_IOAS_CHANGE_PROCESS (the pasid slice)
export const iommu_ioas_change_process = struct('iommu_ioas_change_process', { size: u32, __reserved: u32 });
export const IOMMU_IOAS_CHANGE_PROCESS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_CHANGE_PROCESS);

// enum iommu_veventq_flag
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;

/** Read from a vEVENTQ fd before each vEVENT's data (alone, for a lost-events header). */
export const iommufd_vevent_header = struct('iommufd_vevent_header', { flags: u32, sequence: u32 });

// enum iommu_veventq_type
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
export const IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2;

/** The data of an IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 vEVENT: an SMMUv3 event record, little-endian. */
export const iommu_vevent_arm_smmuv3 = struct('iommu_vevent_arm_smmuv3', { evt: array(aligned_le64, 4) });

/** The data of an IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV vEVENT: the LVCMDQ error map, little-endian. */
export const iommu_vevent_tegra241_cmdqv = struct('iommu_vevent_tegra241_cmdqv', { lvcmdq_err_map: array(aligned_le64, 2) });

export const iommu_veventq_alloc = struct('iommu_veventq_alloc', {
  size: u32,
  flags: u32,
  viommu_id: u32,
  type: u32,
  veventq_depth: u32,
  out_veventq_id: u32,
  out_veventq_fd: u32,
  __reserved: u32,
});
export const IOMMU_VEVENTQ_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VEVENTQ_ALLOC);

// enum iommu_hw_queue_type
export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
export const IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1;

export const iommu_hw_queue_alloc = struct('iommu_hw_queue_alloc', {
  size: u32,
  flags: u32,
  viommu_id: u32,
  type: u32,
  index: u32,
  out_hw_queue_id: u32,
  nesting_parent_iova: aligned_u64,
  length: aligned_u64,
});
export const IOMMU_HW_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HW_QUEUE_ALLOC);

// ---------------------------------------------------------------- the kernel's ioctl table

/**
 * One row of drivers/iommu/iommufd/main.c's iommufd_ioctl_ops[]:
 * IOCTL_OP(ioctl, fn, struct, last). The kernel rejects a size below
 * offsetofend(struct, last) with EINVAL and copies at most sizeof(struct).
 */
export interface IoctlOp<N extends string = string> {
  readonly ioctl: N;
  readonly request: number;
  readonly struct: AnyStructLayout;
  /** The `_last` member named in IOCTL_OP. */
  readonly last: string;
  /** offsetofend(struct, last). */
  readonly minSize: number;
}

export function ioctlOp<N extends string, S extends Spec>(
  ioctl: N,
  request: number,
  layout: StructLayout<S>,
  last: Parameters<StructLayout<S>['offsetEnd']>[0],
): IoctlOp<N> {
  return Object.freeze({ ioctl, request, struct: layout, last, minSize: layout.offsetEnd(last) });
}

/** iommufd_ioctl_ops[] without IOMMU_TEST_CMD (that one is in iommufd_test.ts), in main.c's order. */
export const IOMMUFD_IOCTL_OPS = Object.freeze([
  ioctlOp('IOMMU_DESTROY', IOMMU_DESTROY, iommu_destroy, 'id'),
  ioctlOp('IOMMU_FAULT_QUEUE_ALLOC', IOMMU_FAULT_QUEUE_ALLOC, iommu_fault_alloc, 'out_fault_fd'),
  ioctlOp('IOMMU_GET_HW_INFO', IOMMU_GET_HW_INFO, iommu_hw_info, '__reserved'),
  ioctlOp('IOMMU_HW_QUEUE_ALLOC', IOMMU_HW_QUEUE_ALLOC, iommu_hw_queue_alloc, 'length'),
  ioctlOp('IOMMU_HWPT_ALLOC', IOMMU_HWPT_ALLOC, iommu_hwpt_alloc, '__reserved'),
  ioctlOp('IOMMU_HWPT_GET_DIRTY_BITMAP', IOMMU_HWPT_GET_DIRTY_BITMAP, iommu_hwpt_get_dirty_bitmap, 'data'),
  ioctlOp('IOMMU_HWPT_INVALIDATE', IOMMU_HWPT_INVALIDATE, iommu_hwpt_invalidate, '__reserved'),
  ioctlOp('IOMMU_HWPT_SET_DIRTY_TRACKING', IOMMU_HWPT_SET_DIRTY_TRACKING, iommu_hwpt_set_dirty_tracking, '__reserved'),
  ioctlOp('IOMMU_IOAS_ALLOC', IOMMU_IOAS_ALLOC, iommu_ioas_alloc, 'out_ioas_id'),
  ioctlOp('IOMMU_IOAS_ALLOW_IOVAS', IOMMU_IOAS_ALLOW_IOVAS, iommu_ioas_allow_iovas, 'allowed_iovas'),
  ioctlOp('IOMMU_IOAS_CHANGE_PROCESS', IOMMU_IOAS_CHANGE_PROCESS, iommu_ioas_change_process, '__reserved'),
  ioctlOp('IOMMU_IOAS_COPY', IOMMU_IOAS_COPY, iommu_ioas_copy, 'src_iova'),
  ioctlOp('IOMMU_IOAS_IOVA_RANGES', IOMMU_IOAS_IOVA_RANGES, iommu_ioas_iova_ranges, 'out_iova_alignment'),
  ioctlOp('IOMMU_IOAS_MAP', IOMMU_IOAS_MAP, iommu_ioas_map, 'iova'),
  ioctlOp('IOMMU_IOAS_MAP_FILE', IOMMU_IOAS_MAP_FILE, iommu_ioas_map_file, 'iova'),
  ioctlOp('IOMMU_IOAS_UNMAP', IOMMU_IOAS_UNMAP, iommu_ioas_unmap, 'length'),
  ioctlOp('IOMMU_OPTION', IOMMU_OPTION, iommu_option, 'val64'),
  ioctlOp('IOMMU_VDEVICE_ALLOC', IOMMU_VDEVICE_ALLOC, iommu_vdevice_alloc, 'virt_id'),
  ioctlOp('IOMMU_VEVENTQ_ALLOC', IOMMU_VEVENTQ_ALLOC, iommu_veventq_alloc, 'out_veventq_fd'),
  ioctlOp('IOMMU_VFIO_IOAS', IOMMU_VFIO_IOAS, iommu_vfio_ioas, '__reserved'),
  ioctlOp('IOMMU_VIOMMU_ALLOC', IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, 'out_viommu_id'),
] as const);

/** vIOMMU (7.x): the rows of IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC, IOMMU_VEVENTQ_ALLOC and IOMMU_HW_QUEUE_ALLOC. */
const VIOMMU_IOCTLS = new Set(['IOMMU_HW_QUEUE_ALLOC', 'IOMMU_VDEVICE_ALLOC', 'IOMMU_VEVENTQ_ALLOC', 'IOMMU_VIOMMU_ALLOC']);
export const IOMMUFD_VIOMMU_IOCTL_OPS = Object.freeze(IOMMUFD_IOCTL_OPS.filter((op) => VIOMMU_IOCTLS.has(op.ioctl)));

/** The kernel's minimum accepted `size` per ioctl name (offsetofend of IOCTL_OP's last member). */
export const MIN_SIZE = Object.freeze(Object.fromEntries(IOMMUFD_IOCTL_OPS.map((op) => [op.ioctl, op.minSize]))) as Readonly<
  Record<(typeof IOMMUFD_IOCTL_OPS)[number]['ioctl'], number>
>;
