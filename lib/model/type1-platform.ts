// The platform a real type1 container runs on, as the kernel's IOMMU driver
// and vfio_iommu_type1's module parameters describe it to
// vfio_iommu_type1_attach_group: the domain's page sizes and aperture, the
// group's reserved regions, cache coherency, MSI isolation. The model takes
// it as an input; this file reads it in a guest (sysfs, dmesg, /proc) and
// derives the paging domain's geometry the way the driver serving the group
// does: Intel VT-d (drivers/iommu/intel/iommu.c), AMD-Vi (drivers/iommu/amd)
// or virtio-iommu (drivers/iommu/virtio-iommu.c). Facts only, never the
// answer of an ioctl under test. Only readType1Platform and readUserPtrMax do
// I/O; the derivation is a pure function of the texts, so it is unit-testable.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ULONG_MAX } from './pages.ts';
import { PAGE_SIZE } from './process.ts';

export interface Type1ReservedRegion {
  start: bigint;
  /** Inclusive. */
  last: bigint;
  /** As /sys/kernel/iommu_groups/N/reserved_regions names it: direct, direct-relaxable, reserved, msi, msi-sw. */
  type: string;
}

/** What vfio_iommu_type1_attach_group learns about one group and the domain it gets. */
export interface Type1Platform {
  /** The IOMMU driver whose domain this is (type1PlatformFrom sets it; absent: intel-iommu). */
  driver?: IommuDriverName;
  /** iommu_domain->pgsize_bitmap of a paging domain for this group (its bits in pgsizeBitsUnknown taken as 0). */
  pgsizeBitmap: bigint;
  /**
   * Bits of pgsize_bitmap that no fact the model reads tells (PGSIZE_BITS_UNKNOWN): a constant of the
   * kernel's tree that only VFIO_IOMMU_GET_INFO shows. Lockstep and the audit compare iova_pgsizes without
   * them and say so (lib/lockstep/unchecked.ts). Absent: every bit is known.
   */
  pgsizeBitsUnknown?: bigint;
  /** iommu_domain->geometry: aperture_start .. aperture_end (inclusive). */
  aperture: { start: bigint; last: bigint };
  /** iommu_get_group_resv_regions(), merged as sysfs shows them. */
  reservedRegions: Type1ReservedRegion[];
  /** domain->ops->enforce_cache_coherency() on a fresh domain: VFIO_DMA_CC_IOMMU. */
  enforceCacheCoherency: boolean;
  /**
   * Whether the driver's map op takes a mapping with neither IOMMU_READ nor IOMMU_WRITE (what iommufd's
   * compat asks for a MAP_DMA with flags 0): virtio-iommu's viommu_map_pages only refuses flags outside
   * `vdomain->map_flags`, and 0 is never that; VT-d's __domain_mapping and AMD-Vi's iommu_v1_map_pages
   * (`if (!(prot & IOMMU_PROT_MASK))`) refuse it with EINVAL. Absent: false (VT-d).
   */
  domainMapsWithoutAccess?: boolean;
  /** iommu_group_has_isolated_msi(): interrupt remapping is on for the group's devices (interruptRemappingFrom). */
  interruptRemapping: boolean;
  /** vfio_iommu_type1.allow_unsafe_interrupts. */
  allowUnsafeInterrupts: boolean;
  /**
   * iommufd.allow_unsafe_interrupts (drivers/iommu/iommufd/device.c), which iommufd_device_bind reads for
   * every real device, whether VFIO binds it through a group on a compat /dev/iommu or through its cdev:
   * iommufd never reads type1's parameter.
   */
  iommufdAllowUnsafeInterrupts: boolean;
  /** vfio_iommu_type1.dma_entry_limit, read when the container's driver is opened (SET_IOMMU). */
  dmaEntryLimit: number;
}

/** The IOMMU driver of the unit serving a group (iommuUnitOfGroup). */
export type IommuDriverName = 'intel-iommu' | 'amd-iommu' | 'virtio-iommu';

