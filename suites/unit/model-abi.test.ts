// The model's system calls at the ABI (lib/model/iommufd/main.ts and its
// handlers): copy_struct_from_user's size rules once for every ioctl, and
// the bytes written back exactly where and when the kernel writes them.
import { expect } from 'chai';
import { ModelSysCore } from '../../lib/lockstep/index.ts';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { BASELINE_BEHAVIOUR, type KernelBehaviour } from '../../lib/model/kernel-behaviour.ts';
import { ModelProcess } from '../../lib/model/process.ts';
import { ModelSyscalls } from '../../lib/model/syscalls.ts';
import { coreSys } from '../../lib/sys/index.ts';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';
import * as U from '../../lib/uapi/index.ts';

const EINVAL = 22;
const E2BIG = 7;
const EFAULT = 14;
const ENOTTY = 25;
const EMSGSIZE = 90;
const EOPNOTSUPP = 95;

/** A model of /dev/iommu; `behaviour`: a later kernel's switches (default 6.12's). */
function modelFd(behaviour: Readonly<KernelBehaviour> = BASELINE_BEHAVIOUR) {
  const sys = new ModelSysCore(new ModelSyscalls(new ModelProcess(), { iommufd: (p) => new IommufdModel(p, undefined, behaviour) }), { unknownFaults: true });
  const fd = sys.open('/dev/iommu');
  return { sys, fd, ioctl: (request: number, arg: Uint8Array | null) => sys.ioctl(fd, request, arg) };
}

describe('model ABI (iommufd_fops_ioctl)', () => {
  // Buffers' addresses come from the addon.
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  it('applies copy_struct_from_user to every ioctl of the table', () => {
    // Every switch on: the rows of a later kernel's ioctls (IOMMU_IOAS_MAP_FILE) are there.
    const { ioctl } = modelFd({ ...BASELINE_BEHAVIOUR, ioasMapFile: true, testDmabuf: true, viommu: true, ioasChangeProcess: true });
    for (const op of U.IOMMUFD_IOCTL_OPS) {
      const short = op.struct.encode({}, { length: op.minSize - 1 });
      expect(ioctl(op.request, short), `${op.ioctl} one byte short`).to.equal(-EINVAL);
      const tail = op.struct.encode({}, { tail: [1] });
      expect(ioctl(op.request, tail), `${op.ioctl} with a non-zero tail`).to.equal(-E2BIG);
    }
    expect(ioctl(U.IOMMU_DESTROY, null)).to.equal(-EFAULT);
    expect(ioctl(U._IO(U.IOMMUFD_TYPE, U.IOMMUFD_CMD_BASE + 0x18), U.iommu_destroy.encode({}))).to.equal(-ENOTTY);
    expect(ioctl(U._IO(U.IOMMUFD_TYPE, U.IOMMUFD_CMD_BASE - 1), U.iommu_destroy.encode({}))).to.equal(-ENOTTY);
  });

  it('has empty slots (ENOTTY) and unknown test ops (EOPNOTSUPP) for the vIOMMU ioctls on a kernel without them (6.12)', () => {
    const { ioctl } = modelFd();
    for (const op of U.IOMMUFD_VIOMMU_IOCTL_OPS) expect(ioctl(op.request, op.struct.encode({})), op.ioctl).to.equal(-ENOTTY);
    for (const testOp of [U.IOMMU_TEST_OP_DEV_CHECK_CACHE, U.IOMMU_TEST_OP_TRIGGER_VEVENT]) {
      expect(ioctl(U.IOMMU_TEST_CMD, U.iommu_test_cmd.encode({ op: testOp, id: 1 })), `test op ${testOp}`).to.equal(-EOPNOTSUPP);
    }
  });

  it('copies back no more than the caller gave (min(user_size, sizeof))', () => {
    const { ioctl } = modelFd();
    const bytes = U.iommu_ioas_alloc.encode({}, { tail: [0, 0, 0, 0] });
    expect(ioctl(U.IOMMU_IOAS_ALLOC, bytes)).to.equal(0);
    expect(U.iommu_ioas_alloc.read(bytes, 'out_ioas_id')).to.equal(1);
    expect([...bytes.subarray(U.iommu_ioas_alloc.sizeof)]).to.deep.equal([0, 0, 0, 0]);
  });

  it('copies IOMMU_IOAS_IOVA_RANGES back before failing with EMSGSIZE', () => {
    const { sys, ioctl } = modelFd();
    const a = U.iommu_ioas_alloc.encode({});
    ioctl(U.IOMMU_IOAS_ALLOC, a);
    const ioasId = U.iommu_ioas_alloc.read(a, 'out_ioas_id');
    // Two holes around a reserved range.
    const add = U.iommu_test_cmd.encode({ op: U.IOMMU_TEST_OP_ADD_RESERVED, id: ioasId, add_reserved: { start: 0x10000, length: 0x1000 } });
    expect(ioctl(U.IOMMU_TEST_CMD, add)).to.equal(0);
    const ranges = new Uint8Array(16);
    const cmd = U.iommu_ioas_iova_ranges.encode({ ioas_id: ioasId, num_iovas: 1, allowed_iovas: sys.addressOf(ranges) });
    expect(ioctl(U.IOMMU_IOAS_IOVA_RANGES, cmd)).to.equal(-EMSGSIZE);
    expect(U.iommu_ioas_iova_ranges.read(cmd, 'num_iovas')).to.equal(2);
    expect(U.iommu_iova_range.decode(ranges)).to.deep.equal({ start: 0n, last: 0xffffn });
  });

  it('copies IOMMU_HWPT_INVALIDATE entry_num back on a failure too', () => {
    const { ioctl } = modelFd();
    const cmd = U.iommu_hwpt_invalidate.encode({ hwpt_id: 1, entry_num: 5, __reserved: 1 });
    expect(ioctl(U.IOMMU_HWPT_INVALIDATE, cmd)).to.equal(-EOPNOTSUPP);
    expect(U.iommu_hwpt_invalidate.read(cmd, 'entry_num')).to.equal(0);
  });

  it('answers the VFIO container ioctls of the compat for numbers outside the table', () => {
    const { ioctl, sys, fd } = modelFd();
    expect(ioctl(U.VFIO_GET_API_VERSION, null)).to.equal(U.VFIO_API_VERSION);
    expect(sys.ioctl(fd, U.VFIO_CHECK_EXTENSION, U.VFIO_TYPE1v2_IOMMU)).to.equal(1);
    expect(ioctl(U.VFIO_IOMMU_MAP_DMA, U.vfio_iommu_type1_dma_map.encode({ flags: 3, size: 4096 }))).to.equal(-19); // ENODEV: no compat IOAS
  });

  it('leaves user memory it was not told about unanswered', () => {
    const sys = new ModelSysCore(new ModelSyscalls(new ModelProcess()));
    const fd = sys.open('/dev/iommu');
    const a = U.iommu_ioas_alloc.encode({});
    sys.ioctl(fd, U.IOMMU_IOAS_ALLOC, a);
    const cmd = U.iommu_ioas_iova_ranges.encode({ ioas_id: 1, num_iovas: 1, allowed_iovas: coreSys().addressOf(new Uint8Array(16)) + 0x100000n });
    expect(() => sys.ioctl(fd, U.IOMMU_IOAS_IOVA_RANGES, cmd)).to.throw(/user pointer to memory the model was not told about/);
  });
});
