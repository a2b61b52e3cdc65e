// drivers/vfio/group.c (vfio_group_fops_unl_ioctl) at the ABI, and the
// wiring of a group to an iommufd (group.c → iommufd_vfio_compat_ioas_create;
// vfio/iommufd.c: a device opened through the group binds to that iommufd and
// attaches to its compat IOAS).
import * as U from '../../uapi/index.ts';
import { EBADF, EFAULT, EINVAL, ENOTTY } from '../errno.ts';
import type { IommufdModel } from '../iommufd.ts';
import { iommufdDomainSpec } from '../mock.ts';
import { iommufdMsiPlatform } from '../type1-platform.ts';
import type { GroupIommufdBinding, Type1ContainerModel, Type1GroupModel } from '../type1.ts';
import type { IoctlArgument } from '../uaccess.ts';

/** What a SET_CONTAINER fd is, from the process's fd table. */
export type GroupContainerTarget =
  | { kind: 'type1'; container: Type1ContainerModel }
  | { kind: 'iommufd'; ctx: IommufdModel }
  | { kind: 'other-file' }
  | { kind: 'bad-fd' };

/** A device opened through a group bound to `ctx` binds there and attaches to the compat IOAS (vfio_iommufd_compat_attach_ioas). */
function iommufdBinding(group: Type1GroupModel, ctx: IommufdModel): GroupIommufdBinding {
  return {
    bindDevice: () => ctx.attachHardwareDevice(iommufdDomainSpec(group.platform), ctx.compatIoas()?.id ?? null, iommufdMsiPlatform(group.platform)),
    unbindDevice: (devId: number) => void ctx.detachHardwareDevice(devId),
  };
}

export interface GroupIoctlContext {
  /** The file behind a process fd (fdget). */
  target(fd: number): GroupContainerTarget;
  /** Installs a device fd the group opened (by the group model's own number): the process's fd. */
  installDevice(group: Type1GroupModel, localFd: number): number;
}

/** group.c:vfio_group_fops_unl_ioctl */
export function vfioGroupIoctl(group: Type1GroupModel, request: number, arg: IoctlArgument, files: GroupIoctlContext): number {
  switch (request) {
    case U.VFIO_GROUP_GET_DEVICE_FD: {
      // strndup_user(arg, PAGE_SIZE)
      const name = arg.string(4096);
      if (name === null) return -EFAULT;
      const r = group.getDeviceFd(name);
      return r.errno ? -r.errno : files.installDevice(group, r.deviceFd);
    }
    case U.VFIO_GROUP_GET_STATUS: {
      // minsz = offsetofend(struct vfio_group_status, flags); copy in, check argsz, copy out minsz
      const b = arg.read(0, 8)?.slice();
      if (!b) return -EFAULT;
      if (U.vfio_group_status.read(b, 'argsz') < 8) return -EINVAL;
      const r = group.getStatus();
      if (r.errno) return -r.errno;
      U.vfio_group_status.write(b, 'flags', r.flags);
      return arg.write(0, b) ? 0 : -EFAULT;
    }
    case U.VFIO_GROUP_SET_CONTAINER: {
      const b = arg.read(0, 4);
      if (!b) return -EFAULT;
      const fd = new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true);
      const t = fd < 0 ? ({ kind: 'bad-fd' } as const) : files.target(fd);
      if (t.kind === 'bad-fd') return -EBADF;
      if (t.kind === 'type1') return -group.setContainer(t.container).errno || 0;
      if (t.kind === 'other-file') return -group.setContainer('other-file').errno || 0;
      const r = group.setContainer('iommufd', iommufdBinding(group, t.ctx));
      if (r.errno) return -r.errno;
      return -t.ctx.vfioGroupAttached().errno || 0;
    }
    case U.VFIO_GROUP_UNSET_CONTAINER:
      return -group.unsetContainer().errno || 0;
    default:
      return -ENOTTY;
  }
}
