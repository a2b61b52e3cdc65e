// The audit's backends, each on two sides: the kernel (the real ioctls) and the
// model (lib/model's prediction for that backend). A scenario runs on a fresh
// target of one backend and one side, and everything the target opened is
// closed after it (dispose), so nothing carries over to the next scenario.
//
//   type1          /dev/vfio/vfio (real VFIO container, vfio_iommu_type1) with the
//                  viommu profile's edu device group     model: Type1ContainerModel
//   compat-device  /dev/iommu's VFIO compat with that same group
//                                                        model: IommufdModel.compat
//   compat-mock    /dev/iommu's VFIO compat on a compat IOAS (IOMMU_VFIO_IOAS SET)
//                  with a selftest mock domain (mock profile; no group)
//                                                        model: IommufdModel.compat
//   native         /dev/iommu natively, with the same device through its VFIO cdev
//                  (/dev/vfio/devices/vfioN: BIND_IOMMUFD, ATTACH_IOMMUFD_PT; no
//                  group, no container)                  model: IommufdModel + VfioDeviceCdevModel
//
// Why two separate runs instead of one lockstep run: a scenario is a sequence
// of steps, and the audit wants the kernel's whole sequence even when the
// model already disagreed at the first step (lockstep stops there), and the
// model's whole prediction made without ever seeing a kernel result. So the
// scenario runs on kernel clients alone, then on a fresh model with a fresh
// ModelProcess (its memory, credentials and RLIMIT_MEMLOCK copied from the
// real process), and the two observations are compared step by step.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { errnoOf, IommuFd, VfioContainer, VfioDevice, VfioGroup, type Type1Info } from '../kernel/index.ts';
import { kernelBehaviour, type1ModelOptions } from '../lockstep/models.ts';
import { iommufdTopAreaMapsFirstRun, type1UnmapEndWrapLeaks } from '../kernel/features.ts';
import { IommufdModel } from '../model/iommufd.ts';
import { iommufdDomainSpec } from '../model/mock.ts';
import { ModelProcess } from '../model/process.ts';
import { iommufdMsiPlatform, readType1Platform, readUserPtrMax, type Type1Platform } from '../model/type1-platform.ts';
import { Type1ContainerModel, Type1GroupModel, type GroupIommufdBinding } from '../model/type1.ts';
import { iommufdFopsIoctl } from '../model/iommufd/main.ts';
import type { IommufdFds } from '../model/iommufd/ucmd.ts';
import { IoctlArgument, ModelCannotAnswer, type UserAccess } from '../model/uaccess.ts';
import { VfioDeviceCdevModel } from '../model/vfio/device-cdev.ts';
import { CAP_IPC_LOCK, capBit, RLIMIT_MEMLOCK, sys, type Capabilities, type Mapping, type RLimit } from '../sys/index.ts';
import { pinnedAndLockedPages } from '../sys/proc-status.ts';
import * as U from '../uapi/index.ts';
import type { AuditPlatform, BackendId } from './types.ts';

export type AuditSide = 'kernel' | 'model';

/**
 * The scenarios' IOVA window starts here: 32 MiB, inside the mock aperture [16 MiB, 2 GiB) and VT-d's,
 * with room below it (scenarios map just under an existing mapping) that is usable on every backend.
 */
export const AUDIT_IOVA = 0x200_0000n;

const VFIO_TYPE1_PARAMS = '/sys/module/vfio_iommu_type1/parameters';

/** The VFIO container ioctls, as VfioContainer, Type1ContainerModel and VfioCompatModel all offer them. */
export interface ContainerOps {
  getApiVersion(): { errno: number; version: number };
  checkExtension(extension: number): { errno: number; value: number };
  setIommu(type: number): { errno: number };
  /** A model's answer may leave bits of iova_pgsizes unknown (Type1Platform.pgsizeBitsUnknown, written as 0). */
  getInfo(args: { argsz?: number; bufferSize?: number }): Type1Info & { iovaPgsizesUnknown?: bigint };
  mapDma(args: { flags: number; vaddr: bigint; iova: bigint; size: bigint; argsz?: number; tail?: Uint8Array }): { errno: number };
  unmapDma(args: { flags?: number; iova: bigint; size: bigint; argsz?: number; tail?: Uint8Array }): { errno: number; size: bigint };
  dirtyPages(args: { flags: number; argsz?: number; tail?: Uint8Array }): { errno: number };
  ioctl(request: number, arg: number): { errno: number; ret: number };
}

/** A step a backend plays with its own ioctls (see Step.op in types.ts). */
export interface RoleResult {
  op: string;
  errno: number;
}

/**
 * A scenario step that native iommufd has no counterpart for (a container or group ioctl, a VFIO-only flag).
 * Thrown by the scenario context or the native target; the scenario's native cell then says why.
 */
export class NoNativeEquivalent extends Error {
  override name = 'NoNativeEquivalent';
}

