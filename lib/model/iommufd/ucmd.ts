// struct iommufd_ucmd: what an ioctl handler of /dev/iommu gets (main.c).
// `cmd` is the kernel's own copy of the user struct (op->size bytes, from
// copy_struct_from_user); handlers change it in place and iommufdUcmdRespond
// copies it back as the kernel does.
import type { AnyStructLayout, FieldInfo } from '../../uapi/layout.ts';
import { EFAULT } from '../errno.ts';
import type { DmaBuf } from '../dma-buf.ts';
import type { IommufdModel, MapFileTarget } from '../iommufd.ts';
import type { IoctlArgument, UserAccess } from '../uaccess.ts';

/** The process's fd table, as far as iommufd's ioctls make or take fds (access and fault fds). */
export interface IommufdFds {
  /** The context-local number of an access fd of the process (iommufd_access_get's fdget), or null. */
  accessOf(ctx: IommufdModel, fd: number): number | null;
  /** Installs a file the context made (access, fault or vEVENTQ, by its context-local number): the process's fd. */
  install(ctx: IommufdModel, kind: 'access' | 'fault' | 'veventq', localFd: number): number;
  /** What an fd of the process is, for IOMMU_IOAS_MAP_FILE and the dma-buf test ops (null: no open file). */
  fileOf(fd: number): MapFileTarget;
  /** Installs a new dma-buf (IOMMU_TEST_OP_DMABUF_GET's dma_buf_fd): the process's fd. */
  installDmabuf(dmabuf: DmaBuf): number;
}

export interface Ucmd {
  readonly ctx: IommufdModel;
  readonly fds: IommufdFds;
  readonly layout: AnyStructLayout;
  /** The kernel's copy of the struct: op->size bytes. */
  readonly cmd: Uint8Array;
  /** ucmd->user_size: the struct's leading size field. */
  readonly userSize: number;
  readonly arg: IoctlArgument;
  readonly user: UserAccess;
  /** A view of `cmd`, made on first use. */
  view?: DataView;
}

// Handlers read a handful of members per call, ~10^5 calls a run: each
// member's offset and type is resolved once per layout, and read straight
// from a DataView of the kernel's copy.
const fieldCache = new WeakMap<AnyStructLayout, Map<string, FieldInfo>>();

function infoOf(layout: AnyStructLayout, path: string): FieldInfo {
  let byPath = fieldCache.get(layout);
  if (!byPath) fieldCache.set(layout, (byPath = new Map()));
  let f = byPath.get(path);
  if (!f) byPath.set(path, (f = layout.field(path)));
  return f;
}

function viewOf(ucmd: Ucmd): DataView {
  return (ucmd.view ??= new DataView(ucmd.cmd.buffer, ucmd.cmd.byteOffset, ucmd.cmd.byteLength));
}

/** main.c:iommufd_ucmd_respond: copy_to_user(ubuffer, cmd, min(user_size, cmd_len)). */
export function iommufdUcmdRespond(ucmd: Ucmd): number {
  const n = Math.min(ucmd.userSize, ucmd.cmd.length);
  return ucmd.arg.write(0, ucmd.cmd.subarray(0, n)) ? 0 : -EFAULT;
}

/** Reads a member (or dotted path) of the kernel's copy. */
export function field<T = number>(ucmd: Ucmd, path: string): T {
  const f = infoOf(ucmd.layout, path);
  const v = viewOf(ucmd);
  switch (f.kind) {
    case 'u8': return v.getUint8(f.offset) as T;
    case 'u16': return v.getUint16(f.offset, true) as T;
    case 'u32': return v.getUint32(f.offset, true) as T;
    case 's32': return v.getInt32(f.offset, true) as T;
    case 'u64': return v.getBigUint64(f.offset, true) as T;
    default: return ucmd.layout.read(ucmd.cmd, path as never) as T;
  }
}

/** Writes a member (or dotted path) of the kernel's copy. */
export function setField(ucmd: Ucmd, path: string, value: number | bigint): void {
  const f = infoOf(ucmd.layout, path);
  const v = viewOf(ucmd);
  switch (f.kind) {
    case 'u8': return v.setUint8(f.offset, Number(value));
    case 'u16': return v.setUint16(f.offset, Number(value), true);
    case 'u32': return v.setUint32(f.offset, Number(value), true);
    case 's32': return v.setInt32(f.offset, Number(value), true);
    case 'u64': return v.setBigUint64(f.offset, BigInt(value), true);
    default: ucmd.layout.write(ucmd.cmd, path as never, value as never);
  }
}

/** A semantic result's errno as the handler's return value. */
export const ret = (errno: number): number => (errno ? -errno : 0);