/** The texts readType1Platform gathers; every field is the file's or command's output. */
export interface Type1PlatformSources {
  /** The driver of the unit serving the group (default intel-iommu). */
  driver?: IommuDriverName;
  /** /sys/kernel/iommu_groups/N/reserved_regions */
  reservedRegions: string;
  /** intel-iommu: /sys/class/iommu/dmarX/intel-iommu/cap (hex) of the unit serving the group. */
  intelCap?: string;
  /** intel-iommu: /sys/class/iommu/dmarX/intel-iommu/ecap (hex). */
  intelEcap?: string;
  /** /proc/cmdline (intel_iommu=sm_on|sm_off|sp_off; amd_iommu=nohugepages|v2_pgsizes_only|pgtbl_v2). */
  cmdline: string;
  /**
   * The kernel log: "DMAR-IR: Enabled IRQ remapping" or "AMD-Vi: Interrupt remapping enabled" (MSI
   * isolation), virtio-iommu's "input address: N bits" and "page mask: 0x..." (its domain geometry).
   */
  dmesg: string;
  /** /proc/interrupts: the irq chips of the PCI MSIs (interruptRemappingFrom). Absent: the kernel log alone decides. */
  interrupts?: string;
  /**
   * The PCI functions that are IOMMU units themselves (/sys/class/iommu/UNIT/device, e.g. AMD-Vi's
   * 0000:00:03.0): their own MSIs (the event log's) are never remapped, so /proc/interrupts' verdict leaves them out.
   */
  iommuPciDevices?: string[];
  /** /sys/module/iommufd/parameters/allow_unsafe_interrupts ("Y"/"N"); absent where the kernel has no iommufd. */
  iommufdAllowUnsafeInterrupts?: string;
  /** /sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts ("Y"/"N"). */
  allowUnsafeInterrupts: string;
  /** /sys/module/vfio_iommu_type1/parameters/dma_entry_limit. */
  dmaEntryLimit: string;
  /** CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON of the guest kernel (the test kernel has it =y). */
  scalableModeDefaultOn?: boolean;
  /** amd-iommu: the IVinfo field of the ACPI IVRS table (/sys/firmware/acpi/tables/IVRS, the u32 at offset 36). */
  amdIvinfo?: number;
  /** The facts the caller probes (Type1PlatformProbes). */
  probes?: Type1PlatformProbes;
}

/** Facts about the running kernel's code that no sysfs file shows, probed by the caller (lib/lockstep/models.ts). */
export interface Type1PlatformProbes {
  /**
   * The kernel builds its page tables on the generic page table code (drivers/iommu/generic_pt, 7.x):
   * KernelBehaviour.mockGenericPt, probed on the selftest mock domain, whose table is generic_pt's amdv1
   * format (generic_pt/fmt/iommu_mock.c: PT_FMT amdv1, the AMDV1_IOMMUFD_SELFTEST variant), the format AMD-Vi's
   * v1 domain is (amd/iommu.c amd_iommu_domain_alloc_paging_v1: pt_iommu_amdv1_init). 6.12's kernel has no
   * generic_pt: its AMD-Vi v1 table is io-pgtable's (amd/io_pgtable.c). Absent: false.
   */
  genericPt?: boolean;
}

const bit = (v: bigint, n: number) => (v >> BigInt(n)) & 1n;
const bits = (v: bigint, lo: number, width: number) => Number((v >> BigInt(lo)) & ((1n << BigInt(width)) - 1n));
/** fls(): 1-based index of the highest set bit, 0 for 0. */
const fls = (x: number) => (x === 0 ? 0 : 32 - Math.clz32(x));

export function parseReservedRegions(text: string): Type1ReservedRegion[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => {
      const [start, last, type] = l.split(/\s+/);
      if (start === undefined || last === undefined || type === undefined) throw new Error(`bad reserved_regions line: ${l}`);
      return { start: BigInt(start), last: BigInt(last), type };
    });
}

/**
 * The VFIO (IOMMU_DOMAIN_UNMANAGED) domain the Intel driver gives a group,
 * from the unit's CAP/ECAP registers:
 * - intel_iommu_domain_alloc → md_domain_init, then at attach
 *   prepare_domain_attach_device sets gaw = min(agaw_to_width(iommu->agaw),
 *   cap_mgaw) and domain_update_iommu_cap sets aperture_end = 2^gaw - 1
 *   (2^(gaw-1) - 1 for first-level tables) and adds the superpage sizes;
 * - iommu->agaw is the largest supported AGAW <= width_to_agaw(57)
 *   (iommu_calculate_agaw over __iommu_calculate_sagaw);
 * - first_level_by_default(UNMANAGED) is false unless scalable mode has
 *   only first-level tables;
 * - superpages (domain_update_iommu_superpage): second level 2M/1G from
 *   cap SLLPS; first level 2M, plus 1G with cap FL1GP; none with sp_off;
 * - enforce_cache_coherency needs ecap SC (domain_support_force_snooping).
 */
