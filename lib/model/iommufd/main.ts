// main.c:iommufd_fops_ioctl as an executable specification: one table,
// ioctl number -> struct layout (lib/uapi), minimum size, handler; the size
// rules of copy_struct_from_user applied once, for every ioctl; numbers
// outside the table go to the VFIO compat (vfio_compat.c).
import * as U from '../../uapi/index.ts';
import { readU32 } from '../../uapi/bytes.ts';
import type { AnyStructLayout } from '../../uapi/layout.ts';
import { E2BIG, EFAULT, EINVAL, ENOTTY } from '../errno.ts';
import type { IommufdModel } from '../iommufd.ts';
import type { IoctlArgument, UserAccess } from '../uaccess.ts';
import { iommufdGetHwInfo } from './device.ts';
import { iommufdFaultAlloc } from './fault.ts';
import { iommufdHwptAlloc, iommufdHwptGetDirtyBitmap, iommufdHwptInvalidate, iommufdHwptSetDirtyTracking } from './hw_pagetable.ts';
import { iommufdIoasAlloc, iommufdIoasAllowIovas, iommufdIoasChangeProcess, iommufdIoasCopy, iommufdIoasIovaRanges, iommufdIoasMap, iommufdIoasMapFile, iommufdIoasUnmap, iommufdOption } from './ioas.ts';
import type { KernelBehaviour } from '../kernel-behaviour.ts';
import { iommufdTest, TEST_OPS } from './selftest.ts';
import type { IommufdFds, Ucmd } from './ucmd.ts';
import { iommufdVfioIoas, iommufdVfioIoctl } from './vfio_compat.ts';
// vIOMMU (7.x)
import { iommufdVeventqAllocIoctl } from './eventq.ts';
import { iommufdHwQueueAllocIoctl, iommufdVdeviceAllocIoctl, iommufdViommuAllocIoctl } from './viommu.ts';

/** One row of iommufd_ioctl_ops[] (IOCTL_OP(ioctl, fn, struct, last)). */
export interface IommufdIoctlOp {
  readonly name: string;
  readonly request: number;
  readonly layout: AnyStructLayout;
  /** op->size: sizeof(struct) */
  readonly size: number;
  /** op->min_size: offsetofend(struct, last) */
  readonly minSize: number;
  readonly execute: (ucmd: Ucmd) => number;
  /** It may pin or unpin pages, so VmPin and VmLck may move. */
  readonly accounting?: boolean;
  /** Struct members that carry an fd the ioctl makes. */
  readonly fdOut?: readonly string[];
  /** Struct members that carry an fd the caller passes (the model's own number for it, in lockstep). */
  readonly fdIn?: readonly string[];
  /** Whether the running kernel has this ioctl (a later kernel's addition); absent: always. Without it the slot is empty: ENOTTY. */
  readonly available?: (behaviour: Readonly<KernelBehaviour>) => boolean;
}

function row(
  op: U.IoctlOp,
  execute: (ucmd: Ucmd) => number,
  extra: { accounting?: boolean; fdOut?: string[]; fdIn?: string[]; available?: (behaviour: Readonly<KernelBehaviour>) => boolean } = {},
): IommufdIoctlOp {
  return Object.freeze({ name: op.ioctl, request: op.request, layout: op.struct, size: op.struct.sizeof, minSize: op.minSize, execute, ...extra });
}

// Read once: a module namespace's members are getters in the bundles, and these are read on every call.
const IOMMUFD_CMD_BASE = U.IOMMUFD_CMD_BASE;
const IOMMU_TEST_CMD = U.IOMMU_TEST_CMD;
const nrOf = (request: number): number => request & 0xff; // _IOC_NR

const OPS = Object.fromEntries(U.IOMMUFD_IOCTL_OPS.map((op) => [op.ioctl, op])) as Record<(typeof U.IOMMUFD_IOCTL_OPS)[number]['ioctl'], U.IoctlOp>;

