// The VFIO device cdev's 7.x additions on QEMU's edu device bound to
// vfio-pci: the PASID flags (vfio.h VFIO_DEVICE_ATTACH_PASID,
// VFIO_DEVICE_DETACH_PASID), where the feature probe (vfioCdevFeatures, a
// detach) and an attach must agree, and VFIO_DEVICE_FEATURE_DMA_BUF.
import { expect } from 'chai';
import { existsSync, readdirSync } from 'node:fs';
import { IommuFd, VfioDevice, vfioCdevFeatures } from '../../../lib/kernel/index.ts';
import { requireDeviceUnderTest, requireIommufd } from '../../support/kernel.ts';
import { deviceRefusal } from '../../support/platform.ts';
import { skipBecause } from '../../support/skip.ts';

const EPERM = 1;
const EINVAL = 22;
const ENOENT = 2;
const EOPNOTSUPP = 95;
const ENOTTY = 25;

describe('vfio_cdev', () => {
  let cdev: string;
  /** Why iommufd refuses to bind the device on this platform, or null. */
  let bindRefusal: string | null = null;

  before(function () {
    requireIommufd(this);
    const device = requireDeviceUnderTest(this);
    // drivers/vfio/vfio_main.c names the cdev under the device: vfio-dev/vfioN.
    const dir = `/sys/bus/pci/devices/${device.bdf}/vfio-dev`;
    if (!existsSync(dir)) skipBecause(this, 'kernel lacks the VFIO device cdev (CONFIG_VFIO_DEVICE_CDEV)');
    cdev = `/dev/vfio/devices/${readdirSync(dir)[0]}`;
    bindRefusal = deviceRefusal(device.groupId, 'iommufd');
  });

  // iommufd_device_bind: without isolated MSI the bind is EPERM unless iommufd's allow_unsafe_interrupts
  // (the platform's contract, from /proc/interrupts and the module parameter).
  it('VFIO_DEVICE_BIND_IOMMUFD follows MSI isolation: EPERM without interrupt remapping unless allow_unsafe_interrupts', () => {
    const { device } = VfioDevice.openCdev(cdev);
    const { iommufd } = IommuFd.open();
    try {
      expect(device!.bindIommufd(iommufd!.fd).errno, bindRefusal ?? 'MSI isolated or allowed').to.equal(bindRefusal ? EPERM : 0);
    } finally {
      device?.close();
      iommufd?.close();
    }
  });

  it('the probe and VFIO_DEVICE_ATTACH_IOMMUFD_PT agree on VFIO_DEVICE_ATTACH_PASID', function () {
    if (bindRefusal) skipBecause(this, bindRefusal);
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
    if (bindRefusal) skipBecause(this, bindRefusal);
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