/** The iommufd side of the native backend: the IOAS the device attaches to, and its ioctls. */
export interface NativeIoas {
  /** The IOAS made by attach() (0 before). */
  readonly ioasId: number;
  /** attach()'s two ioctls one at a time: VFIO_DEVICE_BIND_IOMMUFD, then IOMMU_IOAS_ALLOC (errno). */
  bind(): number;
  allocIoas(): number;
  /**
   * An iommufd ioctl with its struct's bytes (leading size field included): the kernel (or the model)
   * reads them and writes its outputs back into them. Returns the errno (0: success).
   */
  ioctl(request: number, bytes: Uint8Array): number;
  ioasIovaRanges(args: { ioasId: number; capacity?: number }): { errno: number; numIovas: number; alignment: bigint; ranges: { start: bigint; last: bigint }[] };
}

/** One backend on one side, fresh: a container and, where the backend has one, the group. */
export interface AuditTarget {
  readonly backend: BackendId;
  readonly side: AuditSide;
  readonly container: ContainerOps;
  /** native only: the IOAS and its ioctls (the container's ops throw NoNativeEquivalent there). */
  readonly native?: NativeIoas;
  /** Whether a VFIO group is there (not on compat-mock). */
  readonly hasGroup: boolean;
  /** The first IOVA above the scenarios' window that the platform reserves (aperture end or a reserved region). */
  readonly windowTop: bigint;
  /** VFIO_GROUP_SET_CONTAINER, or on compat-mock the compat IOAS (IOMMU_IOAS_ALLOC + IOMMU_VFIO_IOAS SET). */
  attach(): RoleResult;
  /** VFIO_GROUP_GET_DEVICE_FD (iommufd: the device joins the compat IOAS), or on compat-mock a mock domain on the compat IOAS. */
  openDevice(): RoleResult;
  closeDevice(): RoleResult;
  unsetContainer(): RoleResult;
  groupStatus(): { errno: number; flags: number };
  /** Pages charged since the target was made: mm->locked_vm (VmLck) and mm->pinned_vm (VmPin). */
  charged(): { vmLck: bigint; vmPin: bigint };
  /** Raises or drops CAP_IPC_LOCK (the kernel side restores it at dispose). */
  setIpcLock(on: boolean): void;
  /** Sets RLIMIT_MEMLOCK's soft limit (the kernel side restores it at dispose). */
  setMemlockLimit(bytes: bigint): void;
  /** Closes everything: device, group, container or iommufd. */
  dispose(): void;
}

// ---------------------------------------------------------------- memory every scenario uses

/** User memory the scenarios map: made once, known to the kernel and copied into every model process. */
export interface AuditMemory {
  /** 1 MiB, MAP_SHARED|MAP_ANONYMOUS, read-write. */
  rw: Mapping;
  /** 64 KiB, MAP_SHARED|MAP_ANONYMOUS, PROT_READ only. */
  ro: Mapping;
  /** 64 KiB, PROT_NONE: mapped, but no page can be pinned there. */
  none: Mapping;
}

export const PROT = { NONE: 0, READ: 1, WRITE: 2 } as const;
const MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20;

export function makeAuditMemory(): AuditMemory {
  const map = (length: number, prot: number, flags: number) => {
    const m = sys().mmap(length, prot, flags);
    if (typeof m === 'number') throw new Error(`mmap(${length}) failed: errno ${-m}`);
    return m;
  };
  return {
    rw: map(1 << 20, PROT.READ | PROT.WRITE, MAP_SHARED | MAP_ANONYMOUS),
    ro: map(1 << 16, PROT.READ, MAP_SHARED | MAP_ANONYMOUS),
    none: map(1 << 16, PROT.NONE, MAP_PRIVATE | MAP_ANONYMOUS),
  };
}

export function freeAuditMemory(mem: AuditMemory): void {
  for (const m of [mem.rw, mem.ro, mem.none]) sys().munmap(m, 0, m.length);
}

function mirrorMemory(proc: ModelProcess, mem: AuditMemory): void {
  proc.memory.map(mem.rw.address, BigInt(mem.rw.length), PROT.READ | PROT.WRITE, true);
  proc.memory.map(mem.ro.address, BigInt(mem.ro.length), PROT.READ, true);
  proc.memory.map(mem.none.address, BigInt(mem.none.length), PROT.NONE, false);
}

// ---------------------------------------------------------------- the process: credentials, limits, accounting

function ok<T>(v: T | number, what: string): T {
  if (typeof v === 'number') throw new Error(`${what} failed: errno ${-v}`);
  return v;
}

/** VmLck and VmPin of this process in pages (/proc/self/status). */
export function lockedAndPinnedPages(): { vmLck: bigint; vmPin: bigint } {
  const { lck, pin } = pinnedAndLockedPages();
  return { vmLck: lck, vmPin: pin };
}

