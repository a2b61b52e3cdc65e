// A group's device on iommufd's compat IOAS: what a VMM's container code does on /dev/iommu (SET_CONTAINER
// with the iommufd, SET_IOMMU, GET_DEVICE_FD, which attaches the device to the compat IOAS), then
// IOMMU_VFIO_IOAS(GET) for that IOAS's id. The feature probes that borrow a group (features.ts
// withBorrowedCompatDevice) and KF-0007's own test take these steps through this one function; each reads
// where they stopped and with which errno.
import { coreSys, type SysCore } from '../sys/index.ts';
import * as U from '../uapi/index.ts';
import type { IommuFd } from './iommufd.ts';
import { VfioContainer, VfioGroup } from './vfio.ts';

export type CompatAttachStep = 'VFIO_GROUP_OPEN' | 'VFIO_GROUP_GET_STATUS (viable)' | 'VFIO_GROUP_SET_CONTAINER' | 'VFIO_SET_IOMMU' | 'VFIO_GROUP_GET_DEVICE_FD' | 'IOMMU_VFIO_IOAS(GET)';

export type CompatAttach = (
  | { attached: true; ioasId: number; deviceFd: number; group: VfioGroup }
  /** The step that failed and its errno (0 for a group that is not viable). */
  | { attached: false; step: CompatAttachStep; errno: number }
) & {
  /** Closes the device fd and the group (never the iommufd, which is the caller's). */
  release(): void;
};

/** Puts `bdf`, the only device of group `groupId`, on `iommufd`'s compat IOAS as a type1v2 container would. */
export function attachCompatDevice(iommufd: IommuFd, groupId: string, bdf: string, s: SysCore = coreSys()): CompatAttach {
  const opened = VfioGroup.open(groupId, s);
  const group = opened.group;
  let deviceFd = -1;
  const release = () => {
    if (deviceFd >= 0) s.close(deviceFd);
    group?.close();
  };
  const failed = (step: CompatAttachStep, errno: number): CompatAttach => ({ attached: false, step, errno, release });
  if (!group) return failed('VFIO_GROUP_OPEN', opened.errno);
  if (!group.getStatus().viable) return failed('VFIO_GROUP_GET_STATUS (viable)', 0);
  const set = group.setContainer(iommufd.fd).errno;
  if (set) return failed('VFIO_GROUP_SET_CONTAINER', set);
  const iommu = VfioContainer.compatOn(iommufd).setIommu(U.VFIO_TYPE1v2_IOMMU).errno;
  if (iommu) return failed('VFIO_SET_IOMMU', iommu);
  const dev = group.getDeviceFd(bdf);
  if (dev.errno) return failed('VFIO_GROUP_GET_DEVICE_FD', dev.errno);
  deviceFd = dev.deviceFd;
  const ioas = iommufd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_GET });
  if (ioas.errno) return failed('IOMMU_VFIO_IOAS(GET)', ioas.errno);
  return { attached: true, ioasId: ioas.ioasId, deviceFd, group, release };
}
