// `audit --host --device BDF`: what the user's host must give before the
// device half runs on it, checked first, reading only (sysfs and one open of
// the group), so that a refused run leaves nothing behind and changes nothing.
// The device must already be bound to vfio-pci, by the user: this tool never
// binds or unbinds a device on a host. `root` prefixes every path (a fake
// sysfs in the unit suite).
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseBdf } from '../kernel/device-choice.ts';
import { VfioGroup } from '../kernel/vfio.ts';
import type { Type1Platform } from '../model/type1-platform.ts';
import type { AuditRaw, BackendId, BackendResult, HostFacts } from './types.ts';

/** The host cannot run the device half as it is (exit 3): every line says what to do. */
export class HostDeviceError extends Error {
  override name = 'HostDeviceError';
}

export interface HostDevice {
  bdf: string;
  groupId: number;
  /** The group's devices, each with its driver (null: none). */
  groupDevices: { bdf: string; driver: string | null }[];
  /** The IOMMU unit serving the device (/sys/class/iommu/UNIT), e.g. dmar1. */
  iommuUnit: string;
}

export interface HostCheckOptions {
  /** Prefix of every path (default ''); a fake sysfs in tests. */
  root?: string;
  /** The effective uid (default process.geteuid()). */
  euid?: number;
  /**
   * Opens /dev/vfio/N and closes it again; returns what went wrong, or null. Default: open the group with
   * VFIO and ask VFIO_GROUP_GET_STATUS whether it is viable (the kernel's own answer).
   */
  openGroup?: (groupId: number, path: string) => string | null;
}

/**
 * Drivers that leave the group's DMA to its owner (`driver_managed_dma = true`: vfio_pci.c, pci-stub.c,
 * pcie/portdrv.c): really_probe() (drivers/base/dd.c) does not claim the default domain for them, so a
 * group holding them is still viable (iommu.c:iommu_group_dma_owner_claimed). Any other bound driver
 * uses the kernel's DMA API on the group and makes it unusable for VFIO.
 */
const GROUP_FRIENDLY_DRIVERS = new Set(['vfio-pci', 'pci-stub', 'pcieport']);

function linkName(path: string): string | null {
  return existsSync(path) ? basename(readlinkSync(path)) : null;
}

/** How to bind `bdf` to vfio-pci, for the messages (the user runs it; this tool never does). */
export function bindInstructions(bdf: string, driver: string | null): string[] {
  return [
    `  modprobe vfio-pci`,
    `  echo vfio-pci > /sys/bus/pci/devices/${bdf}/driver_override`,
    ...(driver ? [`  echo ${bdf} > /sys/bus/pci/devices/${bdf}/driver/unbind      # from ${driver}`] : []),
    `  echo ${bdf} > /sys/bus/pci/drivers_probe`,
    `or: driverctl set-override ${bdf} vfio-pci`,
  ];
}

function defaultOpenGroup(groupId: number, path: string): string | null {
  const { group, errno } = VfioGroup.open(groupId);
  if (!group) {
    const why = errno === 16 ? ' (EBUSY: another process, a VM using the device?, has the group open)' : errno === 13 || errno === 1 ? ' (no permission: run as root)' : '';
    return `cannot open ${path}: errno ${errno}${why}`;
  }
  try {
    const status = group.getStatus();
    if (status.errno !== 0) return `VFIO_GROUP_GET_STATUS on ${path}: errno ${status.errno}`;
    if (!status.viable) return `${path}: the kernel says the group is not viable (a device in it is bound to a driver that uses the kernel's DMA API)`;
    return null;
  } finally {
    group.close();
  }
}

/** A plain open and close, for a fake /dev in tests. */
export function openAndClose(_groupId: number, path: string): string | null {
  try {
    closeSync(openSync(path, constants.O_RDWR));
    return null;
  } catch (e) {
    return `cannot open ${path}: ${(e as Error).message}`;
  }
}

/**
 * Checks that the device half can run on `bdfText` here, reading only. A malformed address throws a
 * RangeError (a usage error); anything else the host lacks throws a HostDeviceError listing every problem
 * found (root, and the first thing wrong with the device: each check needs the ones before it).
 */
export function checkHostDevice(bdfText: string, opts: HostCheckOptions = {}): HostDevice {
  const bdf = parseBdf(bdfText);
  const root = opts.root ?? '';
  const euid = opts.euid ?? process.geteuid?.() ?? -1;
  const problems: string[] = [];
  if (euid !== 0) problems.push('not root: the audit opens /dev/vfio, pins memory and sets vfio_iommu_type1.dma_entry_limit for a scenario (run it with sudo)');
  const device = deviceProblem(bdf, root, opts.openGroup ?? defaultOpenGroup);
  if (typeof device === 'string') problems.push(device);
  if (problems.length > 0) throw new HostDeviceError(`cannot audit ${bdf} on this host:\n${problems.map((p) => `- ${p}`).join('\n')}`);
  return device as HostDevice;
}

