// The selftest mirror's support code, without a kernel: the checks that must
// be able to fail, and the probes' readers of /proc and /sys.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { hardwareIommuOwningMockBus, hugetlbPool } from '../../lib/kernel/features.ts';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { ModelProcess } from '../../lib/model/process.ts';
import * as U from '../../lib/uapi/index.ts';
import { checkHwInfo, getHwInfo, IOMMU_HW_INFO_TYPE_DEFAULT, type Iommufd } from '../support/iommufd-utils.ts';
import { mmapHugetlb, mockDomainUnavailable } from '../support/kernel.ts';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_SHARED } from '../../lib/sys/index.ts';

const EINVAL = 22;
const INFO = U.iommu_test_hw_info.sizeof; // 8: { flags = 0, test_reg = 0xdeadbeef }

/** A /dev/iommu stand-in whose IOMMU_GET_HW_INFO writes the mock's info and, if `clearsTail`, zeroes the rest as device.c's clear_user() does. */
function hwInfoFd(clearsTail: boolean): Iommufd {
  return {
    getHwInfo({ data }: { data: Uint8Array }) {
      const info = U.iommu_test_hw_info.encode({ flags: 0, test_reg: U.IOMMU_HW_INFO_SELFTEST_REGVAL });
      data.set(info.subarray(0, Math.min(data.byteLength, INFO)));
      if (clearsTail) data.fill(0, INFO);
      return { errno: 0, dataLen: INFO, dataType: U.IOMMU_HW_INFO_TYPE_SELFTEST, capabilities: 0n, maxPasidLog2: 0, data };
    },
  } as unknown as Iommufd;
}

describe('selftest mirror: _test_cmd_get_hw_info checks', () => {
  it('fails when the kernel leaves the trailing bytes of a larger buffer as they were (the buffer starts as 0xff)', () => {
    expect(() => getHwInfo({ fd: hwInfoFd(false) }, 1, IOMMU_HW_INFO_TYPE_DEFAULT, INFO + 8)).to.throw(/trailing bytes \[8, 16\)/);
  });

  it('passes when the kernel zeroes them, and with an exact or short buffer', () => {
    for (const len of [0, 4, INFO, INFO + 8]) getHwInfo({ fd: hwInfoFd(true) }, 1, IOMMU_HW_INFO_TYPE_DEFAULT, len);
    // An exact buffer has no tail: a kernel that clears nothing passes.
    getHwInfo({ fd: hwInfoFd(false) }, 1, IOMMU_HW_INFO_TYPE_DEFAULT, INFO);
  });

  it('fails on a wrong test_reg, flags, data_len or data type', () => {
    const good = () => ({ dataLen: INFO, dataType: U.IOMMU_HW_INFO_TYPE_SELFTEST, data: U.iommu_test_hw_info.encode({ flags: 0, test_reg: U.IOMMU_HW_INFO_SELFTEST_REGVAL }) });
    checkHwInfo(good(), INFO);
    expect(() => checkHwInfo({ ...good(), data: U.iommu_test_hw_info.encode({ flags: 0, test_reg: 1 }) }, INFO)).to.throw(/test_reg/);
    expect(() => checkHwInfo({ ...good(), data: U.iommu_test_hw_info.encode({ flags: 1, test_reg: U.IOMMU_HW_INFO_SELFTEST_REGVAL }) }, INFO)).to.throw(/flags/);
    expect(() => checkHwInfo({ ...good(), dataLen: INFO + 4 }, INFO)).to.throw(/data_len/);
    expect(() => checkHwInfo({ ...good(), dataType: 0 }, INFO)).to.throw(/out_data_type/);
  });

  it('the model writes into the caller buffer and clears its tail (device.c iommufd_get_hw_info: clear_user)', () => {
    const fd = new IommufdModel(new ModelProcess());
    const ioasId = fd.ioasAlloc().ioasId;
    const mock = fd.testMockDomain({ ptId: ioasId });
    expect(mock.errno).to.equal(0);
    const data = new Uint8Array(INFO + 8).fill(0xff);
    const r = fd.getHwInfo({ devId: mock.idevId, data });
    expect(r.errno).to.equal(0);
    expect(r.dataLen).to.equal(INFO);
    expect([...data]).to.deep.equal([0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0, 0, 0, 0, 0]);
    // A short buffer gets only its own bytes: nothing is written past it.
    const short = new Uint8Array(8).fill(0xff);
    expect(fd.getHwInfo({ devId: mock.idevId, data: short.subarray(0, 4) }).errno).to.equal(0);
    expect([...short]).to.deep.equal([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  });
});

describe('selftest mirror: when mock domains are unavailable', () => {
  const features = { ioctls: { IOMMU_TEST_CMD: true }, mockDomain: false, mockDomainErrno: EINVAL };

  it('a failing mock domain with no named cause is a failure, not a skip', () => {
    expect(() => mockDomainUnavailable(features)).to.throw(/IOMMU_TEST_OP_MOCK_DOMAIN fails with EINVAL and no hardware IOMMU driver owns the mock bus/);
  });

  it('skips with the probed cause, or the missing CONFIG_IOMMUFD_TEST; null when mock domains work', () => {
    expect(mockDomainUnavailable({ ...features, mockDomainBlocker: 'intel-iommu is active (/sys/class/iommu/dmar0)' })).to.equal('intel-iommu is active (/sys/class/iommu/dmar0)');
    expect(mockDomainUnavailable({ ...features, ioctls: {} })).to.match(/CONFIG_IOMMUFD_TEST/);
    expect(mockDomainUnavailable({ ...features, mockDomain: true, mockDomainErrno: 0 })).to.equal(null);
  });

  it('finds an intel-iommu or amd-iommu unit in /sys/class/iommu by its attribute group', () => {
    const dir = mkdtempSync(join(tmpdir(), 'class-iommu-'));
    try {
      mkdirSync(join(dir, 'iommufd_selftest_iommu.0'));
      expect(hardwareIommuOwningMockBus(dir)).to.equal(undefined);
      mkdirSync(join(dir, 'dmar0', 'intel-iommu'), { recursive: true });
      expect(hardwareIommuOwningMockBus(dir)).to.equal(`intel-iommu is active (${dir}/dmar0)`);
      expect(hardwareIommuOwningMockBus(join(dir, 'missing'))).to.equal(undefined);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('selftest mirror: the huge page pool', () => {
  it('reads HugePages_Total, HugePages_Free and Hugepagesize from /proc/meminfo', () => {
    const meminfo = 'MemTotal:        2014396 kB\nHugePages_Total:      72\nHugePages_Free:       8\nHugePages_Rsvd:        0\nHugepagesize:       2048 kB\n';
    expect(hugetlbPool(meminfo)).to.deep.equal({ total: 72, free: 8, pageSize: 2 * 1024 * 1024 });
    expect(hugetlbPool('MemTotal:        2014396 kB\n')).to.deep.equal({ total: 0, free: 0, pageSize: 0 });
  });

  it('a MAP_HUGETLB mapping that cannot be had is an error naming the pool, not a skip', () => {
    // 1 TiB of huge pages: more than any pool holds, so mmap fails on every machine.
    expect(() => mmapHugetlb(2 ** 40, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB)).to.throw(/MAP_HUGETLB of 1099511627776 bytes failed .*HugePages_Free \d+ of HugePages_Total \d+/);
  });
});
