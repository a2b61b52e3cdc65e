// ioctl numbers: the _IO* encoders, decoders, and every iommufd/VFIO request
// number against values read off a real system (the layout check confirms
// them against the headers too).
import { expect } from 'chai';
import * as uapi from '../../lib/uapi/index.ts';
import { _IO, _IOC, _IOC_DIR, _IOC_NR, _IOC_READ, _IOC_SIZE, _IOC_TYPE, _IOC_WRITE, _IOR, _IOW, _IOWR, iommu_ioas_map } from '../../lib/uapi/index.ts';

// Every iommufd and VFIO request is _IO(';', nr): no direction, no size.
const KNOWN_REQUESTS: Record<string, number> = {
  IOMMU_DESTROY: 0x3b80,
  IOMMU_IOAS_ALLOC: 0x3b81,
  IOMMU_IOAS_ALLOW_IOVAS: 0x3b82,
  IOMMU_IOAS_COPY: 0x3b83,
  IOMMU_IOAS_IOVA_RANGES: 0x3b84,
  IOMMU_IOAS_MAP: 0x3b85,
  IOMMU_IOAS_UNMAP: 0x3b86,
  IOMMU_OPTION: 0x3b87,
  IOMMU_VFIO_IOAS: 0x3b88,
  IOMMU_HWPT_ALLOC: 0x3b89,
  IOMMU_GET_HW_INFO: 0x3b8a,
  IOMMU_HWPT_SET_DIRTY_TRACKING: 0x3b8b,
  IOMMU_HWPT_GET_DIRTY_BITMAP: 0x3b8c,
  IOMMU_HWPT_INVALIDATE: 0x3b8d,
  IOMMU_FAULT_QUEUE_ALLOC: 0x3b8e,
  IOMMU_TEST_CMD: 0x3ba0,
  VFIO_GET_API_VERSION: 0x3b64,
  VFIO_CHECK_EXTENSION: 0x3b65,
  VFIO_SET_IOMMU: 0x3b66,
  VFIO_GROUP_GET_STATUS: 0x3b67,
  VFIO_GROUP_SET_CONTAINER: 0x3b68,
  VFIO_GROUP_UNSET_CONTAINER: 0x3b69,
  VFIO_GROUP_GET_DEVICE_FD: 0x3b6a,
  VFIO_DEVICE_GET_INFO: 0x3b6b,
  VFIO_IOMMU_GET_INFO: 0x3b70,
  VFIO_IOMMU_MAP_DMA: 0x3b71,
  VFIO_IOMMU_UNMAP_DMA: 0x3b72,
  VFIO_IOMMU_ENABLE: 0x3b73,
  VFIO_IOMMU_DISABLE: 0x3b74,
  VFIO_IOMMU_DIRTY_PAGES: 0x3b75,
  VFIO_DEVICE_BIND_IOMMUFD: 0x3b76,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT: 0x3b77,
  VFIO_DEVICE_DETACH_IOMMUFD_PT: 0x3b78,
};

describe('uapi: ioctl numbers', () => {
  describe('iommufd and VFIO requests', () => {
    for (const [name, value] of Object.entries(KNOWN_REQUESTS)) {
      it(`${name} = 0x${value.toString(16)}`, () => {
        expect((uapi as Record<string, unknown>)[name]).to.equal(value);
      });
    }
  });

  describe('_IOC encoders on well-known Linux ioctls', () => {
    it('_IOR(0x12, 114, size_t) is BLKGETSIZE64 0x80081272 (unsigned, not negative)', () => {
      expect(_IOR(0x12, 114, 8)).to.equal(0x80081272);
    });
    it("_IOR('f', 1, long) is FS_IOC_GETFLAGS 0x80086601 and _IOW('f', 2, long) FS_IOC_SETFLAGS 0x40086602", () => {
      expect(_IOR('f', 1, 8)).to.equal(0x80086601);
      expect(_IOW('f', 2, 8)).to.equal(0x40086602);
    });
    it('_IOWR(KVMIO, 5, struct kvm_cpuid2) is KVM_GET_SUPPORTED_CPUID 0xc008ae05', () => {
      expect(_IOWR(0xae, 0x05, 8)).to.equal(0xc008ae05);
    });
    it('_IO(KVMIO, 1) is KVM_CREATE_VM 0xae01', () => {
      expect(_IO(0xae, 0x01)).to.equal(0xae01);
    });
    it('takes a layout as the size, like C sizeof(type)', () => {
      expect(_IOWR(';', 0x85, iommu_ioas_map)).to.equal(_IOWR(';', 0x85, 40));
    });
    it('_IOC with both directions equals _IOWR', () => {
      expect(_IOC(_IOC_READ | _IOC_WRITE, 'x', 7, 100)).to.equal(_IOWR('x', 7, 100));
    });
  });

  describe('decoders', () => {
    it('take KVM_SET_USER_MEMORY_REGION 0x4020ae46 apart: write, KVMIO, 0x46, 32 bytes', () => {
      const r = 0x4020ae46;
      expect([_IOC_DIR(r), _IOC_TYPE(r), _IOC_NR(r), _IOC_SIZE(r)]).to.deep.equal([_IOC_WRITE, 0xae, 0x46, 32]);
    });
    it('invert the encoder at the extremes of every field', () => {
      const r = _IOC(3, 0xff, 0xff, (1 << 14) - 1);
      expect(r).to.equal(0xffffffff);
      expect([_IOC_DIR(r), _IOC_TYPE(r), _IOC_NR(r), _IOC_SIZE(r)]).to.deep.equal([3, 0xff, 0xff, (1 << 14) - 1]);
    });
    it('read IOMMU_TEST_CMD as nr 0x80 + 32 of type ;', () => {
      expect(_IOC_TYPE(uapi.IOMMU_TEST_CMD)).to.equal(';'.charCodeAt(0));
      expect(_IOC_NR(uapi.IOMMU_TEST_CMD)).to.equal(0xa0);
      expect(_IOC_DIR(uapi.IOMMU_TEST_CMD)).to.equal(0);
      expect(_IOC_SIZE(uapi.IOMMU_TEST_CMD)).to.equal(0);
    });
  });

  describe('argument checks', () => {
    it('rejects fields that do not fit their bits', () => {
      expect(() => _IO(';', 256)).to.throw(RangeError, /nr/);
      expect(() => _IOR(';', 1, 1 << 14)).to.throw(RangeError, /size/);
      expect(() => _IOC(4, ';', 1, 0)).to.throw(RangeError, /dir/);
      expect(() => _IO(0x100, 1)).to.throw(RangeError, /type/);
      expect(() => _IO(';', -1)).to.throw(RangeError);
      expect(() => _IO(';', 1.5)).to.throw(RangeError);
    });
    it('wants a one-character type string', () => {
      expect(() => _IO('ab', 1)).to.throw(RangeError, /one character/);
      expect(() => _IO('', 1)).to.throw(RangeError, /one character/);
    });
  });
});
