// What a VMM author reads first: per switch (type1 to compat on the same
// device; type1 to compat on the mock domain; compat to native iommufd on the
// same device), every scenario whose result changes, the fields that differ,
// and why. Both reports render it at the top.
import { cellSummary, showPointValue, type Audit, type AuditRow, type Comparison } from './report.ts';
import type { BackendId } from './types.ts';

export interface Switch {
  between: [BackendId, BackendId];
  title: string;
  note: string;
}

/** The pairs a VMM switches between, in the order it would. */
export const SWITCHES: readonly Switch[] = [
  {
    between: ['type1', 'compat-device'],
    title: 'From type1 to iommufd compat (same device, same IOMMU)',
    note: 'The VMM keeps its VFIO container code and opens /dev/iommu in place of /dev/vfio/vfio (or loads iommufd with its VFIO container emulation).',
  },
  {
    between: ['type1', 'compat-mock'],
    title: "From type1 to iommufd compat, on iommufd's selftest mock domain",
    note: "The same switch where the IOMMU under the compat container is the kernel's mock domain: differences that do not depend on the platform.",
  },
  {
    between: ['compat-device', 'native'],
    title: 'From iommufd compat to native iommufd (same device, same IOMMU)',
    note:
      'The VMM drops the container: it opens /dev/iommu and the device cdev /dev/vfio/devices/vfioN, binds the device (VFIO_DEVICE_BIND_IOMMUFD), allocates an IOAS (IOMMU_IOAS_ALLOC), attaches the device to it (VFIO_DEVICE_ATTACH_IOMMUFD_PT) and maps with IOMMU_IOAS_MAP/UNMAP. ' +
      'Compared where a scenario has a native equivalent; the native cell of the others says why it has none.',
  },
];

export interface SwitchChange {
  row: AuditRow;
  cmp: Comparison;
  /** Per side: the errno of the step under audit, then each differing field of any step. */
  sides: [string[], string[]];
}

export interface SwitchSummary {
  sw: Switch;
  /** Scenarios where the pair was compared. */
  compared: number;
  changes: SwitchChange[];
}

function side(row: AuditRow, cmp: Comparison, b: BackendId, index: 0 | 1): string[] {
  const c = row.cells[b];
  if (c.status !== 'ran') return [c.status];
  const last = c.kernel.steps.length - 1;
  const fields = cmp.points
    .filter((p) => !(p.field === 'errno' && p.steps[index] === last))
    .map((p) => `${p.op}: ${p.field}=${showPointValue(p, index)}`);
  return [cellSummary(c).errno, ...new Set(fields)];
}

export function switchSummaries(a: Audit): SwitchSummary[] {
  return SWITCHES.map((sw) => {
    const ofPair = (cmp: Comparison) => cmp.between[0] === sw.between[0] && cmp.between[1] === sw.between[1];
    const compared = a.rows.filter((row) => row.comparisons.some((cmp) => ofPair(cmp) && cmp.state !== 'not-compared')).length;
    const changes = a.rows.flatMap((row) =>
      row.comparisons
        .filter((cmp) => ofPair(cmp) && cmp.state !== 'same' && cmp.state !== 'not-compared')
        .map((cmp): SwitchChange => ({ row, cmp, sides: [side(row, cmp, sw.between[0], 0), side(row, cmp, sw.between[1], 1)] })),
    );
    return { sw, compared, changes };
  });
}

/** The kernels the audit ran on, for the section's title. */
export function auditKernels(a: Audit): string[] {
  return [...new Set(Object.values(a.profiles).map((p) => p.kernel).filter((k): k is string => !!k))];
}