/** vIOMMU (7.x): the rows of IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC, IOMMU_VEVENTQ_ALLOC and IOMMU_HW_QUEUE_ALLOC. */
function VIOMMU_ROWS(): IommufdIoctlOp[] {
  const ops = OPS;
  return [
    row(ops.IOMMU_HW_QUEUE_ALLOC, iommufdHwQueueAllocIoctl, { accounting: true, available: (b) => b.viommu }),
    row(ops.IOMMU_VDEVICE_ALLOC, iommufdVdeviceAllocIoctl, { available: (b) => b.viommu }),
    row(ops.IOMMU_VEVENTQ_ALLOC, iommufdVeventqAllocIoctl, { fdOut: ['out_veventq_fd'], available: (b) => b.viommu }),
    row(ops.IOMMU_VIOMMU_ALLOC, iommufdViommuAllocIoctl, { available: (b) => b.viommu }),
  ];
}

/** iommufd_ioctl_ops[] of 6.12 with CONFIG_IOMMUFD_TEST, in main.c's order. */
export const IOMMUFD_IOCTLS: readonly IommufdIoctlOp[] = Object.freeze([
  row(OPS.IOMMU_DESTROY, (u) => -u.ctx.destroy(u.layout.read(u.cmd, 'id' as never) as number).errno || 0, { accounting: true }),
  row(OPS.IOMMU_FAULT_QUEUE_ALLOC, iommufdFaultAlloc, { fdOut: ['out_fault_fd'] }),
  row(OPS.IOMMU_GET_HW_INFO, iommufdGetHwInfo),
  row(OPS.IOMMU_HWPT_ALLOC, iommufdHwptAlloc, { accounting: true }),
  row(OPS.IOMMU_HWPT_GET_DIRTY_BITMAP, iommufdHwptGetDirtyBitmap),
  row(OPS.IOMMU_HWPT_INVALIDATE, iommufdHwptInvalidate),
  row(OPS.IOMMU_HWPT_SET_DIRTY_TRACKING, iommufdHwptSetDirtyTracking),
  row(OPS.IOMMU_IOAS_ALLOC, iommufdIoasAlloc),
  row(OPS.IOMMU_IOAS_ALLOW_IOVAS, iommufdIoasAllowIovas),
  // IOMMU_IOAS_CHANGE_PROCESS (7.x: issue 13)
  row(OPS.IOMMU_IOAS_CHANGE_PROCESS, iommufdIoasChangeProcess, { accounting: true, available: (b) => b.ioasChangeProcess }),
  row(OPS.IOMMU_IOAS_COPY, iommufdIoasCopy, { accounting: true }),
  row(OPS.IOMMU_IOAS_IOVA_RANGES, iommufdIoasIovaRanges),
  row(OPS.IOMMU_IOAS_MAP, iommufdIoasMap, { accounting: true }),
  // IOMMU_IOAS_MAP_FILE (7.x)
  row(OPS.IOMMU_IOAS_MAP_FILE, iommufdIoasMapFile, { accounting: true, fdIn: ['fd'], available: (b) => b.ioasMapFile }),
  row(OPS.IOMMU_IOAS_UNMAP, iommufdIoasUnmap, { accounting: true }),
  row(OPS.IOMMU_OPTION, iommufdOption, { accounting: true }),
  row(OPS.IOMMU_VFIO_IOAS, iommufdVfioIoas),
  // vIOMMU (7.x): IOMMU_HW_QUEUE_ALLOC pins its queue's pages (an internal access)
  ...VIOMMU_ROWS(),
  row(U.IOMMU_TEST_CMD_OP, iommufdTest),
]);

/** The table indexed as the kernel indexes it: nrOf(cmd) - IOMMUFD_CMD_BASE. */
export class IommufdIoctlTable {
  readonly #byNr: (IommufdIoctlOp | undefined)[] = [];
  constructor(readonly ops: readonly IommufdIoctlOp[] = IOMMUFD_IOCTLS) {
    for (const op of ops) this.#byNr[nrOf(op.request) - IOMMUFD_CMD_BASE] = op;
  }
  /** ARRAY_SIZE(iommufd_ioctl_ops) */
  get length(): number {
    return this.#byNr.length;
  }
  slot(nr: number): IommufdIoctlOp | undefined {
    return this.#byNr[nr - IOMMUFD_CMD_BASE];
  }
  /** The row that answers `request`, if any (the number must match the row's exactly). */
  lookup(request: number): IommufdIoctlOp | undefined {
    const op = this.slot(nrOf(request));
    return op && op.request === request >>> 0 ? op : undefined;
  }
  /** A copy with one row replaced (tests: a model with one rule changed). */
  with(name: string, change: Partial<IommufdIoctlOp>): IommufdIoctlTable {
    return new IommufdIoctlTable(this.ops.map((op) => (op.name === name ? Object.freeze({ ...op, ...change }) : op)));
  }
}