/** The real process's credentials and limit, saved at target creation and restored at dispose. */
class RealProcessState {
  readonly caps: Capabilities;
  readonly memlock: RLimit;
  readonly base = lockedAndPinnedPages();
  constructor() {
    this.caps = ok(sys().capget(), 'capget');
    this.memlock = ok(sys().getrlimit(RLIMIT_MEMLOCK), 'getrlimit(RLIMIT_MEMLOCK)');
  }
  setIpcLock(on: boolean): void {
    const now = ok(sys().capget(), 'capget');
    const bit = capBit(CAP_IPC_LOCK);
    const r = sys().capset({ ...now, effective: on ? now.effective | bit : now.effective & ~bit });
    if (r !== 0) throw new Error(`capset(CAP_IPC_LOCK ${on ? 'on' : 'off'}) failed: errno ${-r}`);
  }
  setMemlockLimit(bytes: bigint): void {
    const r = sys().setrlimit(RLIMIT_MEMLOCK, { cur: bytes, max: this.memlock.max > bytes ? this.memlock.max : bytes });
    if (r !== 0) throw new Error(`setrlimit(RLIMIT_MEMLOCK, ${bytes}) failed: errno ${-r}`);
  }
  charged(): { vmLck: bigint; vmPin: bigint } {
    const now = lockedAndPinnedPages();
    return { vmLck: now.vmLck - this.base.vmLck, vmPin: now.vmPin - this.base.vmPin };
  }
  /** Throws if closing everything left pages charged: something of the scenario outlived it. */
  checkNothingLeft(what: string): void {
    const left = this.charged();
    if (left.vmLck !== 0n || left.vmPin !== 0n) throw new Error(`${what}: after closing everything, VmLck is ${left.vmLck} and VmPin ${left.vmPin} pages above where the scenario began`);
  }
  restore(): void {
    const errors: string[] = [];
    const r1 = sys().capset(this.caps);
    if (r1 !== 0) errors.push(`capset: errno ${-r1}`);
    const r2 = sys().setrlimit(RLIMIT_MEMLOCK, this.memlock);
    if (r2 !== 0) errors.push(`setrlimit: errno ${-r2}`);
    if (errors.length) throw new Error(`restoring the process's credentials and limits: ${errors.join('; ')}`);
  }
}

/** Throws if the model still charges pages after everything was closed (a model that leaks). */
function checkModelLeftNothing(proc: ModelProcess, what: string): void {
  if (proc.mmLockedVm !== 0n || proc.mmPinnedVm !== 0n || proc.userLockedVm !== 0n) {
    throw new Error(`${what}: after closing everything the model still charges locked_vm ${proc.mmLockedVm}, pinned_vm ${proc.mmPinnedVm}, user locked_vm ${proc.userLockedVm} pages`);
  }
}

/** A fresh model process that starts where the real one is: its memory, CAP_IPC_LOCK and RLIMIT_MEMLOCK. */
function modelProcessLikeReal(mem: AuditMemory): ModelProcess {
  const proc = new ModelProcess();
  mirrorMemory(proc, mem);
  const caps = ok(sys().capget(), 'capget');
  proc.credentials = { ...proc.credentials, ipcLock: (caps.effective & capBit(CAP_IPC_LOCK)) !== 0n };
  proc.memlockLimit = ok(sys().getrlimit(RLIMIT_MEMLOCK), 'getrlimit').cur;
  return proc;
}

// ---------------------------------------------------------------- the environment of each profile

/** The viommu profile's device: the edu device's group, bound to vfio-pci. */
export interface DeviceEnvironment {
  groupId: number;
  /** The device's VFIO cdev, /dev/vfio/devices/vfioN (null: the kernel has no CONFIG_VFIO_DEVICE_CDEV). */
  cdev: string | null;
  /** The device's name for VFIO_GROUP_GET_DEVICE_FD, e.g. 0000:00:03.0. */
  bdf: string;
  /** The group's platform as sysfs and dmesg describe it; the module parameters are re-read at every target. */
  platform: Type1Platform;
  /** /sys/kernel/iommu_groups/N/devices */
  devices: string[];
  userPtrMax: bigint;
}

export function readDeviceEnvironment(groupId: number, bdf: string): DeviceEnvironment {
  return {
    groupId,
    cdev: readCdevPath(bdf),
    bdf,
    // The unit that serves the device (a host has several: dmar0, dmar1, ...), else the group's first device's.
    // The generic page table probe (KernelBehaviour.mockGenericPt) decides how AMD-Vi's v1 domain is built.
    platform: readType1Platform(groupId, iommuUnitOf(bdf) ?? undefined, { genericPt: kernelBehaviour().mockGenericPt }),
    devices: readdirSync(`/sys/kernel/iommu_groups/${groupId}/devices`),
    userPtrMax: readUserPtrMax(),
  };
}

/** The IOMMU unit serving the device: /sys/bus/pci/devices/BDF/iommu links to /sys/class/iommu/UNIT (iommu_device_link). */
export function iommuUnitOf(bdf: string, root = ''): string | null {
  const link = `${root}/sys/bus/pci/devices/${bdf}/iommu`;
  return existsSync(link) ? basename(readlinkSync(link)) : null;
}

/** drivers/vfio/vfio_main.c names the cdev under the device: /sys/bus/pci/devices/BDF/vfio-dev/vfioN. */
export function readCdevPath(bdf: string): string | null {
  const dir = `/sys/bus/pci/devices/${bdf}/vfio-dev`;
  if (!existsSync(dir)) return null;
  const name = readdirSync(dir).find((n) => /^vfio\d+$/.test(n));
  return name ? `/dev/vfio/devices/${name}` : null;
}

const IOMMUFD_ALLOW_UNSAFE = '/sys/module/iommufd/parameters/allow_unsafe_interrupts';

