// Which models the lockstep layer runs beside the kernel: the platform the
// model's system calls make their files on. The type1 model needs the
// platform its group sits on (the IOMMU's page sizes, aperture and reserved
// regions): facts read from sysfs, not answers copied from the ioctls under
// test. Where the running kernel changed after 6.12, the models follow it
// (KernelBehaviour, Type1ModelOptions), as probed in lib/kernel/features.ts.
import { readdirSync } from 'node:fs';
import { kernelFeatures, type1InfoCapsAligned, type1ReadOnlyPinsZeroPage, type1UnmapEndWrapLeaks, type1WrapOverflow, type KernelFeatures } from '../kernel/features.ts';
import { IommufdModel } from '../model/iommufd.ts';
import { BASELINE_BEHAVIOUR, type KernelBehaviour, type Type1Behaviour } from '../model/kernel-behaviour.ts';
import type { ModelPlatform } from '../model/syscalls.ts';
import { readType1Platform, readUserPtrMax } from '../model/type1-platform.ts';
import { Type1ContainerModel, Type1GroupModel, type Type1ModelOptions } from '../model/type1.ts';
import { pagemapReader, sharedZeroPageAddress } from '../sys/pagemap.ts';
import { coreSys } from '../sys/index.ts';

/** The names of a group's devices (what VFIO_GROUP_GET_DEVICE_FD finds by name). */
function readGroupDevices(groupId: number): string[] {
  return readdirSync(`/sys/kernel/iommu_groups/${groupId}/devices`);
}

/**
 * The model's KernelBehaviour for the running kernel: each switch from the
 * probe of its fact (lib/kernel/features.ts KernelFeatures.changes). Without
 * /dev/iommu (a host run, model-only mode) the model stays 6.12's.
 */
export function kernelBehaviour(features: KernelFeatures = kernelFeatures()): KernelBehaviour {
  if (!features.iommufd) return { ...BASELINE_BEHAVIOUR };
  const c = features.changes;
  return {
    mockGenericPt: c.mockGenericPt,
    hwptInvalidateAnyObject: c.hwptInvalidateAnyObject,
    hwInfoAtsNotSupported: c.hwInfoAtsNotSupported,
    mockDevicePasid: features.mockDevFlags.pasid,
    // The MAP_FILE series split iopt_alloc_pages, moving the wrap check to iopt_alloc_user_pages.
    userPagesOverflowFirst: c.ioasMapFile,
    dirtyContigLeafShort: c.dirtyContigLeafShort,
    hwInfoInputType: features.hwInfoInputType,
    dirtyBitmapZeroLength: c.dirtyBitmapZeroLength,
    hwptPagingFault: c.hwptPagingFault,
    viommu: features.ioctls.IOMMU_VIOMMU_ALLOC === true,
    // PASID and CHANGE_PROCESS (7.x: issue 13)
    pasid: features.testOps.PASID_ATTACH === true,
    ioasChangeProcess: features.ioctls.IOMMU_IOAS_CHANGE_PROCESS === true,
    // IOMMU_IOAS_MAP_FILE and the selftest's dma-bufs
    ioasMapFile: c.ioasMapFile,
    testDmabuf: features.testOps.DMABUF_GET,
    dmabufGetFdUnreported: c.dmabufGetFdUnreported,
  };
}

/**
 * Real type1's switches (Type1Behaviour) for the running kernel, each from its probe on a borrowed VFIO
 * group: only those that could be probed (none where no group could be borrowed, as in the mock profile),
 * so that a raw file never records a guess.
 */
export function type1Behaviour(): Partial<Type1Behaviour> {
  const wrap = type1WrapOverflow();
  // Nesting needs no group: where type1 is registered (a borrowed type1v2 container answered, or the bare
  // container's CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU) is 1), the bare container's
  // CHECK_EXTENSION(VFIO_TYPE1_NESTING_IOMMU) was type1's own answer; so it is known on a platform whose
  // type1 refuses every group (no isolated MSI) too.
  const f = kernelFeatures().vfio;
  // KF-0006: only where the platform could make a mapping that ends at 2^64 (null elsewhere: not recorded).
  const endWrap = wrap !== null ? type1UnmapEndWrapLeaks() : null;
  return {
    ...(wrap !== null ? { type1WrapOverflow: wrap } : {}),
    ...(wrap !== null || f.type1 ? { type1NestingRemoved: !f.type1Nesting } : {}),
    ...(endWrap !== null ? { type1UnmapEndWrapLeaks: endWrap } : {}),
  };
}

let zeroPageReader: Type1ModelOptions['zeroPage'] | undefined;

/**
 * The type1 model's options for the running kernel, each from its probe (lib/kernel/features.ts): the
 * probes borrow a VFIO group, so this is called when a container model is made, before its group opens.
 */
export function type1ModelOptions(userPtrMax: bigint): Type1ModelOptions {
  if (type1ReadOnlyPinsZeroPage() === true && zeroPageReader === undefined) {
    // The probe saw PFNs, so both are there; read once per process (pagemapReader keeps its fd open).
    const physical = pagemapReader();
    const zero = physical && sharedZeroPageAddress(coreSys(), physical);
    zeroPageReader = physical && zero !== null ? (address) => physical(address) === zero : null;
  }
  const zeroPage = zeroPageReader ?? null;
  return {
    userPtrMax,
    // Type1Behaviour (lib/model/kernel-behaviour.ts): 6.12's where no group could be borrowed.
    wrapOverflow: type1WrapOverflow() ?? false,
    nesting: kernelFeatures().vfio.type1Nesting,
    capsAligned: type1InfoCapsAligned() ?? true,
    zeroPage,
    // KF-0006: 6.12's (it leaks) where no mapping ending at 2^64 could be made to ask, which then cannot occur.
    unmapEndWrapLeaks: type1UnmapEndWrapLeaks() ?? true,
  };
}

export function modelFactories(): ModelPlatform {
  let userPtrMax: bigint | undefined;
  // Probed now, not at the first model: a model may be made inside a fault-injection window.
  const behaviour = kernelBehaviour();
  return {
    iommufd: (process) => new IommufdModel(process, undefined, behaviour),
    // The wrap probe borrows a VFIO group: asked when a container model is made (before its group opens).
    type1: (process) => new Type1ContainerModel(process, type1ModelOptions((userPtrMax ??= readUserPtrMax()))),
    group: (groupId) => new Type1GroupModel(groupId, readType1Platform(groupId, undefined, { genericPt: behaviour.mockGenericPt }), readGroupDevices(groupId)),
  };
}
