// The parts of include/uapi/linux/vfio.h (Linux 7.2.13) this project uses:
// the container, group and cdev device ioctls (with 7.x's PASID attach and
// bind token), the dma-buf device feature iommufd maps, and the type1 IOMMU
// API that iommufd's VFIO compatibility layer implements. What is left out, and why,
// is listed in VFIO_H_OMITTED_STRUCTS. All-caps number exports are the
// header's constants; lowercase exports are struct layouts.
import { _IO } from './ioctl.ts';
import { aligned_u64, flex, s32, struct, u16, u32, u64, u8, uptr } from './layout.ts';

export const VFIO_API_VERSION = 0;

// Extension ids for VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
/** 6.12's name; 7.x reserves the number (vfio: Remove VFIO_TYPE1_NESTING_IOMMU). */
export const VFIO_TYPE1_NESTING_IOMMU = 6;
export const __VFIO_RESERVED_TYPE1_NESTING_IOMMU = 6;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

export const VFIO_TYPE = ';';
export const VFIO_BASE = 100;

/** Header of each capability in an INFO ioctl's chain; `next` is an offset from the start of the info buffer (0 ends it). */
export const vfio_info_cap_header = struct('vfio_info_cap_header', { id: u16, version: u16, next: u32 });

// ---------------------------------------------------------------- container (/dev/vfio/vfio)

export const VFIO_GET_API_VERSION = _IO(VFIO_TYPE, VFIO_BASE + 0);
export const VFIO_CHECK_EXTENSION = _IO(VFIO_TYPE, VFIO_BASE + 1);
export const VFIO_SET_IOMMU = _IO(VFIO_TYPE, VFIO_BASE + 2);

// ---------------------------------------------------------------- group (/dev/vfio/N)

export const vfio_group_status = struct('vfio_group_status', { argsz: u32, flags: u32 });
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;
export const VFIO_GROUP_GET_STATUS = _IO(VFIO_TYPE, VFIO_BASE + 3);

export const VFIO_GROUP_SET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 4);
export const VFIO_GROUP_UNSET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 5);
export const VFIO_GROUP_GET_DEVICE_FD = _IO(VFIO_TYPE, VFIO_BASE + 6);

// ---------------------------------------------------------------- device (group fd or /dev/vfio/devices/vfioN)

export const vfio_device_info = struct('vfio_device_info', {
  argsz: u32,
  flags: u32,
  num_regions: u32,
  num_irqs: u32,
  cap_offset: u32,
  pad: u32,
});
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
export const VFIO_DEVICE_FLAGS_CDX = 1 << 8;
export const VFIO_DEVICE_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 7);

// The three cdev structs grew in 7.x (token_uuid_ptr, pasid): each kernel
// reads argsz bytes from offsetofend of its own minimum, so 6.12 takes the
// longer struct as long as the flag selecting the new member is clear.

/** token_uuid_ptr is read only with VFIO_DEVICE_BIND_FLAG_TOKEN (a PF/VF token, 16-byte UUID). */
export const VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0;
export const vfio_device_bind_iommufd = struct('vfio_device_bind_iommufd', { argsz: u32, flags: u32, iommufd: s32, out_devid: u32, token_uuid_ptr: aligned_u64 });
export const VFIO_DEVICE_BIND_IOMMUFD = _IO(VFIO_TYPE, VFIO_BASE + 18);

/** pasid is read only with VFIO_DEVICE_ATTACH_PASID. */
export const VFIO_DEVICE_ATTACH_PASID = 1 << 0;
export const vfio_device_attach_iommufd_pt = struct('vfio_device_attach_iommufd_pt', { argsz: u32, flags: u32, pt_id: u32, pasid: u32 });
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 19);

/** pasid is read only with VFIO_DEVICE_DETACH_PASID. */
export const VFIO_DEVICE_DETACH_PASID = 1 << 0;
export const vfio_device_detach_iommufd_pt = struct('vfio_device_detach_iommufd_pt', { argsz: u32, flags: u32, pasid: u32 });
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 20);

// ---------------------------------------------------------------- device features: the dma-buf export of a region (7.x)

/** VFIO_DEVICE_FEATURE's header; the feature's own struct follows in data[]. */
export const vfio_device_feature = struct('vfio_device_feature', { argsz: u32, flags: u32, data: flex(u8) });
export const VFIO_DEVICE_FEATURE_MASK = 0xffff;
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;
export const VFIO_DEVICE_FEATURE = _IO(VFIO_TYPE, VFIO_BASE + 17);

/**
 * VFIO_DEVICE_FEATURE(GET) of this feature returns a dma-buf fd for slices of
 * a region (P2P MMIO), which IOMMU_IOAS_MAP_FILE can map. The feature header
 * (struct vfio_device_feature) is declared above; its other features are not.
 */
export const VFIO_DEVICE_FEATURE_DMA_BUF = 11;

export const vfio_region_dma_range = struct('vfio_region_dma_range', { offset: u64, length: u64 });

export const vfio_device_feature_dma_buf = struct('vfio_device_feature_dma_buf', {
  region_index: u32,
  open_flags: u32,
  flags: u32,
  nr_ranges: u32,
  dma_ranges: flex(vfio_region_dma_range, { count: 'nr_ranges' }),
});

// ---------------------------------------------------------------- type1 IOMMU (container fd, or an iommufd fd in compat mode)

export const vfio_iommu_type1_info = struct('vfio_iommu_type1_info', {
  argsz: u32,
  flags: u32,
  iova_pgsizes: aligned_u64,
  cap_offset: u32,
  pad: u32,
});
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;