export function intelVtdDomain(capHex: string, ecapHex: string, cmdline: string, scalableModeDefaultOn = true) {
  const cap = BigInt(`0x${capHex.trim().replace(/^0x/, '')}`);
  const ecap = BigInt(`0x${ecapHex.trim().replace(/^0x/, '')}`);
  const opts = (/(?:^|\s)intel_iommu=(\S+)/.exec(cmdline)?.[1] ?? '').split(',');
  let smEnabled = scalableModeDefaultOn;
  if (opts.includes('sm_on')) smEnabled = true;
  if (opts.includes('sm_off')) smEnabled = false;
  const superpageEnabled = !opts.includes('sp_off');
  const smSupported = smEnabled && bit(ecap, 43) === 1n; // sm_supported(): ecap_smts
  const flts = bit(ecap, 47) === 1n;
  const slts = bit(ecap, 46) === 1n;
  const firstLevel = smSupported && flts !== slts ? flts : false;
  // __iommu_calculate_sagaw
  const slSagaw = bits(cap, 8, 5);
  const flSagaw = (1 << 2) | (bit(cap, 60) === 1n ? 1 << 3 : 0);
  const sagaw = !smSupported || !flts ? slSagaw : !slts ? flSagaw : flSagaw & slSagaw;
  let agaw = Math.ceil((57 - 30) / 9); // width_to_agaw(DEFAULT_DOMAIN_ADDRESS_WIDTH)
  while (agaw >= 0 && !((sagaw >> agaw) & 1)) agaw--;
  if (agaw < 0) throw new Error(`no supported AGAW in cap ${capHex}`);
  const mgaw = bits(cap, 16, 6) + 1;
  const gaw = Math.min(Math.min(30 + agaw * 9, 64), mgaw);
  const apertureLast = (1n << BigInt(firstLevel ? gaw - 1 : gaw)) - 1n;
  let superpage = 0;
  if (superpageEnabled) superpage = firstLevel ? (bit(cap, 56) === 1n ? 2 : 1) : fls(3 & bits(cap, 34, 4));
  const SZ_4K = 0x1000n, SZ_2M = 0x200000n, SZ_1G = 0x40000000n;
  const pgsizeBitmap = SZ_4K | (superpage >= 1 ? SZ_2M : 0n) | (superpage >= 2 ? SZ_1G : 0n);
  const enforceCacheCoherency = bit(ecap, 7) === 1n;
  return { pgsizeBitmap, aperture: { start: 0n, last: apertureLast }, enforceCacheCoherency, firstLevel, gaw };
}

/** GENMASK_ULL(hi, lo) */
const genmask = (hi: number, lo: number) => ((1n << BigInt(hi + 1)) - 1n) ^ ((1n << BigInt(lo)) - 1n);
/** drivers/iommu/amd/amd_iommu_types.h (6.12): AMD_IOMMU_PGSIZES, _4K and _V2. */
export const AMD_IOMMU_PGSIZES = genmask(51, 12) ^ (1n << 39n); // ^ SZ_512G: "512GB Pages are not supported due to a hardware bug"
export const AMD_IOMMU_PGSIZES_4K = 0x1000n;
export const AMD_IOMMU_PGSIZES_V2 = 0x1000n | (1n << 21n) | (1n << 30n);
/**
 * The page sizes of 2^52 and above, which AMD-Vi's io-pgtable kernels claim or not by a constant of their
 * tree: 6.1's AMD_IOMMU_PGSIZES is ((~0xFFFUL) & ~(2ULL << 38)) (6.1 drivers/iommu/amd/amd_iommu_types.h:280:
 * every size from 4K up, 2^52..2^63 included), 6.12's GENMASK_ULL(51, 12) ^ SZ_512G ("Page sizes >= the 52 bit
 * max physical address of the CPU are not supported"). No mapping can use such a page (user memory is far
 * smaller) and neither sysfs nor the kernel log shows the bitmap, so nothing but GET_INFO's iova_pgsizes, the
 * call under test, tells which the kernel has.
 */