export const IOMMUFD_IOCTL_TABLE = new IommufdIoctlTable();

/**
 * lib/strncpy_from_user.c's neighbour, lib/usercopy.c:copy_struct_from_user:
 * the kernel's copy is `ksize` bytes; a shorter user struct is zero-extended,
 * a longer one is accepted only if its extra bytes are zero (else E2BIG).
 */
export function copyStructFromUser(ksize: number, arg: IoctlArgument, usize: number): Uint8Array | number {
  const dst = new Uint8Array(ksize);
  const size = Math.min(ksize, usize);
  if (usize > ksize) {
    // check_zeroed_user(src + ksize, usize - ksize): EFAULT if it cannot be read
    const rest = arg.read(ksize, usize - ksize);
    if (!rest) return -EFAULT;
    for (let i = 0; i < rest.length; i++) if (rest[i] !== 0) return -E2BIG;
  }
  if (!arg.copyInto(dst, 0, size)) return -EFAULT;
  return dst;
}

/** main.c:iommufd_fops_ioctl. -ENOIOCTLCMD reaches the caller as ENOTTY. */
export function iommufdFopsIoctl(
  ctx: IommufdModel,
  fds: IommufdFds,
  request: number,
  arg: IoctlArgument,
  user: UserAccess,
  table: IommufdIoctlTable = IOMMUFD_IOCTL_TABLE,
): number {
  const nr = nrOf(request);
  if (nr < IOMMUFD_CMD_BASE || nr - IOMMUFD_CMD_BASE >= table.length) return iommufdVfioIoctl(ctx, request, arg);
  // get_user(ucmd.user_size, (u32 __user *)ucmd.ubuffer)
  const userSize = arg.u32(0);
  if (userSize === null) return -EFAULT;
  const op = table.lookup(request);
  if (!op || (op.available && !op.available(ctx.behaviour))) return -ENOTTY;
  if (userSize < op.minSize) return -EINVAL;
  const cmd = copyStructFromUser(op.size, arg, userSize);
  if (typeof cmd === 'number') return cmd;
  return op.execute({ ctx, fds, layout: op.layout, cmd, userSize, arg, user });
}

/** What the lockstep layer must know of an ioctl on /dev/iommu besides its bytes. */
export interface IoctlShape {
  readonly name: string;
  readonly layout: AnyStructLayout | null;
  /** Byte ranges of the argument that carry an fd: in (the caller's) and out (one the call makes). */
  readonly fdIn: readonly { offset: number; size: number }[];
  readonly fdOut: readonly { offset: number; size: number }[];
  readonly accounting: boolean;
  /** For a struct with a union (iommu_test_cmd), the member this call uses. */
  readonly member?: string;
  /** The call's return value is a new fd (IOMMU_TEST_OP_DMABUF_GET): paired with the model's, not compared. */
  readonly returnsFd?: boolean;
}

const noFds: readonly { offset: number; size: number }[] = Object.freeze([]);

const shapeCache = new WeakMap<IommufdIoctlTable, Map<number, IoctlShape>>();

/** The shape of `request` on /dev/iommu, with the argument's bytes as the caller passed them. */
export function iommufdIoctlShape(request: number, bytes: Uint8Array | null, table: IommufdIoctlTable = IOMMUFD_IOCTL_TABLE): IoctlShape {
  const nr = nrOf(request);
  const op = nr >= IOMMUFD_CMD_BASE ? table.lookup(request) : undefined;
  // One shape per request (per IOMMU_TEST_CMD op), made once.
  const testOpNr = op?.request === IOMMU_TEST_CMD && bytes && bytes.length >= 8 ? readU32(bytes, 4) : -1;
  let byKey = shapeCache.get(table);
  if (!byKey) shapeCache.set(table, (byKey = new Map()));
  const key = op?.request === IOMMU_TEST_CMD ? -1 - testOpNr : request >>> 0;
  let shape = byKey.get(key);
  if (!shape) byKey.set(key, (shape = makeShape(request, op, testOpNr)));
  return shape;
}

