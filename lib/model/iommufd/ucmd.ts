// struct iommufd_ucmd: what an ioctl handler of /dev/iommu gets (main.c).
// `cmd` is the kernel's own copy of the user struct (op->size bytes, from
// copy_struct_from_user); handlers change it in place and iommufdUcmdRespond
// copies it back as the kernel does.
import { readS32, readU16, readU32, readU64, writeU16, writeU32, writeU64, writeU8 } from '../../uapi/bytes.ts';
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
}

// Handlers read a handful of members per call, ~10^5 calls a run: each
// member's offset and type is resolved once per layout, and read straight
// from the kernel's copy's bytes (no DataView: lib/uapi/bytes.ts says why).
// (StructLayout.field keeps every path it resolved.)
function infoOf(layout: AnyStructLayout, path: string): FieldInfo {
  return layout.field(path);
}

/** main.c:iommufd_ucmd_respond: copy_to_user(ubuffer, cmd, min(user_size, cmd_len)). */
export function iommufdUcmdRespond(ucmd: Ucmd): number {
  const n = Math.min(ucmd.userSize, ucmd.cmd.length);
  return ucmd.arg.writeFrom(0, ucmd.cmd, n) ? 0 : -EFAULT;
}

/** Reads a member (or dotted path) of the kernel's copy. */
export function field<T = number>(ucmd: Ucmd, path: string): T {
  const f = infoOf(ucmd.layout, path);
  const c = ucmd.cmd;
  switch (f.kind) {
    case 'u8': return c[f.offset] as T;
    case 'u16': return readU16(c, f.offset) as T;
    case 'u32': return readU32(c, f.offset) as T;
    case 's32': return readS32(c, f.offset) as T;
    case 'u64': return readU64(c, f.offset) as T;
    default: return ucmd.layout.read(ucmd.cmd, path as never) as T;
  }
}

/** Writes a member (or dotted path) of the kernel's copy. */
export function setField(ucmd: Ucmd, path: string, value: number | bigint): void {
  const f = infoOf(ucmd.layout, path);
  const c = ucmd.cmd;
  switch (f.kind) {
    case 'u8': return writeU8(c, f.offset, Number(value));
    case 'u16': return writeU16(c, f.offset, Number(value));
    case 'u32':
    case 's32': return writeU32(c, f.offset, Number(value));
    case 'u64': return writeU64(c, f.offset, BigInt(value));
    default: ucmd.layout.write(ucmd.cmd, path as never, value as never);
  }
}

/** A semantic result's errno as the handler's return value. */
export const ret = (errno: number): number => (errno ? -errno : 0);