export const AMD_IO_PGTABLE_PGSIZES_UNKNOWN = genmask(63, 52);
/** The reason on lib/lockstep/unchecked.ts's list for Type1Platform.pgsizeBitsUnknown. */
export const PGSIZE_BITS_UNKNOWN = 'page sizes no fact shows (AMD-Vi io-pgtable, 2^52 and above)';

/**
 * The page sizes of several domains together, as type1's vfio_update_pgsize_bitmap and iommufd's
 * iommufd_get_pagesizes (vfio_compat.c, "See vfio_update_pgsize_bitmap()") compute them: the AND of the
 * domains' bitmaps, sub-page sizes shown as PAGE_SIZE. A bit a domain leaves unknown (pgsizeBitsUnknown)
 * stays unknown unless another domain's known 0 clears it from the AND; it is written as 0 in `bitmap` and
 * returned apart. No domain: every size (ULONG_MAX).
 */
export function domainsPgsizeBitmap(domains: Iterable<{ pgsizeBitmap: bigint; pgsizeBitsUnknown?: bigint }>): { bitmap: bigint; unknown: bigint } {
  let bitmap = ULONG_MAX;
  let unknown = 0n;
  for (const d of domains) {
    const u = d.pgsizeBitsUnknown ?? 0n;
    bitmap &= d.pgsizeBitmap | u;
    unknown |= u;
  }
  unknown &= bitmap;
  const pageMask = ~(PAGE_SIZE - 1n) & ULONG_MAX;
  if ((bitmap & ~pageMask) !== 0n) bitmap = (bitmap & pageMask) | PAGE_SIZE;
  return { bitmap: bitmap & ~unknown, unknown };
}

/**
 * The VFIO (IOMMU_DOMAIN_UNMANAGED) domain the AMD driver gives a group. Both kernels build the v1 (host) page
 * table for it unless amd_iommu=pgtbl_v2 (its aperture, the v2 table's width amd_iommu_gpt_level, is not
 * derived: that throws rather than guess); page sizes narrowed by amd_iommu=nohugepages / v2_pgsizes_only
 * (init.c parse_amd_iommu_options: options matched by prefix, comma-separated, the last one wins);
 * enforce_cache_coherency true (amd_iommu_enforce_cache_coherency: "IOMMU_PTE_FC is always set").
 * - 6.12 (io-pgtable; `table.genericPt` false): protection_domain_alloc forces the v1 table for UNMANAGED,
 *   v1_alloc_pgtable takes cfg->pgsize_bitmap = amd_iommu_pgsize_bitmap (AMD_IOMMU_PGSIZES by default), and
 *   do_iommu_domain_alloc the aperture 0 .. dma_max_address(), ~0ULL with the v1 table;
 * - 7.x (generic_pt; `table.genericPt`): amd_iommu_domain_alloc_paging_v1 gives pt_iommu_amdv1_init
 *   hw_max_vasz_lg2 = amd_iommu_hpt_vasize, which early_amd_iommu_init sets to min(IVinfo's VASIZE (0: 64),
 *   (EFR.HATS + PAGE_MODE_4_LEVEL - 1) * 9 + 21) from the global IVHD EFR of that moment (the kernel log's
 *   "AMD-Vi: Using global IVHD EFR:0x..": get_global_efr; the MMIO EFR read later, which sysfs shows, does
 *   not change it); HATS 3 disables the v1 table (amd_iommu_hatdis: not derived). The aperture is 0 ..
 *   2^vasz - 1 (pt_iommu_init_domain over the DYNAMIC_TOP table's top range) and the page sizes those of
 *   the levels whose items are smaller than 2^vasz (amdv1pt_possible_sizes, every power of two from 4K to
 *   2^51 but 512G), below 2^(vasz - 1) and 2^52 (NS(get_info)), narrowed by amd_iommu_pgsize_bitmap.
 */
