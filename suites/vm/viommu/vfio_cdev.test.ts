// The VFIO device cdev's 7.x additions on QEMU's edu device bound to
// vfio-pci: the PASID flags (vfio.h VFIO_DEVICE_ATTACH_PASID,
// VFIO_DEVICE_DETACH_PASID), where the feature probe (vfioCdevFeatures, a
// detach) and an attach must agree, and VFIO_DEVICE_FEATURE_DMA_BUF. Both
// need the device bound to an iommufd, which a platform without MSI isolation
// refuses (EPERM) unless iommufd.allow_unsafe_interrupts is set: that refusal
// is checked first, predicted from the platform's facts.
import { expect } from 'chai';
import { existsSync, readdirSync } from 'node:fs';
import { bindVfioPciGroup, findPciDevices, IommuFd, QEMU_EDU, VfioDevice, vfioCdevFeatures } from '../../../lib/kernel/index.ts';
import { readIommufdAllowUnsafeInterrupts, readType1Platform } from '../../../lib/model/type1-platform.ts';
import { requireIommufd } from '../../support/kernel.ts';
import { skipBecause } from '../../support/skip.ts';

const EPERM = 1;
const EINVAL = 22;
const ENOENT = 2;
const EOPNOTSUPP = 95;
const ENOTTY = 25;

describe('vfio_cdev', () => {
  let cdev: string;
  /** Why BIND_IOMMUFD is refused here (no MSI isolation, unsafe interrupts not allowed), or null. */
  let bindRefused: string | null = null;

  before(function () {
    requireIommufd(this);
    const [edu] = findPciDevices(QEMU_EDU.vendor, QEMU_EDU.device);
    if (!edu) skipBecause(this, 'no QEMU edu device (PCI 1234:11e8): run in the viommu profile');
    const bound = bindVfioPciGroup(edu.bdf);
    if (bound.why !== undefined) expect.fail(`binding the edu device to vfio-pci: ${bound.why}`);
    // iommufd_device_bind: no isolated MSI and !allow_unsafe_interrupts is EPERM (drivers/iommu/iommufd/device.c).
    if (!readType1Platform(bound.groupId).interruptRemapping && !readIommufdAllowUnsafeInterrupts()) {
      bindRefused = `${edu.bdf}'s MSIs are not isolated (no interrupt remapping in the kernel log) and iommufd.allow_unsafe_interrupts is off: BIND_IOMMUFD is EPERM`;
    }
    // drivers/vfio/vfio_main.c names the cdev under the device: vfio-dev/vfioN.
    const dir = `/sys/bus/pci/devices/${edu.bdf}/vfio-dev`;
    if (!existsSync(dir)) skipBecause(this, 'kernel lacks the VFIO device cdev (CONFIG_VFIO_DEVICE_CDEV)');
    cdev = `/dev/vfio/devices/${readdirSync(dir)[0]}`;
  });

  it('VFIO_DEVICE_BIND_IOMMUFD succeeds where MSIs are isolated or unsafe interrupts allowed, else EPERM', () => {
    const { device } = VfioDevice.openCdev(cdev);
    const { iommufd } = IommuFd.open();
    try {
      expect(device!.bindIommufd(iommufd!.fd).errno).to.equal(bindRefused ? EPERM : 0);
    } finally {
      device?.close();
      iommufd?.close();
    }
  });

  it('the probe and VFIO_DEVICE_ATTACH_IOMMUFD_PT agree on VFIO_DEVICE_ATTACH_PASID', function () {
    if (bindRefused) skipBecause(this, bindRefused);
    const probed = vfioCdevFeatures();
    expect(probed, 'vfioCdevFeatures() with a vfio-pci cdev present').to.not.equal(null);
    console.log(`      ${probed!.device}: PASID flags ${probed!.pasidFlags}, driver PASID ops ${probed!.pasidDriver}`);
    const { device } = VfioDevice.openCdev(cdev);
    const { iommufd } = IommuFd.open();
    try {
      expect(device!.bindIommufd(iommufd!.fd).errno).to.equal(0);
      // An unknown flag is EINVAL; a known one with a driver lacking pasid_attach_ioas EOPNOTSUPP;
      // else the PASID attach looks the pt_id up (iommufd_device_change_pt): ENOENT.
      const expected = !probed!.pasidFlags ? EINVAL : !probed!.pasidDriver ? EOPNOTSUPP : ENOENT;
      expect(device!.attachPasidPt(1, 0x7fffffff).errno).to.equal(expected);
    } finally {
      device?.close();
      iommufd?.close();
    }
  });

  it('VFIO_DEVICE_FEATURE_DMA_BUF: the probe and a GET with no range agree', function () {
    if (bindRefused) skipBecause(this, bindRefused);
    const probed = vfioCdevFeatures();
    expect(probed, 'vfioCdevFeatures() with a vfio-pci cdev present').to.not.equal(null);
    console.log(`      ${probed!.device}: DMA_BUF PROBE errno ${probed!.dmaBufErrno}`);
    expect([0, ENOTTY, EOPNOTSUPP], 'the PROBE answer').to.include(probed!.dmaBufErrno);
    const { device } = VfioDevice.openCdev(cdev);
    const { iommufd } = IommuFd.open();
    try {
      expect(device!.bindIommufd(iommufd!.fd).errno).to.equal(0);
      // vfio_pci_core_feature_dma_buf: nr_ranges 0 is EINVAL once the feature is offered; otherwise
      // the GET fails as the PROBE did (ENOTTY: unknown feature; EOPNOTSUPP: no get_dmabuf_phys).
      const r = device!.getDmaBuf({ regionIndex: 0, openFlags: 0, ranges: [] });
      expect(r.errno).to.equal(probed!.dmaBuf ? EINVAL : probed!.dmaBufErrno);
    } finally {
      device?.close();
      iommufd?.close();
    }
  });
});
