// The feature probes (lib/kernel/features.ts) on the running kernel: what
// each says, printed and written to the results folder (features.json), and
// a check that the way they decide can tell a missing ioctl or test op from a
// present one on this very kernel (an unknown number is ENOTTY / EOPNOTSUPP).
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IommuFd, kernelFeatures, kernelRelease, TEST_OPS, vfioCdevFeatures } from '../../../lib/kernel/index.ts';
import * as U from '../../../lib/uapi/index.ts';
import { requireIommufd } from '../../support/kernel.ts';
import { skipBecause } from '../../support/skip.ts';

const ENOTTY = 25;
const EOPNOTSUPP = 95;

function onOff(record: Record<string, boolean>): string {
  const names = (v: boolean) => Object.keys(record).filter((k) => record[k] === v);
  return `yes: ${names(true).join(' ') || '-'}; no: ${names(false).join(' ') || '-'}`;
}

describe('features.probes', () => {
  it('reports every probe (console and features.json)', function () {
    const f = kernelFeatures();
    console.log(`      kernel ${kernelRelease()}`);
    console.log(`      ioctls: ${onOff(f.ioctls)}`);
    console.log(`      test ops: ${onOff(f.testOps)}`);
    console.log(`      hwpt alloc flags: ${onOff(f.hwptAllocFlags)}; mock device flags: ${onOff(f.mockDevFlags)}; hw_info input type: ${f.hwInfoInputType}`);
    console.log(`      changes: ${onOff(f.changes)}`);
    const cdev = vfioCdevFeatures();
    console.log(`      VFIO cdev: ${cdev ? `${cdev.device}: PASID flags ${cdev.pasidFlags}, driver PASID ops ${cdev.pasidDriver}, DMA_BUF ${cdev.dmaBuf} (errno ${cdev.dmaBufErrno})` : 'none to ask (the viommu profile binds one later)'}`);
    const out = process.env.IOMMUFD_CONFORMANCE_RESULTS;
    if (out) writeFileSync(join(out, 'features.json'), `${JSON.stringify({ kernel: kernelRelease(), ...f, vfioCdevFeatures: cdev }, null, 2)}\n`);
    // Every ioctl of 7.2's header and every test op is probed, present or not.
    for (const name of ['IOMMU_DESTROY', 'IOMMU_IOAS_MAP_FILE', 'IOMMU_VIOMMU_ALLOC', 'IOMMU_VDEVICE_ALLOC', 'IOMMU_IOAS_CHANGE_PROCESS', 'IOMMU_VEVENTQ_ALLOC', 'IOMMU_HW_QUEUE_ALLOC', 'IOMMU_TEST_CMD']) {
      if (f.iommufd) expect(f.ioctls, name).to.have.property(name).that.is.a('boolean');
    }
    expect(Object.keys(f.testOps)).to.have.members(Object.keys(TEST_OPS));
    if (!f.iommufd) skipBecause(this, `no iommufd to probe: ${f.iommufdError}`);
  });

  it('tells an unknown ioctl number and test op from known ones, as the probes decide', function () {
    const f = requireIommufd(this);
    expect(f.ioctls.IOMMU_DESTROY, 'IOMMU_DESTROY (6.2)').to.equal(true);
    const { iommufd } = IommuFd.open();
    try {
      // 0xff is no iommufd command: main.c's iommufd_fops_ioctl answers ENOTTY.
      expect(iommufd!.ioctl(U._IO(U.IOMMUFD_TYPE, 0xff), new Uint8Array(new Uint32Array([4]).buffer)).errno).to.equal(ENOTTY);
      if (f.ioctls.IOMMU_TEST_CMD) expect(iommufd!.testCmd(0xffff, 0).errno, 'an unknown test op').to.equal(EOPNOTSUPP);
    } finally {
      iommufd!.close();
    }
  });
});