export function amdViDomain(cmdline: string, table: { genericPt?: boolean; dmesg?: string; ivinfo?: number } = {}) {
  let cmdlinePgsizes = AMD_IOMMU_PGSIZES;
  let pgtableV2 = false;
  // An option the kernel did not know it logged as such and ignored (parse_amd_iommu_options: "AMD-Vi: Unknown
  // option - '%s'", the rest of the string from that option on): 6.1 has neither nohugepages nor v2_pgsizes_only.
  const unknownToKernel = (opt: string) => (table.dmesg ?? '').includes(`AMD-Vi: Unknown option - '${opt}`);
  for (const arg of cmdline.split(/\s+/)) {
    if (!arg.startsWith('amd_iommu=')) continue;
    for (const opt of arg.slice('amd_iommu='.length).split(',')) {
      if (opt === '' || unknownToKernel(opt)) continue;
      if (opt.startsWith('nohugepages')) cmdlinePgsizes = AMD_IOMMU_PGSIZES_4K;
      else if (opt.startsWith('v2_pgsizes_only')) cmdlinePgsizes = AMD_IOMMU_PGSIZES_V2;
      else if (opt.startsWith('pgtbl_v2')) pgtableV2 = true;
      else if (opt.startsWith('pgtbl_v1')) pgtableV2 = false;
    }
  }
  if (pgtableV2) throw new Error('amd_iommu=pgtbl_v2: the aperture of a v2 table (dma_max_address, amd_iommu_gpt_level) is not derived by the model');
  if (!table.genericPt) {
    // The sizes of 2^52 and above are the tree's constant (AMD_IO_PGTABLE_PGSIZES_UNKNOWN) unless an option
    // chose a bitmap without them (6.12's nohugepages / v2_pgsizes_only).
    const unknown = cmdlinePgsizes === AMD_IOMMU_PGSIZES ? AMD_IO_PGTABLE_PGSIZES_UNKNOWN : 0n;
    return {
      pgsizeBitmap: cmdlinePgsizes & ~unknown,
      ...(unknown !== 0n ? { pgsizeBitsUnknown: unknown } : {}),
      aperture: { start: 0n, last: (1n << 64n) - 1n },
      enforceCacheCoherency: true,
    };
  }
  const vasz = amdHptVasize(table.dmesg ?? '', table.ivinfo);
  let sizes = 0n;
  for (let level = 0; level <= 4; level++) {
    const itemLg2 = 12 + 9 * level;
    if (itemLg2 >= vasz) break;
    sizes |= genmask(Math.min(51, itemLg2 + 9 - 1), itemLg2) & ~(1n << 39n);
  }
  sizes &= (1n << BigInt(Math.min(vasz - 1, 52))) - 1n;
  return { pgsizeBitmap: sizes & cmdlinePgsizes, aperture: { start: 0n, last: (1n << BigInt(vasz)) - 1n }, enforceCacheCoherency: true };
}

/**
 * amd_iommu_hpt_vasize (7.x drivers/iommu/amd/init.c early_amd_iommu_init) from the global IVHD EFR the kernel
 * logged ("AMD-Vi: Using global IVHD EFR:%#llx, EFR2:%#llx") and IVRS's IVinfo (IOMMU_IVINFO_VASIZE: bits 21:15).
 */
export function amdHptVasize(dmesg: string, ivinfo: number | undefined): number {
  const efrText = /AMD-Vi: Using global IVHD EFR:(0x[0-9a-f]+|0)\b/.exec(dmesg)?.[1];
  if (efrText === undefined) throw new Error('the kernel log has no "AMD-Vi: Using global IVHD EFR:" line (get_global_efr): amd_iommu_hpt_vasize is not known');
  if (ivinfo === undefined) throw new Error('no IVinfo of the ACPI IVRS table (/sys/firmware/acpi/tables/IVRS): amd_iommu_hpt_vasize is not known');
  const hats = Number((BigInt(efrText) >> 10n) & 3n); // FEATURE_HATS: GENMASK_ULL(11, 10)
  if (hats === 3) throw new Error('EFR.HATS 3: the kernel disables the v1 table (amd_iommu_hatdis) and uses the v2 one, which the model does not derive');
  const maxVasize = (ivinfo >>> 15) & 0x7f || 64;
  return Math.min(maxVasize, (hats + 4 - 1) * 9 + 21);
}

/**
 * The domain virtio-iommu gives a group (drivers/iommu/virtio-iommu.c, 6.12): viommu_domain_finalise copies
 * the device's page_size_mask into pgsize_bitmap and its input range into the geometry. viommu_probe logs
 * both: "page mask: %#llx" exactly, and "input address: %u bits" as order_base_2(aperture_end), i.e. the
 * end rounded up to a power of two: the aperture taken here is 0 .. 2^bits - 1, which is what QEMU's device
 * offers (input range starting at 0 and ending at a power of two minus one; without
 * VIRTIO_IOMMU_F_INPUT_RANGE the driver uses 0 .. ~0, logged as 64 bits). The domain ops have no
 * enforce_cache_coherency.
 */