export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;

export const vfio_iova_range = struct('vfio_iova_range', { start: u64, end: u64 });

export const vfio_iommu_type1_info_cap_iova_range = struct('vfio_iommu_type1_info_cap_iova_range', {
  header: vfio_info_cap_header,
  nr_iovas: u32,
  reserved: u32,
  iova_ranges: flex(vfio_iova_range, { count: 'nr_iovas' }),
});

export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;

export const vfio_iommu_type1_info_cap_migration = struct('vfio_iommu_type1_info_cap_migration', {
  header: vfio_info_cap_header,
  flags: u32,
  pgsize_bitmap: u64,
  max_dirty_bitmap_size: u64,
});

export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

export const vfio_iommu_type1_info_dma_avail = struct('vfio_iommu_type1_info_dma_avail', {
  header: vfio_info_cap_header,
  avail: u32,
});

export const VFIO_IOMMU_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12);

export const vfio_iommu_type1_dma_map = struct('vfio_iommu_type1_dma_map', {
  argsz: u32,
  flags: u32,
  vaddr: u64,
  iova: u64,
  size: u64,
});
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;
export const VFIO_IOMMU_MAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 13);

export const vfio_bitmap = struct('vfio_bitmap', { pgsize: u64, size: u64, data: uptr });

/** With VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, data[] holds a struct vfio_bitmap (encode it as the tail). */
export const vfio_iommu_type1_dma_unmap = struct('vfio_iommu_type1_dma_unmap', {
  argsz: u32,
  flags: u32,
  iova: u64,
  size: u64,
  data: flex(u8),
});
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;
export const VFIO_IOMMU_UNMAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 14);

export const VFIO_IOMMU_ENABLE = _IO(VFIO_TYPE, VFIO_BASE + 15);
export const VFIO_IOMMU_DISABLE = _IO(VFIO_TYPE, VFIO_BASE + 16);

/** With FLAG_GET_BITMAP, data[] holds a struct vfio_iommu_type1_dirty_bitmap_get (encode it as the tail). */
export const vfio_iommu_type1_dirty_bitmap = struct('vfio_iommu_type1_dirty_bitmap', { argsz: u32, flags: u32, data: flex(u8) });
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2;

export const vfio_iommu_type1_dirty_bitmap_get = struct('vfio_iommu_type1_dirty_bitmap_get', {
  iova: u64,
  size: u64,
  bitmap: vfio_bitmap,
});
export const VFIO_IOMMU_DIRTY_PAGES = _IO(VFIO_TYPE, VFIO_BASE + 17);

// ---------------------------------------------------------------- what is left out

const DEVICE_REGION_IRQ = 'device region/IRQ/reset/feature API: drives a real device, outside the IOMMU surface this suite tests';
const MIGRATION = 'device migration and DMA-logging features: device-driver API, not the container/iommufd IOMMU surface';
const SPAPR_EEH = 'POWER-only (sPAPR TCE IOMMU, EEH); the suite targets x86_64';

/** vfio.h structs not declared here, each with the reason; the layout check requires every other struct in vfio.h to be declared. */
export const VFIO_H_OMITTED_STRUCTS: Readonly<Record<string, string>> = Object.freeze({
  vfio_device_info_cap_pci_atomic_comp: DEVICE_REGION_IRQ,
  vfio_region_info: DEVICE_REGION_IRQ,
  vfio_region_sparse_mmap_area: DEVICE_REGION_IRQ,
  vfio_region_info_cap_sparse_mmap: DEVICE_REGION_IRQ,
  vfio_region_info_cap_type: DEVICE_REGION_IRQ,
  vfio_region_gfx_edid: DEVICE_REGION_IRQ,
  vfio_region_info_cap_nvlink2_ssatgt: DEVICE_REGION_IRQ,
  vfio_region_info_cap_nvlink2_lnkspd: DEVICE_REGION_IRQ,
  vfio_irq_info: DEVICE_REGION_IRQ,
  vfio_irq_set: DEVICE_REGION_IRQ,
  vfio_pci_dependent_device: DEVICE_REGION_IRQ,
  vfio_pci_hot_reset_info: DEVICE_REGION_IRQ,
  vfio_pci_hot_reset: DEVICE_REGION_IRQ,
  vfio_device_gfx_plane_info: DEVICE_REGION_IRQ,
  vfio_device_ioeventfd: DEVICE_REGION_IRQ,
  vfio_device_feature_bus_master: DEVICE_REGION_IRQ,
  vfio_device_low_power_entry_with_wakeup: DEVICE_REGION_IRQ,
  vfio_device_migration_info: MIGRATION,
  vfio_device_feature_migration: MIGRATION,
  vfio_device_feature_mig_state: MIGRATION,
  vfio_precopy_info: MIGRATION,
  vfio_device_feature_dma_logging_control: MIGRATION,
  vfio_device_feature_dma_logging_range: MIGRATION,
  vfio_device_feature_dma_logging_report: MIGRATION,
  vfio_device_feature_mig_data_size: MIGRATION,
  vfio_iommu_spapr_tce_ddw_info: SPAPR_EEH,
  vfio_iommu_spapr_tce_info: SPAPR_EEH,
  vfio_eeh_pe_err: SPAPR_EEH,
  vfio_eeh_pe_op: SPAPR_EEH,
  vfio_iommu_spapr_register_memory: SPAPR_EEH,
  vfio_iommu_spapr_tce_create: SPAPR_EEH,
  vfio_iommu_spapr_tce_remove: SPAPR_EEH,
});