function makeShape(request: number, op: IommufdIoctlOp | undefined, testOpNr: number): IoctlShape {
  if (!op) {
    const name = VFIO_NAMES.get(request) ?? `ioctl 0x${(request >>> 0).toString(16)}`;
    const layout = request === U.VFIO_IOMMU_MAP_DMA ? U.vfio_iommu_type1_dma_map : request === U.VFIO_IOMMU_UNMAP_DMA ? U.vfio_iommu_type1_dma_unmap : request === U.VFIO_IOMMU_GET_INFO ? U.vfio_iommu_type1_info : null;
    const accounting = request === U.VFIO_IOMMU_MAP_DMA || request === U.VFIO_IOMMU_UNMAP_DMA || request === U.VFIO_SET_IOMMU;
    return Object.freeze({ name, layout, fdIn: noFds, fdOut: noFds, accounting });
  }
  if (op.request !== IOMMU_TEST_CMD) {
    const fdOut = (op.fdOut ?? []).map((f) => ({ offset: op.layout.offsetOf(f as never), size: 4 }));
    const fdIn = op.fdIn ? op.fdIn.map((f) => ({ offset: op.layout.offsetOf(f as never), size: 4 })) : noFds;
    return Object.freeze({ name: op.name, layout: op.layout, fdIn, fdOut, accounting: !!op.accounting });
  }
  const testOp = TEST_OPS.get(testOpNr);
  const L = U.iommu_test_cmd;
  return Object.freeze({
    name: testOp ? `IOMMU_TEST_OP_${testOp.name}` : op.name,
    layout: L,
    fdIn: testOp?.idIsAccessFd ? [{ offset: L.offsetOf('id'), size: 4 }] : testOp?.fdIn ? [{ offset: L.offsetOf(testOp.fdIn as never), size: 4 }] : noFds,
    fdOut: testOp?.fdOut ? [{ offset: L.offsetOf(testOp.fdOut as never), size: 4 }] : noFds,
    accounting: !!testOp?.accounting,
    ...(testOp?.member ? { member: testOp.member } : {}),
    ...(testOp?.returnsFd ? { returnsFd: true } : {}),
  });
}

const VFIO_NAMES = new Map<number, string>([
  [U.VFIO_GET_API_VERSION, 'VFIO_GET_API_VERSION'],
  [U.VFIO_CHECK_EXTENSION, 'VFIO_CHECK_EXTENSION'],
  [U.VFIO_SET_IOMMU, 'VFIO_SET_IOMMU'],
  [U.VFIO_IOMMU_GET_INFO, 'VFIO_IOMMU_GET_INFO'],
  [U.VFIO_IOMMU_MAP_DMA, 'VFIO_IOMMU_MAP_DMA'],
  [U.VFIO_IOMMU_UNMAP_DMA, 'VFIO_IOMMU_UNMAP_DMA'],
  [U.VFIO_IOMMU_DIRTY_PAGES, 'VFIO_IOMMU_DIRTY_PAGES'],
  [U.VFIO_GROUP_GET_STATUS, 'VFIO_GROUP_GET_STATUS'],
  [U.VFIO_GROUP_SET_CONTAINER, 'VFIO_GROUP_SET_CONTAINER'],
  [U.VFIO_GROUP_UNSET_CONTAINER, 'VFIO_GROUP_UNSET_CONTAINER'],
  [U.VFIO_GROUP_GET_DEVICE_FD, 'VFIO_GROUP_GET_DEVICE_FD'],
]);

export function vfioIoctlName(request: number): string {
  return VFIO_NAMES.get(request) ?? `ioctl 0x${(request >>> 0).toString(16)}`;
}