export function virtioIommuDomain(dmesg: string) {
  const mask = /virtio_iommu \S+: page mask: (0x[0-9a-f]+)/.exec(dmesg)?.[1];
  const bitsText = /virtio_iommu \S+: input address: (\d+) bits/.exec(dmesg)?.[1];
  if (mask === undefined || bitsText === undefined) throw new Error('the kernel log has no virtio_iommu "page mask" / "input address" line (viommu_probe)');
  const bits = Number(bitsText);
  return { pgsizeBitmap: BigInt(mask), aperture: { start: 0n, last: (1n << BigInt(Math.min(bits, 64))) - 1n }, enforceCacheCoherency: false };
}

/** The PCI function an MSI line of /proc/interrupts belongs to: from its chip's name, else from its hwirq. */
function msiChipFunction(chip: string, hwirq: number): string {
  const named = /-([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])$/.exec(chip)?.[1];
  if (named !== undefined) return named;
  const id = Math.floor(hwirq / 2 ** 11) & 0xffff;
  const domain = Math.floor(hwirq / 2 ** 27);
  const hex = (v: number, n: number) => v.toString(16).padStart(n, '0');
  return `${hex(domain, 4)}:${hex(id >> 8, 2)}:${hex((id >> 3) & 0x1f, 2)}.${id & 7}`;
}

/**
 * Whether the PCI devices' MSIs are isolated, i.e. what iommu_group_has_isolated_msi answers for the
 * group: msi_device_has_isolated_msi (kernel/irq/msi.c) walks the device's MSI irq domain and its
 * parents for IRQ_DOMAIN_FLAG_ISOLATED_MSI, which on x86 only an interrupt-remapping domain sets
 * (drivers/iommu/intel/irq_remapping.c: intel_setup_irq_remapping; drivers/iommu/amd/iommu.c:
 * amd_iommu_create_irq_domain); virtio-iommu remaps no interrupt and x86's arch_is_isolated_msi is false.
 * Two facts say so without any
 * VFIO or iommufd ioctl:
 * - /proc/interrupts names each interrupt's chip; a PCI MSI allocated under the remapping domain gets
 *   the "IR-" prefix of its parent (irq_remapping.c: dmar_msi_parent_ops.prefix, amd/iommu.c: amdvi_msi_parent_ops.prefix;
 *   "IR-PCI-MSIX-0000:00:01.0"), without
 *   it plain "PCI-MSIX-...". Every device's per-device MSI domain hangs off the same x86 parent, so any
 *   PCI MSI in the table (the guest's virtio-9p root always has some) answers for the edu device, which
 *   has none allocated. This is the fact used when the table has a PCI MSI: it cannot scroll away.
 * - the kernel log's "DMAR-IR: Enabled IRQ remapping in xapic mode" (intel_enable_irq_remapping), which the ring
 *   buffer can lose on a long, noisy run: used only when no PCI MSI is allocated.
 */
export function interruptRemappingFrom(dmesg: string, interrupts?: string, iommuPciDevices: readonly string[] = []): boolean {
  // drivers/iommu/amd/init.c iommu_setup_msi: AMD-Vi's own event interrupt is a plain MSI of the IOMMU's PCI
  // function, left out by its function: named in the chip since per-device MSI domains (6.2: "PCI-MSI-BDF"),
  // before them (6.1's one "PCI-MSI" domain) in the hwirq, pci_msi_domain_calc_hwirq's
  // msi_index | pci_dev_id << 11 | domain << 27 (6.1 drivers/pci/msi/irqdomain.c:57-64).
  const chips = [...(interrupts ?? '').matchAll(/\s((?:IR-)?PCI-MSI\S*)\s+(\d+)-/g)]
    .map((m) => ({ chip: m[1]!, bdf: msiChipFunction(m[1]!, Number(m[2]!)) }))
    .filter((c) => !iommuPciDevices.includes(c.bdf))
    .map((c) => c.chip);
  if (chips.length > 0) {
    const remapped = chips.filter((c) => c.startsWith('IR-')).length;
    if (remapped !== 0 && remapped !== chips.length) throw new Error(`/proc/interrupts mixes remapped and plain PCI MSI chips: ${chips.join(', ')}`);
    return remapped > 0;
  }
  return /DMAR-IR: Enabled IRQ remapping|AMD-Vi: Interrupt remapping enabled/.test(dmesg);
}

