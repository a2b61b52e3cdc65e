// Device fds of a VFIO group in the models (Type1GroupModel.getDeviceFd /
// closeDevice, drivers/vfio/group.c and vfio_main.c): the container use a
// type1 open takes, and the iommufd attach (vfio/iommufd.c:
// vfio_iommufd_compat_attach_ioas) that makes the compat IOAS pin. The
// pinning figures were confirmed on the viommu VM by
// suites/vm/common/accounting.test.ts (in lockstep with these models).
import { expect } from 'chai';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { iommufdDomainSpec } from '../../lib/model/mock.ts';
import { ModelProcess, PROT_READ, PROT_WRITE } from '../../lib/model/process.ts';
import { Type1ContainerModel, Type1GroupModel, type GroupIommufdBinding } from '../../lib/model/type1.ts';
import { iommufdMsiPlatform, type1PlatformFrom } from '../../lib/model/type1-platform.ts';
import * as U from '../../lib/uapi/index.ts';

const EBADF = 9, EBUSY = 16, ENODEV = 19, EINVAL = 22;
const RW = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
const VA = 0x7f00_0000_0000n;
const PAGES = 16n;
const SIZE = PAGES * 4096n;
const IOVA = 0x100_0000n;
const EDU = '0000:00:03.0';

/** The viommu VM's platform (as in model-type1.test.ts). */
const PLATFORM = type1PlatformFrom({
  reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n',
  intelCap: 'd2008c22260286\n',
  intelEcap: 'f00f4a\n',
  cmdline: 'console=ttyS0 intel_iommu=on',
  dmesg: 'DMAR-IR: Enabled IRQ remapping in xapic mode\n',
  allowUnsafeInterrupts: 'N\n',
  dmaEntryLimit: '65535\n',
});

function processWithMemory(): ModelProcess {
  const proc = new ModelProcess();
  proc.memory.map(VA, SIZE, PROT_READ | PROT_WRITE, true);
  return proc;
}

describe('model.vfio-device', () => {
  it('VFIO_GROUP_GET_DEVICE_FD: ENODEV for a name not in the group, EINVAL without a container or before SET_IOMMU', () => {
    const proc = processWithMemory();
    const g = new Type1GroupModel(3, PLATFORM, [EDU]);
    expect(g.getDeviceFd(EDU).errno).to.equal(EINVAL);
    const c = new Type1ContainerModel(proc);
    expect(g.setContainer(c).errno).to.equal(0);
    expect(g.getDeviceFd('0000:00:04.0').errno).to.equal(ENODEV);
    expect(g.getDeviceFd(EDU).errno).to.equal(EINVAL);
    expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
    expect(g.getDeviceFd(EDU).errno).to.equal(0);
  });

  it('type1: an open device keeps the container (UNSET_CONTAINER is EBUSY, a group close waits for the device)', () => {
    const proc = processWithMemory();
    const c = new Type1ContainerModel(proc);
    const g = new Type1GroupModel(3, PLATFORM, [EDU]);
    expect(g.setContainer(c).errno).to.equal(0);
    expect(c.setIommu(U.VFIO_TYPE1v2_IOMMU).errno).to.equal(0);
    expect(c.mapDma({ flags: RW, vaddr: VA, iova: IOVA, size: SIZE }).errno).to.equal(0);
    expect(proc.mmLockedVm).to.equal(PAGES);
    const { deviceFd } = g.getDeviceFd(EDU);
    expect(g.unsetContainer().errno).to.equal(EBUSY);
    g.close();
    expect(proc.mmLockedVm, 'the group file is held by the device').to.equal(PAGES);
    expect(g.closeDevice(deviceFd).errno).to.equal(0);
    expect(proc.mmLockedVm, 'the last close released the group: its detach unpinned').to.equal(0n);
    expect(g.closeDevice(deviceFd).errno).to.equal(EBADF);
  });

  it('iommufd compat: the first open attaches to the compat IOAS and pins, the last close detaches and unpins', () => {
    const proc = processWithMemory();
    proc.credentials.ipcLock = false; // so the MAP is ACCOUNT_USER
    const ictx = new IommufdModel(proc);
    const g = new Type1GroupModel(3, PLATFORM, [EDU]);
    const binding: GroupIommufdBinding = {
      bindDevice: () => ictx.attachHardwareDevice(iommufdDomainSpec(PLATFORM), ictx.compatIoas()?.id ?? null, iommufdMsiPlatform(PLATFORM)),
      unbindDevice: (devId) => void ictx.detachHardwareDevice(devId),
    };
    expect(g.setContainer('iommufd', binding).errno).to.equal(0);
    expect(ictx.vfioGroupAttached().errno).to.equal(0);
    expect(ictx.compat.mapDma({ flags: RW, vaddr: VA, iova: IOVA, size: SIZE }).errno).to.equal(0);
    expect(proc.mmPinnedVm, 'no domain on the compat IOAS yet').to.equal(0n);
    const first = g.getDeviceFd(EDU);
    expect(first.errno).to.equal(0);
    expect(proc.mmPinnedVm).to.equal(PAGES);
    expect(proc.userLockedVm, 'a /dev/iommu context accounts per user').to.equal(PAGES);
    expect(proc.mmLockedVm).to.equal(0n);
    const second = g.getDeviceFd(EDU);
    expect(g.closeDevice(second.deviceFd).errno).to.equal(0);
    expect(proc.mmPinnedVm, 'a later open and its close change nothing').to.equal(PAGES);
    expect(g.unsetContainer().errno, 'an iommufd is let go with the device open').to.equal(0);
    expect(proc.mmPinnedVm, 'the device stays bound and attached').to.equal(PAGES);
    // Found by the viommu fuzz (seed 1 on 6.12): the bound device still owns the group's DMA.
    const type1 = new Type1ContainerModel(proc);
    expect(g.setContainer(type1).errno, 'a type1 container cannot claim the group (iommu_group_claim_dma_owner)').to.equal(1);
    expect(g.closeDevice(first.deviceFd).errno).to.equal(0);
    expect(g.setContainer(type1).errno, 'after the last close it can').to.equal(0);
    expect(g.unsetContainer().errno).to.equal(0);
    expect(proc.mmPinnedVm).to.equal(0n);
    expect(proc.userLockedVm).to.equal(0n);
  });
});
