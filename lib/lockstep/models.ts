// Which models the lockstep layer runs beside the kernel: the platform the
// model's system calls make their files on. The type1 model needs the
// platform its group sits on (the IOMMU's page sizes, aperture and reserved
// regions): facts read from sysfs, not answers copied from the ioctls under
// test.
import { readdirSync } from 'node:fs';
import { IommufdModel } from '../model/iommufd.ts';
import type { ModelPlatform } from '../model/syscalls.ts';
import { readType1Platform, readUserPtrMax } from '../model/type1-platform.ts';
import { Type1ContainerModel, Type1GroupModel } from '../model/type1.ts';

/** The names of a group's devices (what VFIO_GROUP_GET_DEVICE_FD finds by name). */
function readGroupDevices(groupId: number): string[] {
  return readdirSync(`/sys/kernel/iommu_groups/${groupId}/devices`);
}

export function modelFactories(): ModelPlatform {
  let userPtrMax: bigint | undefined;
  return {
    iommufd: (process) => new IommufdModel(process),
    type1: (process) => new Type1ContainerModel(process, { userPtrMax: (userPtrMax ??= readUserPtrMax()) }),
    group: (groupId) => new Type1GroupModel(groupId, readType1Platform(groupId), readGroupDevices(groupId)),
  };
}