/** Derives the platform from the gathered texts (pure). */
export function type1PlatformFrom(src: Type1PlatformSources): Type1Platform {
  const driver = src.driver ?? 'intel-iommu';
  let domain: { pgsizeBitmap: bigint; pgsizeBitsUnknown?: bigint; aperture: { start: bigint; last: bigint }; enforceCacheCoherency: boolean };
  if (driver === 'intel-iommu') {
    if (src.intelCap === undefined || src.intelEcap === undefined) throw new Error('intel-iommu: the unit\'s cap and ecap are needed');
    domain = intelVtdDomain(src.intelCap, src.intelEcap, src.cmdline, src.scalableModeDefaultOn ?? true);
  } else if (driver === 'amd-iommu') domain = amdViDomain(src.cmdline, { genericPt: src.probes?.genericPt ?? false, dmesg: src.dmesg, ...(src.amdIvinfo !== undefined ? { ivinfo: src.amdIvinfo } : {}) });
  else domain = virtioIommuDomain(src.dmesg);
  return {
    driver,
    pgsizeBitmap: domain.pgsizeBitmap,
    ...(domain.pgsizeBitsUnknown !== undefined ? { pgsizeBitsUnknown: domain.pgsizeBitsUnknown } : {}),
    aperture: domain.aperture,
    reservedRegions: parseReservedRegions(src.reservedRegions),
    enforceCacheCoherency: domain.enforceCacheCoherency,
    // The driver serving the group decides (the unit's driver in sysfs): only virtio-iommu maps no access.
    domainMapsWithoutAccess: driver === 'virtio-iommu',
    interruptRemapping: interruptRemappingFrom(src.dmesg, src.interrupts, src.iommuPciDevices),
    allowUnsafeInterrupts: /^[Yy1]/.test(src.allowUnsafeInterrupts.trim()),
    iommufdAllowUnsafeInterrupts: /^[Yy1]/.test((src.iommufdAllowUnsafeInterrupts ?? 'N').trim()),
    dmaEntryLimit: Number.parseInt(src.dmaEntryLimit.trim(), 10),
  };
}

/** What iommufd_device_bind checks of the platform (device-cdev.ts CdevMsiPlatform). */
export function iommufdMsiPlatform(p: Type1Platform): { isolated: boolean; allowUnsafeInterrupts: boolean } {
  return { isolated: p.interruptRemapping, allowUnsafeInterrupts: p.iommufdAllowUnsafeInterrupts };
}

/**
 * The IOMMU unit serving a group, from its first device's `iommu` link (iommu_device_link), and the unit's
 * driver: intel-iommu and amd-iommu name their sysfs attribute group after themselves; virtio-iommu's unit
 * has none, and its parent device is bound to the virtio_iommu driver.
 */
export function iommuUnitOfGroup(groupId: number, sysfs = '/sys'): { unit: string; driver: IommuDriverName } {
  const devices = `${sysfs}/kernel/iommu_groups/${groupId}/devices`;
  const [dev] = readdirSync(devices).sort();
  if (dev === undefined) throw new Error(`IOMMU group ${groupId} has no device`);
  const unit = basename(readlinkSync(`${devices}/${dev}/iommu`));
  return { unit, driver: iommuDriverOfUnit(unit, sysfs) };
}

/** The driver of IOMMU unit `unit` (/sys/class/iommu/UNIT), by what it shows in sysfs. */
export function iommuDriverOfUnit(unit: string, sysfs = '/sys'): IommuDriverName {
  const dir = `${sysfs}/class/iommu/${unit}`;
  if (existsSync(`${dir}/intel-iommu`)) return 'intel-iommu';
  if (existsSync(`${dir}/amd-iommu`)) return 'amd-iommu';
  // The unit's parent is the virtio device (viommu_probe: iommu_device_sysfs_add(&viommu->iommu, &vdev->dev, ...)).
  if (existsSync(`${dir}/device/driver`) && basename(realpathSync(`${dir}/device/driver`)) === 'virtio_iommu') return 'virtio-iommu';
  throw new Error(`IOMMU unit ${unit} is of no driver the model knows (intel-iommu, amd-iommu, virtio-iommu)`);
}

