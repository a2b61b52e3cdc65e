// The VFIO device cdev's 7.x PASID flags (vfio.h VFIO_DEVICE_ATTACH_PASID,
// VFIO_DEVICE_DETACH_PASID) on QEMU's edu device bound to vfio-pci: the
// feature probe (vfioCdevPasid, a detach) and an attach must agree.
import { expect } from 'chai';
import { existsSync, readdirSync } from 'node:fs';
import { bindVfioPci, findPciDevices, IommuFd, QEMU_EDU, VfioDevice, vfioCdevPasid } from '../../../lib/kernel/index.ts';
import { requireIommufd } from '../../support/kernel.ts';
import { skipBecause } from '../../support/skip.ts';

const EINVAL = 22;
const ENOENT = 2;
const EOPNOTSUPP = 95;

describe('vfio_cdev.pasid', () => {
  let cdev: string;

  before(function () {
    requireIommufd(this);
    const [edu] = findPciDevices(QEMU_EDU.vendor, QEMU_EDU.device);
    if (!edu) skipBecause(this, 'no QEMU edu device (PCI 1234:11e8): run in the viommu profile');
    expect(bindVfioPci(edu.bdf), 'binding the edu device to vfio-pci').to.equal(null);
    // drivers/vfio/vfio_main.c names the cdev under the device: vfio-dev/vfioN.
    const dir = `/sys/bus/pci/devices/${edu.bdf}/vfio-dev`;
    if (!existsSync(dir)) skipBecause(this, 'kernel lacks the VFIO device cdev (CONFIG_VFIO_DEVICE_CDEV)');
    cdev = `/dev/vfio/devices/${readdirSync(dir)[0]}`;
  });

  it('the probe and VFIO_DEVICE_ATTACH_IOMMUFD_PT agree on VFIO_DEVICE_ATTACH_PASID', function () {
    const probed = vfioCdevPasid();
    expect(probed, 'vfioCdevPasid() with a vfio-pci cdev present').to.not.equal(null);
    console.log(`      ${probed!.device}: PASID flags ${probed!.flags}, driver PASID ops ${probed!.driver}`);
    const { device } = VfioDevice.openCdev(cdev);
    const { iommufd } = IommuFd.open();
    try {
      expect(device!.bindIommufd(iommufd!.fd).errno).to.equal(0);
      // An unknown flag is EINVAL; a known one with a driver lacking pasid_attach_ioas EOPNOTSUPP;
      // else the PASID attach looks the pt_id up (iommufd_device_change_pt): ENOENT.
      const expected = !probed!.flags ? EINVAL : !probed!.driver ? EOPNOTSUPP : ENOENT;
      expect(device!.attachPasidPt(1, 0x7fffffff).errno).to.equal(expected);
    } finally {
      device?.close();
      iommufd?.close();
    }
  });
});