function deviceProblem(bdf: string, root: string, openGroup: (groupId: number, path: string) => string | null): HostDevice | string {
  const dev = join(root, '/sys/bus/pci/devices', bdf);
  if (!existsSync(dev)) return `no PCI device ${bdf} (${dev} does not exist): \`lspci -D\` lists the addresses`;
  const driver = linkName(join(dev, 'driver'));
  if (driver !== 'vfio-pci') {
    return [
      `${bdf} is ${driver ? `bound to ${driver}` : 'bound to no driver'}, not to vfio-pci. This tool does not bind or unbind devices; as root, bind it yourself, e.g.:`,
      ...bindInstructions(bdf, driver),
    ].join('\n');
  }
  const group = linkName(join(dev, 'iommu_group'));
  if (group === null) return `${bdf} has no IOMMU group (${join(dev, 'iommu_group')}): no IOMMU covers it (enable VT-d in the firmware and boot with intel_iommu=on)`;
  const groupId = Number(group);
  const groupDir = join(root, '/sys/kernel/iommu_groups', group, 'devices');
  const groupDevices = (existsSync(groupDir) ? readdirSync(groupDir).sort() : []).map((d) => ({ bdf: d, driver: linkName(join(groupDir, d, 'driver')) }));
  const blocking = groupDevices.filter((d) => d.driver !== null && !GROUP_FRIENDLY_DRIVERS.has(d.driver));
  if (blocking.length > 0) {
    return [
      `IOMMU group ${group} is not viable: ${blocking.map((d) => `${d.bdf} is bound to ${d.driver}`).join(', ')}. Every device in ${groupDir} must be bound to vfio-pci (or have no driver); for each:`,
      ...blocking.flatMap((d) => bindInstructions(d.bdf, d.driver).slice(1, 4)),
    ].join('\n');
  }
  const unit = linkName(join(dev, 'iommu'));
  if (unit === null) return `${bdf} has no ${join(dev, 'iommu')} link: which IOMMU unit serves it is unknown`;
  if (!existsSync(join(root, '/sys/class/iommu', unit, 'intel-iommu'))) {
    return `${bdf} is behind ${unit}, not an Intel VT-d unit: the model derives the domain's page sizes and aperture from VT-d's cap/ecap registers only, so it cannot predict this platform`;
  }
  const node = join(root, '/dev/vfio', group);
  if (!existsSync(node)) return `${node} does not exist although ${bdf} is bound to vfio-pci (is the vfio module loaded, with CONFIG_VFIO_GROUP?)`;
  const open = openGroup(groupId, node);
  if (open) return open;
  return { bdf, groupId, groupDevices, iommuUnit: unit };
}

function readOr(path: string, fallback: string | null = null): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return fallback;
  }
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** What the raw file and the reports say about the host: its kernel, the device, the platform. */
export function readHostFacts(device: HostDevice, platform: Type1Platform, root = ''): HostFacts {
  const dev = join(root, '/sys/bus/pci/devices', device.bdf);
  const unit = join(root, '/sys/class/iommu', device.iommuUnit, 'intel-iommu');
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readOr(join(root, '/proc/cpuinfo'), '') ?? '')?.[1] ?? null;
  const dmi = [readOr(join(root, '/sys/class/dmi/id/sys_vendor')), readOr(join(root, '/sys/class/dmi/id/product_name'))].filter((x): x is string => !!x).join(' ');
  return {
    kernel: readOr(join(root, '/proc/sys/kernel/osrelease'), 'unknown')!,
    procVersion: readOr(join(root, '/proc/version'), 'unknown')!,
    cmdline: readOr(join(root, '/proc/cmdline'), '')!,
    machine: dmi || null,
    cpu,
    device: {
      bdf: device.bdf,
      id: `${(readOr(join(dev, 'vendor')) ?? '?').replace(/^0x/, '')}:${(readOr(join(dev, 'device')) ?? '?').replace(/^0x/, '')}`,
      class: readOr(join(dev, 'class')),
      iommuGroup: device.groupId,
      groupDevices: device.groupDevices.map((d) => `${d.bdf} (${d.driver ?? 'no driver'})`),
    },
    iommu: {
      unit: device.iommuUnit,
      cap: readOr(join(unit, 'cap')),
      ecap: readOr(join(unit, 'ecap')),
      interruptRemapping: platform.interruptRemapping,
      allowUnsafeInterrupts: platform.allowUnsafeInterrupts,
      pgsizeBitmap: hex(platform.pgsizeBitmap),
      aperture: `${hex(platform.aperture.start)}-${hex(platform.aperture.last)}`,
      reservedRegions: platform.reservedRegions.map((r) => `${hex(r.start)}-${hex(r.last)} ${r.type}`),
    },
  };
}

/** A cell in a line: the status, and the kernel's last step where it ran. */
function cellLine(r: BackendResult | undefined): string {
  if (!r) return 'absent';
  if (r.status !== 'ran') return `not applicable (${r.reason})`;
  const last = r.kernel.steps.at(-1);
  return `ran: ${r.kernel.steps.length} step(s), last ${last ? `${last.op} ${last.errno}` : 'none'}${'error' in r.model ? `, the model threw: ${r.model.error}` : ''}`;
}

/**
 * Where a host audit's raw file and the guest suite's differ, cell by cell (the kernel's and the model's
 * observations, or the not-applicable reason), over the cells `ran` says the suite ran; and the backends'
 * availability. What `audit --host` run in the viommu guest must match.
 */
export function cellDifferences<B extends BackendId>(suite: AuditRaw, host: AuditRaw, backends: readonly B[], ran: (backend: B, scenarioId: string) => boolean): { compared: number; differences: string[] } {
  const differences: string[] = [];
  let compared = 0;
  for (const b of backends) {
    if (!isDeepStrictEqual(suite.backends[b], host.backends[b])) differences.push(`backend ${b}: suite ${JSON.stringify(suite.backends[b])}, host ${JSON.stringify(host.backends[b])}`);
  }
  for (const s of suite.scenarios) {
    const h = host.scenarios.find((x) => x.id === s.id);
    for (const b of backends) {
      if (!ran(b, s.id)) continue;
      compared++;
      const a = s.results[b];
      const c = h?.results[b];
      if (!isDeepStrictEqual(a, c)) differences.push(`${s.id} on ${b}: suite ${cellLine(a)}; host ${cellLine(c)}${a?.status === 'ran' && c?.status === 'ran' ? ' (the steps differ)' : ''}`);
    }
  }
  return { compared, differences };
}