/** The PCI functions that are IOMMU units (AMD-Vi's; VT-d units are no PCI device, virtio-iommu's parent is a virtio device). */
function iommuPciDevices(sysfs = '/sys'): string[] {
  const units = existsSync(`${sysfs}/class/iommu`) ? readdirSync(`${sysfs}/class/iommu`) : [];
  return units
    .filter((u) => existsSync(`${sysfs}/class/iommu/${u}/device`))
    .map((u) => basename(realpathSync(`${sysfs}/class/iommu/${u}/device`)))
    .filter((d) => /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(d));
}

/** The boot-time log lines the derivation reads (each printed once, by a driver's probe), as first seen. */
const BOOT_FACT_LINES = /virtio_iommu \S+: (?:page mask|input address):|DMAR-IR: Enabled IRQ remapping|AMD-Vi: Interrupt remapping enabled|AMD-Vi: Using global IVHD EFR:/;
const bootFactLines = new Set<string>();

/**
 * The kernel log, with the boot-time fact lines seen by an earlier call of this process kept: the ring
 * buffer (128 KiB in the test kernel) can lose them on a long, noisy run, but what they say (a driver's
 * probe) does not change while the kernel runs.
 */
function kernelLogWithBootFacts(): string {
  const log = execFileSync('dmesg', { encoding: 'utf8' });
  for (const line of log.split('\n')) if (BOOT_FACT_LINES.test(line)) bootFactLines.add(line.replace(/^\[[^\]]*\]\s*/, ''));
  return `${[...bootFactLines].join('\n')}\n${log}`;
}

/**
 * Reads the platform of IOMMU group `groupId` in the running (guest) kernel; `iommuUnit` is the unit serving
 * the device of interest (default: the one serving the group's first device).
 */
export function readType1Platform(groupId: number, iommuUnit?: string, probes: Type1PlatformProbes = {}): Type1Platform {
  const read = (p: string) => readFileSync(p, 'utf8');
  const params = '/sys/module/vfio_iommu_type1/parameters';
  const { unit, driver } = iommuUnit === undefined ? iommuUnitOfGroup(groupId) : { unit: iommuUnit, driver: iommuDriverOfUnit(iommuUnit) };
  const iommufdParam = '/sys/module/iommufd/parameters/allow_unsafe_interrupts';
  return type1PlatformFrom({
    driver,
    reservedRegions: read(`/sys/kernel/iommu_groups/${groupId}/reserved_regions`),
    ...(driver === 'intel-iommu' ? { intelCap: read(`/sys/class/iommu/${unit}/intel-iommu/cap`), intelEcap: read(`/sys/class/iommu/${unit}/intel-iommu/ecap`) } : {}),
    cmdline: read('/proc/cmdline'),
    dmesg: kernelLogWithBootFacts(),
    interrupts: read('/proc/interrupts'),
    iommuPciDevices: iommuPciDevices(),
    allowUnsafeInterrupts: read(`${params}/allow_unsafe_interrupts`),
    ...(existsSync(iommufdParam) ? { iommufdAllowUnsafeInterrupts: read(iommufdParam) } : {}),
    dmaEntryLimit: read(`${params}/dma_entry_limit`),
    ...(driver === 'amd-iommu' ? { amdIvinfo: readFileSync('/sys/firmware/acpi/tables/IVRS').readUInt32LE(36) } : {}),
    probes,
  });
}

/**
 * USER_PTR_MAX (arch/x86/kernel/cpu/common.c: TASK_SIZE_MAX): what access_ok()
 * accepts, 2^56 - 4096 with 5-level paging, else 2^47 - 4096. The kernel
 * clears the la57 CPU flag when it does not use 5-level paging.
 */
export function userPtrMaxFrom(cpuinfo: string): bigint {
  return /^flags\s*:.*\bla57\b/m.test(cpuinfo) ? (1n << 56n) - 4096n : (1n << 47n) - 4096n;
}

export function readUserPtrMax(): bigint {
  return userPtrMaxFrom(readFileSync('/proc/cpuinfo', 'utf8'));
}