/** iommufd's own allow_unsafe_interrupts (device.c), read where the module is there. */
function iommufdAllowsUnsafeInterrupts(): boolean {
  return existsSync(IOMMUFD_ALLOW_UNSAFE) && /^[Yy1]/.test(readFileSync(IOMMUFD_ALLOW_UNSAFE, 'utf8').trim());
}

/**
 * The platform with vfio_iommu_type1's module parameters as they are now (a scenario may have changed
 * dma_entry_limit). Where the module is not there (a host without VFIO, running the model alone), the
 * environment's values stand.
 */
function currentPlatform(env: DeviceEnvironment): Type1Platform {
  if (!existsSync(VFIO_TYPE1_PARAMS)) return { ...env.platform };
  const param = (name: string) => readFileSync(`${VFIO_TYPE1_PARAMS}/${name}`, 'utf8').trim();
  return {
    ...env.platform,
    dmaEntryLimit: Number.parseInt(param('dma_entry_limit'), 10),
    allowUnsafeInterrupts: /^[Yy1]/.test(param('allow_unsafe_interrupts')),
    iommufdAllowUnsafeInterrupts: iommufdAllowsUnsafeInterrupts(),
  };
}

/**
 * The platform facts on which the model refuses `backend` the device (iommu_group_has_isolated_msi false and
 * the backend's allow_unsafe_interrupts off: vfio_iommu_type1_attach_group's or iommufd_device_bind's EPERM),
 * or null where it would not. Read from /proc/interrupts and sysfs, never from a VFIO or iommufd ioctl.
 */
export function msiRefusal(backend: BackendId, env: DeviceEnvironment): string | null {
  const p = currentPlatform(env);
  if (p.interruptRemapping) return null;
  const param = backend === 'type1' ? ['vfio_iommu_type1', p.allowUnsafeInterrupts] as const : ['iommufd', p.iommufdAllowUnsafeInterrupts] as const;
  if (param[1]) return null;
  return `no isolated MSI: no interrupt remapping (the PCI MSI irq chips in /proc/interrupts have no IR- prefix), and ${param[0]}.allow_unsafe_interrupts=N`;
}

/** The platform as the raw file records it (AuditRaw.platform), from the same facts. */
export function auditPlatform(env: DeviceEnvironment): AuditPlatform {
  const p = currentPlatform(env);
  const flag = (b: boolean) => (b ? 'Y' : 'N');
  return {
    name: p.interruptRemapping
      ? `${p.driver ?? 'intel-iommu'} with interrupt remapping`
      : `${p.driver ?? 'intel-iommu'} without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=${flag(p.allowUnsafeInterrupts)}, iommufd=${flag(p.iommufdAllowUnsafeInterrupts)}`,
    interruptRemapping: p.interruptRemapping,
    type1AllowUnsafeInterrupts: p.allowUnsafeInterrupts,
    iommufdAllowUnsafeInterrupts: p.iommufdAllowUnsafeInterrupts,
    ...(p.domainMapsWithoutAccess ? { domainMapsWithoutAccess: true } : {}),
    ...(p.driver && p.driver !== 'intel-iommu' ? { driver: p.driver } : {}),
  };
}

/** The first IOVA at or above `from` that the group cannot use: a reserved region (not direct-relaxable) or the aperture's end. */
function firstReservedAbove(platform: Type1Platform, from: bigint): bigint {
  let top = platform.aperture.last + 1n;
  for (const r of platform.reservedRegions) if (r.type !== 'direct-relaxable' && r.start >= from && r.start < top) top = r.start;
  return top;
}

export const MOCK_WINDOW_TOP = BigInt(U.MOCK_APERTURE_LAST) + 1n;

// ---------------------------------------------------------------- KF-0006: type1 mappings that end at 2^64

/**
 * A kernel call the target does not make: a known finding, seen by its probe, would leave lasting damage in
 * this process, which every later scenario and suite shares (lib/audit/run.ts turns it into a not-applicable
 * cell whose reason starts with HELD_BACK_BY_FINDING, and the suite reports the finding).
 */
export class HeldBackByFinding extends Error {
  constructor(readonly finding: string, readonly what: string) {
    super(`${finding}: ${what}`);
  }
}

/**
 * Whether a type1 MAP_DMA of this range is one the running kernel would never give back (KF-0006,
 * docs/findings/KF-0006.md: its last byte is IOVA 2^64 - 1 and the probe saw 6.12's type1 leave such a
 * mapping pinned and charged to the mapping process until it exits).
 */
function mapEndsAtTopAndLeaks(args: { iova: bigint; size: bigint }): boolean {
  return args.size !== 0n && ((args.iova + args.size) & ((1n << 64n) - 1n)) === 0n && type1UnmapEndWrapLeaks() === true;
}

// ---------------------------------------------------------------- KF-0007: iommufd areas that end at 2^64

/**
 * Whether an iommufd map (IOMMU_IOAS_MAP, or the compat MAP_DMA) of this range is one the running kernel
 * maps into the device's domain as one physical run from its first page (KF-0007, docs/findings/KF-0007.md:
 * its last byte is IOVA 2^64 - 1, it is more than a page, and the probe saw it): the IOMMU would reach pages
 * the audit never gave, and the unmap would unpin those, driving their refcounts negative.
 */
