// struct iommufd_ucmd: what an ioctl handler of /dev/iommu gets (main.c).
// `cmd` is the kernel's own copy of the user struct (op->size bytes, from
// copy_struct_from_user); handlers change it in place and iommufdUcmdRespond
// copies it back as the kernel does.
import type { AnyStructLayout } from '../../uapi/layout.ts';
import { EFAULT } from '../errno.ts';
import type { IommufdModel } from '../iommufd.ts';
import type { IoctlArgument, UserAccess } from '../uaccess.ts';

/** The process's fd table, as far as iommufd's ioctls make or take fds (access and fault fds). */
export interface IommufdFds {
  /** The context-local number of an access fd of the process (iommufd_access_get's fdget), or null. */
  accessOf(ctx: IommufdModel, fd: number): number | null;
  /** Installs a file the context made (access or fault, by its context-local number): the process's fd. */
  install(ctx: IommufdModel, kind: 'access' | 'fault', localFd: number): number;
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

/** main.c:iommufd_ucmd_respond: copy_to_user(ubuffer, cmd, min(user_size, cmd_len)). */
export function iommufdUcmdRespond(ucmd: Ucmd): number {
  const n = Math.min(ucmd.userSize, ucmd.cmd.length);
  return ucmd.arg.write(0, ucmd.cmd.subarray(0, n)) ? 0 : -EFAULT;
}

/** Reads a member (or dotted path) of the kernel's copy. */
export function field<T = number>(ucmd: Ucmd, path: string): T {
  return ucmd.layout.read(ucmd.cmd, path as never) as T;
}

/** Writes a member (or dotted path) of the kernel's copy. */
export function setField(ucmd: Ucmd, path: string, value: number | bigint): void {
  ucmd.layout.write(ucmd.cmd, path as never, value as never);
}

/** A semantic result's errno as the handler's return value. */
export const ret = (errno: number): number => (errno ? -errno : 0);