function mapEndsAtTopAndRemaps(args: { iova: bigint; size: bigint }): boolean {
  return args.size > 4096n && ((args.iova + args.size) & ((1n << 64n) - 1n)) === 0n && iommufdTopAreaMapsFirstRun() === true;
}

const KF_0007_WHAT = (call: string, iova: bigint) => `${call} of [0x${iova.toString(16)}, 2^64) not made on iommufd: this kernel maps such an area into the device's domain as one physical run from its first page, so the IOMMU reaches pages never given and the unmap unpins those (their refcounts go negative: WARN in mm/gup.c, then ENOMEM on later maps of them) while the pinned ones leak; the finding's own test (findings KF-0007) shows it with pages laid out so that nothing is harmed`;

/** `base` with its mapDma replaced (every other call goes to `base`, with `base` as this). */
function withMapDma(base: ContainerOps, mapDma: ContainerOps['mapDma']): ContainerOps {
  return new Proxy(base, {
    get: (target, key) => {
      if (key === 'mapDma') return mapDma;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

// ---------------------------------------------------------------- kernel targets

function groupTargetParts(env: DeviceEnvironment) {
  const opened = VfioGroup.open(env.groupId);
  if (!opened.group) throw new Error(`cannot open /dev/vfio/${env.groupId}: errno ${opened.errno}`);
  return opened.group;
}

/** type1 or compat-device on the kernel. */
export function kernelDeviceTarget(backend: 'type1' | 'compat-device', env: DeviceEnvironment): AuditTarget {
  const state = new RealProcessState();
  // KF-0006's and KF-0007's probes borrow the group: asked (once; the answers are kept) before this target opens it.
  if (backend === 'type1') type1UnmapEndWrapLeaks();
  else iommufdTopAreaMapsFirstRun();
  let file: VfioContainer | IommuFd;
  let container: VfioContainer;
  if (backend === 'type1') {
    const opened = VfioContainer.open();
    if (!opened.container) throw new Error(`cannot open /dev/vfio/vfio: errno ${opened.errno}`);
    file = container = opened.container;
  } else {
    const opened = IommuFd.open();
    if (!opened.iommufd) throw new Error(`cannot open /dev/iommu: errno ${opened.errno}`);
    file = opened.iommufd;
    container = VfioContainer.compatOn(opened.iommufd);
  }
  let group: VfioGroup | null;
  try {
    group = groupTargetParts(env);
  } catch (e) {
    file.close();
    throw e;
  }
  let deviceFd = -1;
  const closeDevice = (): RoleResult => {
    const r = sys().close(deviceFd);
    deviceFd = -1;
    return { op: 'close(device fd)', errno: r < 0 ? -r : 0 };
  };
  // KF-0006: a type1 map the running kernel would never give back is not made (mapEndsAtTopAndLeaks).
  const ops: ContainerOps = backend !== 'type1' ? withMapDma(container, (args) => {
    // KF-0007: an iommufd area at the top would map pages never given and unpin them later (mapEndsAtTopAndRemaps).
    if (mapEndsAtTopAndRemaps({ iova: BigInt(args.iova), size: BigInt(args.size) })) throw new HeldBackByFinding('KF-0007', KF_0007_WHAT('VFIO_IOMMU_MAP_DMA', BigInt(args.iova)));
    return container.mapDma(args);
  }) : withMapDma(container, (args) => {
    if (mapEndsAtTopAndLeaks(args)) {
      throw new HeldBackByFinding('KF-0006', `VFIO_IOMMU_MAP_DMA of [0x${args.iova.toString(16)}, 2^64) not made on type1: this kernel never gives back the pages of a mapping that ends at 2^64 (no UNMAP_DMA finds it; removing it leaves them pinned and charged to this process until it exits), which would skew every later accounting check of the process; the finding's own test (findings KF-0006) shows it from a forked child`);
    }
    return container.mapDma(args);
  });
  return {
    backend,
    side: 'kernel',
    container: ops,
    hasGroup: true,
    windowTop: firstReservedAbove(env.platform, AUDIT_IOVA),
    attach: () => ({ op: 'VFIO_GROUP_SET_CONTAINER', errno: group!.setContainer(file.fd).errno }),
    openDevice: () => {
      if (deviceFd >= 0) throw new Error('the audit opens one device fd at a time');
      const r = group!.getDeviceFd(env.bdf);
      if (r.errno === 0) deviceFd = r.deviceFd;
      return { op: 'VFIO_GROUP_GET_DEVICE_FD', errno: r.errno };
    },
    closeDevice,
    unsetContainer: () => ({ op: 'VFIO_GROUP_UNSET_CONTAINER', errno: group!.unsetContainer().errno }),
    groupStatus: () => group!.getStatus(),
    charged: () => state.charged(),
    setIpcLock: (on) => state.setIpcLock(on),
    setMemlockLimit: (bytes) => state.setMemlockLimit(bytes),
    dispose: () => {
      // The device first (it holds the group's container use), then the group, then the container.
      try {
        if (deviceFd >= 0) closeDevice();
        group?.close();
        group = null;
        file.close();
        state.checkNothingLeft(`${backend} (kernel)`);
      } finally {
        state.restore();
      }
    },
  };
}

/** compat-mock on the kernel. */
export function kernelMockTarget(): AuditTarget {
  const state = new RealProcessState();
  const opened = IommuFd.open();
  if (!opened.iommufd) throw new Error(`cannot open /dev/iommu: errno ${opened.errno}`);
  const iommufd = opened.iommufd;
  return mockTarget('kernel', iommufd, VfioContainer.compatOn(iommufd), {
    charged: () => state.charged(),
    setIpcLock: (on) => state.setIpcLock(on),
    setMemlockLimit: (bytes) => state.setMemlockLimit(bytes),
    dispose: () => {
      try {
        iommufd.close();
        state.checkNothingLeft('compat-mock (kernel)');
      } finally {
        state.restore();
      }
    },
  });
}

/** The iommufd calls compat-mock needs; IommuFd and IommufdModel both have them. */
interface MockIommufd {
  ioasAlloc(args?: { flags?: number }): { errno: number; ioasId: number };
  vfioIoas(args: { op: number; ioasId?: number }): { errno: number };
  testMockDomain(args: { ptId: number }): { errno: number; stdevId: number };
  destroy(id: number): { errno: number };
}

function mockTarget(
  side: AuditSide,
  iommufd: MockIommufd,
  container: ContainerOps,
  proc: Pick<AuditTarget, 'charged' | 'setIpcLock' | 'setMemlockLimit' | 'dispose'>,
): AuditTarget {
  let ioasId = 0;
  let stdevId = 0;
  const noGroup = () => {
    throw new Error('compat-mock has no VFIO group');
  };
  return {
    backend: 'compat-mock',
    side,
    container,
    hasGroup: false,
    windowTop: MOCK_WINDOW_TOP,
    attach: () => {
      const op = 'IOMMU_IOAS_ALLOC+IOMMU_VFIO_IOAS(SET)';
      const ioas = iommufd.ioasAlloc();
      if (ioas.errno) return { op, errno: ioas.errno };
      ioasId = ioas.ioasId;
      return { op, errno: iommufd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_SET, ioasId }).errno };
    },
    openDevice: () => {
      if (stdevId) throw new Error('the audit attaches one mock device at a time');
      // The mock domain goes on the compat IOAS; with none (no attach yet) the ID 0 lookup fails as a group-less device would.
      const r = iommufd.testMockDomain({ ptId: ioasId });
      if (r.errno === 0) stdevId = r.stdevId;
      return { op: 'IOMMU_TEST_OP_MOCK_DOMAIN', errno: r.errno };
    },
    closeDevice: () => {
      const r = iommufd.destroy(stdevId);
      stdevId = 0;
      return { op: 'IOMMU_DESTROY(mock device)', errno: r.errno };
    },
    unsetContainer: noGroup,
    groupStatus: noGroup,
    ...proc,
  };
}

// ---------------------------------------------------------------- model targets

/** type1 or compat-device as the model predicts them. */
export function modelDeviceTarget(backend: 'type1' | 'compat-device', env: DeviceEnvironment, mem: AuditMemory): AuditTarget {
  const proc = modelProcessLikeReal(mem);
  const platform = currentPlatform(env);
  const group = new Type1GroupModel(env.groupId, platform, env.devices);
  let container: ContainerOps;
  let attach: () => RoleResult;
  let closeFile: () => void;
  if (backend === 'type1') {
    const model = new Type1ContainerModel(proc, type1ModelOptions(env.userPtrMax));
    const ops = model as unknown as ContainerOps;
    // KF-0006: as the kernel target does, a map that would leak is the forked child's (its own mm).
    container = ops;
    attach = () => ({ op: 'VFIO_GROUP_SET_CONTAINER', errno: group.setContainer(model).errno });
    closeFile = () => void model.close();
  } else {
    const ictx = new IommufdModel(proc, undefined, kernelBehaviour());
    container = compatContainerOps(ictx);
    // As lib/lockstep/session.ts wires a group to an iommufd model: SET_CONTAINER records the binding
    // and makes the compat IOAS (group.c -> iommufd_vfio_compat_ioas_create); a device opened later
    // binds to this iommufd and attaches to its compat IOAS (vfio/iommufd.c: vfio_iommufd_compat_attach_ioas).
    const binding: GroupIommufdBinding = {
      bindDevice: () => ictx.attachHardwareDevice(iommufdDomainSpec(platform), ictx.compatIoas()?.id ?? null, iommufdMsiPlatform(platform)),
      unbindDevice: (devId) => void ictx.detachHardwareDevice(devId),
    };
    attach = () => {
      const r = group.setContainer('iommufd', binding);
      if (r.errno === 0) {
        const created = ictx.vfioGroupAttached();
        if (created.errno) return { op: 'VFIO_GROUP_SET_CONTAINER', errno: created.errno };
      }
      return { op: 'VFIO_GROUP_SET_CONTAINER', errno: r.errno };
    };
    closeFile = () => void ictx.close();
  }
  let deviceFd = -1;
  const closeDevice = (): RoleResult => {
    const r = group.closeDevice(deviceFd);
    deviceFd = -1;
    return { op: 'close(device fd)', errno: r.errno };
  };
  return {
    backend,
    side: 'model',
    container,
    hasGroup: true,
    windowTop: firstReservedAbove(platform, AUDIT_IOVA),
    attach,
    openDevice: () => {
      if (deviceFd >= 0) throw new Error('the audit opens one device fd at a time');
      const r = group.getDeviceFd(env.bdf);
      if (r.errno === 0) deviceFd = r.deviceFd;
      return { op: 'VFIO_GROUP_GET_DEVICE_FD', errno: r.errno };
    },
    closeDevice,
    unsetContainer: () => ({ op: 'VFIO_GROUP_UNSET_CONTAINER', errno: group.unsetContainer().errno }),
    groupStatus: () => group.getStatus(),
    charged: () => ({ vmLck: proc.mmLockedVm, vmPin: proc.mmPinnedVm }),
    setIpcLock: (on) => void (proc.credentials = { ...proc.credentials, ipcLock: on }),
    setMemlockLimit: (bytes) => void (proc.memlockLimit = bytes),
    dispose: () => {
      if (deviceFd >= 0) closeDevice();
      group.close();
      closeFile();
      checkModelLeftNothing(proc, `${backend} (model)`);
    },
  };
}

/** The compat model's container calls; requests by number go to its valueIoctl (no user buffer in the audit's). */
function compatContainerOps(ictx: IommufdModel): ContainerOps {
  const compat = ictx.compat;
  return {
    getApiVersion: () => compat.getApiVersion(),
    checkExtension: (extension) => compat.checkExtension(extension),
    setIommu: (type) => compat.setIommu(type),
    getInfo: (args) => compat.getInfo(args),
    mapDma: (args) => compat.mapDma(args),
    unmapDma: (args) => compat.unmapDma(args),
    dirtyPages: (args) => compat.dirtyPages(args),
    ioctl: (request, arg) => compat.valueIoctl(request, arg),
  };
}

/** compat-mock as the model predicts it. */
export function modelMockTarget(mem: AuditMemory): AuditTarget {
  const proc = modelProcessLikeReal(mem);
  const ictx = new IommufdModel(proc, undefined, kernelBehaviour());
  return mockTarget('model', ictx as unknown as MockIommufd, compatContainerOps(ictx), {
    charged: () => ({ vmLck: proc.mmLockedVm, vmPin: proc.mmPinnedVm }),
    setIpcLock: (on) => void (proc.credentials = { ...proc.credentials, ipcLock: on }),
    setMemlockLimit: (bytes) => void (proc.memlockLimit = bytes),
    dispose: () => {
      ictx.close();
      checkModelLeftNothing(proc, 'compat-mock (model)');
    },
  });
}

// ---------------------------------------------------------------- native: the device cdev on /dev/iommu

export const NATIVE_NO_CONTAINER = 'native iommufd has no VFIO container: the VMM uses /dev/iommu and the device cdev, not container ioctls';
const NATIVE_NO_GROUP = 'the device cdev has no VFIO group (BIND_IOMMUFD replaces SET_CONTAINER and GET_DEVICE_FD)';

/** The container ops of a target that has none: each throws NoNativeEquivalent. */
const noContainer = new Proxy({} as ContainerOps, {
  get: () => () => {
    throw new NoNativeEquivalent(NATIVE_NO_CONTAINER);
  },
});

/** What the native target drives, on either side: the device file and the iommufd. */
interface NativeParts {
  side: AuditSide;
  bind(): number;
  attachPt(ptId: number): number;
  detachPt(): number;
  ioasAlloc(): { errno: number; ioasId: number };
  ioctl(request: number, bytes: Uint8Array): number;
  ioasIovaRanges: NativeIoas['ioasIovaRanges'];
  proc: Pick<AuditTarget, 'charged' | 'setIpcLock' | 'setMemlockLimit' | 'dispose'>;
}

function nativeTarget(windowTop: bigint, p: NativeParts): AuditTarget {
  let ioasId = 0;
  const allocIoas = () => {
    const ioas = p.ioasAlloc();
    if (ioas.errno === 0) ioasId = ioas.ioasId;
    return ioas.errno;
  };
  return {
    backend: 'native',
    side: p.side,
    container: noContainer,
    native: {
      get ioasId() {
        return ioasId;
      },
      bind: () => p.bind(),
      allocIoas,
      ioctl: (request, bytes) => p.ioctl(request, bytes),
      ioasIovaRanges: (args) => p.ioasIovaRanges(args),
    },
    hasGroup: false,
    windowTop,
    // The VMM's equivalent of SET_CONTAINER: the device joins the iommufd, which gets an IOAS for it.
    attach: () => {
      const op = 'VFIO_DEVICE_BIND_IOMMUFD+IOMMU_IOAS_ALLOC';
      const bound = p.bind();
      return { op, errno: bound || allocIoas() };
    },
    // GET_DEVICE_FD's part in compat (the device attaches to the compat IOAS and the IOAS gets its domain).
    openDevice: () => ({ op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', errno: p.attachPt(ioasId) }),
    closeDevice: () => ({ op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', errno: p.detachPt() }),
    unsetContainer: () => {
      throw new NoNativeEquivalent(NATIVE_NO_GROUP);
    },
    groupStatus: () => {
      throw new NoNativeEquivalent(NATIVE_NO_GROUP);
    },
    ...p.proc,
  };
}

function requireCdev(env: DeviceEnvironment): string {
  if (!env.cdev) throw new Error(`${env.bdf} has no VFIO device cdev (/sys/bus/pci/devices/${env.bdf}/vfio-dev): CONFIG_VFIO_DEVICE_CDEV`);
  return env.cdev;
}

/** native on the kernel: /dev/iommu and /dev/vfio/devices/vfioN of the edu device. */
export function kernelNativeTarget(env: DeviceEnvironment): AuditTarget {
  const cdev = requireCdev(env);
  // KF-0007's probe borrows the device's group: asked (once; the answer is kept) before this target opens its cdev.
  iommufdTopAreaMapsFirstRun();
  const state = new RealProcessState();
  const opened = IommuFd.open();
  if (!opened.iommufd) throw new Error(`cannot open /dev/iommu: errno ${opened.errno}`);
  const iommufd = opened.iommufd;
  const dev = VfioDevice.openCdev(cdev);
  if (!dev.device) {
    iommufd.close();
    throw new Error(`cannot open ${cdev}: errno ${dev.errno}`);
  }
  const device = dev.device;
  return nativeTarget(firstReservedAbove(env.platform, AUDIT_IOVA), {
    side: 'kernel',
    bind: () => device.bindIommufd(iommufd.fd).errno,
    attachPt: (ptId) => device.attachPt(ptId).errno,
    detachPt: () => device.detachPt().errno,
    ioasAlloc: () => iommufd.ioasAlloc(),
    ioctl: (request, bytes) => {
      // KF-0007: an area at the top would map pages never given and unpin them later (mapEndsAtTopAndRemaps).
      if (request === U.IOMMU_IOAS_MAP) {
        const m = U.iommu_ioas_map.decode(bytes);
        if ((m.flags & U.IOMMU_IOAS_MAP_FIXED_IOVA) !== 0 && mapEndsAtTopAndRemaps({ iova: m.iova, size: m.length })) throw new HeldBackByFinding('KF-0007', KF_0007_WHAT('IOMMU_IOAS_MAP', m.iova));
      }
      return errnoOf(sys().ioctl(iommufd.fd, request, bytes));
    },
    ioasIovaRanges: (args) => iommufd.ioasIovaRanges(args),
    proc: {
      charged: () => state.charged(),
      setIpcLock: (on) => state.setIpcLock(on),
      setMemlockLimit: (bytes) => state.setMemlockLimit(bytes),
      dispose: () => {
        // The device first: closing it unbinds (detaching first), which drops its hold on the iommufd.
        try {
          device.close();
          iommufd.close();
          state.checkNothingLeft('native (kernel)');
        } finally {
          state.restore();
        }
      },
    },
  });
}

/** The model's fd table for the native target's ioctls: IOAS_MAP/UNMAP take and make no fds. */
const NO_FDS: IommufdFds = {
  accessOf: () => null,
  install: () => {
    throw new ModelCannotAnswer('an fd the audit does not expect');
  },
  fileOf: () => null,
  installDmabuf: () => {
    throw new ModelCannotAnswer('an fd the audit does not expect');
  },
};

/** User memory for the native target's ioctls: their structs are passed as buffers and point at nothing the model reads. */
const NO_USER_MEMORY: UserAccess = {
  read: (address, length) => {
    throw new ModelCannotAnswer('user pointer to memory the model was not told about', `0x${address.toString(16)}+${length}`);
  },
  write: (address, bytes) => {
    throw new ModelCannotAnswer('user pointer to memory the model was not told about', `0x${address.toString(16)}+${bytes.length}`);
  },
};

/** native as the model predicts it: an IommufdModel and a VfioDeviceCdevModel of the device. */
export function modelNativeTarget(env: DeviceEnvironment, mem: AuditMemory): AuditTarget {
  requireCdev(env);
  const proc = modelProcessLikeReal(mem);
  const platform = currentPlatform(env);
  const ictx = new IommufdModel(proc, undefined, kernelBehaviour());
  const device = new VfioDeviceCdevModel(iommufdDomainSpec(platform), iommufdMsiPlatform(platform));
  return nativeTarget(firstReservedAbove(platform, AUDIT_IOVA), {
    side: 'model',
    bind: () => device.bindIommufd(ictx).errno,
    attachPt: (ptId) => device.attachPt(ptId).errno,
    detachPt: () => device.detachPt().errno,
    ioasAlloc: () => ictx.ioasAlloc(),
    ioctl: (request, bytes) => {
      const ret = iommufdFopsIoctl(ictx, NO_FDS, request, new IoctlArgument(bytes, 0n, NO_USER_MEMORY), NO_USER_MEMORY);
      return ret < 0 ? -ret : 0;
    },
    ioasIovaRanges: (args) => ictx.ioasIovaRanges(args),
    proc: {
      charged: () => ({ vmLck: proc.mmLockedVm, vmPin: proc.mmPinnedVm }),
      setIpcLock: (on) => void (proc.credentials = { ...proc.credentials, ipcLock: on }),
      setMemlockLimit: (bytes) => void (proc.memlockLimit = bytes),
      dispose: () => {
        device.close();
        ictx.close();
        checkModelLeftNothing(proc, 'native (model)');
      },
    },
  });
}
