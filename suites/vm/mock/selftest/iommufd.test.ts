// tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd): a bare
// /dev/iommu. Its TEST_Fs: the ioctl framework's size and errno rules, the
// global options, and the VFIO compat ioctls before any IOAS is attached.
import { expect } from 'chai';
import * as U from '../../../../lib/uapi/index.ts';
import { requireTestOp, requireVfioCompat } from '../../../support/kernel.ts';
import { lockstep } from '../../../support/lockstep.ts';
import {
  E2BIG, EFAULT, EINVAL, ENODEV, ENOENT, ENOTTY, PAGE_SIZE,
  assertOk, expectErrno, ioasAlloc, selftestBuffer, teardownIommufd, type Iommufd,
} from '../../../support/iommufd-utils.ts';

describe('iommufd', () => {
  const self = {} as { fd: Iommufd };

  beforeEach(function () {
    // teardown_iommufd() checks page references with IOMMU_TEST_OP_MD_CHECK_REFS.
    requireTestOp(this, 'MD_CHECK_REFS');
    selftestBuffer();
    self.fd = lockstep().openIommufd();
  });

  afterEach(() => {
    teardownIommufd(self.fd);
  });

  it('simple_close', () => {});

  it('cmd_fail', () => {
    const cmd = U.iommu_destroy.encode({ id: 0 });

    /* object id is invalid */
    expectErrno(ENOENT, self.fd.destroy(0));
    /* Bad pointer */
    expectErrno(EFAULT, self.fd.ioctl(U.IOMMU_DESTROY, null));
    /* Unknown ioctl */
    expectErrno(ENOTTY, self.fd.ioctl(U._IO(U.IOMMUFD_TYPE, U.IOMMUFD_CMD_BASE - 1), cmd));
  });

  it('cmd_length', () => {
    // TEST_LENGTH(_struct, _ioctl, _last): struct { struct _struct cmd; uint8_t extra; }
    const testLength = (layout: U.AnyStructLayout, request: number, last: string) => {
      const name = `${layout.name}`;
      const minSize = layout.offsetEnd(last);
      const cmd = new Uint8Array(layout.sizeof + 8);
      const view = new DataView(cmd.buffer);
      const setSize = (n: number) => view.setUint32(0, n, true);
      setSize(minSize - 1);
      cmd[layout.sizeof] = 0xff; // extra = UINT8_MAX

      expectErrno(EINVAL, self.fd.ioctl(request, cmd), () => `${name} of size min_size - 1`);
      setSize(layout.sizeof + 1);
      expectErrno(E2BIG, self.fd.ioctl(request, cmd), () => `${name} of size sizeof + 1, extra non-zero`);
      setSize(layout.sizeof);
      const rc = self.fd.ioctl(request, cmd);
      setSize(layout.sizeof + 1);
      cmd[layout.sizeof] = 0;
      if (rc.errno) expectErrno(rc.errno, self.fd.ioctl(request, cmd), () => `${name} of size sizeof + 1, extra zero`);
      else assertOk(self.fd.ioctl(request, cmd), () => `${name} of size sizeof + 1, extra zero`);
    };

    testLength(U.iommu_destroy, U.IOMMU_DESTROY, 'id');
    testLength(U.iommu_hw_info, U.IOMMU_GET_HW_INFO, '__reserved');
    testLength(U.iommu_hwpt_alloc, U.IOMMU_HWPT_ALLOC, '__reserved');
    testLength(U.iommu_hwpt_invalidate, U.IOMMU_HWPT_INVALIDATE, '__reserved');
    testLength(U.iommu_ioas_alloc, U.IOMMU_IOAS_ALLOC, 'out_ioas_id');
    testLength(U.iommu_ioas_iova_ranges, U.IOMMU_IOAS_IOVA_RANGES, 'out_iova_alignment');
    testLength(U.iommu_ioas_allow_iovas, U.IOMMU_IOAS_ALLOW_IOVAS, 'allowed_iovas');
    testLength(U.iommu_ioas_map, U.IOMMU_IOAS_MAP, 'iova');
    testLength(U.iommu_ioas_copy, U.IOMMU_IOAS_COPY, 'src_iova');
    testLength(U.iommu_ioas_unmap, U.IOMMU_IOAS_UNMAP, 'length');
    testLength(U.iommu_option, U.IOMMU_OPTION, 'val64');
    testLength(U.iommu_vfio_ioas, U.IOMMU_VFIO_IOAS, '__reserved');
  });

  it('cmd_ex_fail', () => {
    // struct { struct iommu_destroy cmd; __u64 future; }
    const cmd = U.iommu_destroy.encode({ size: 16, id: 0 }, { length: 16 });
    const view = new DataView(cmd.buffer);

    /* object id is invalid and command is longer */
    expectErrno(ENOENT, self.fd.ioctl(U.IOMMU_DESTROY, cmd));
    /* future area is non-zero */
    view.setBigUint64(8, 1n, true);
    expectErrno(E2BIG, self.fd.ioctl(U.IOMMU_DESTROY, cmd));
    /* Original command "works" */
    view.setUint32(0, U.iommu_destroy.sizeof, true);
    expectErrno(ENOENT, self.fd.ioctl(U.IOMMU_DESTROY, cmd));
    /* Short command fails */
    view.setUint32(0, U.iommu_destroy.sizeof - 1, true);
    expectErrno(EINVAL, self.fd.ioctl(U.IOMMU_DESTROY, cmd));
  });

  it('global_options', () => {
    const option = (op: number, optionId: number, val64: number) => self.fd.option({ optionId, op, val64 });

    let r = assertOk(option(U.IOMMU_OPTION_OP_GET, U.IOMMU_OPTION_RLIMIT_MODE, 1));
    expect(r.val64).to.equal(0n);

    /* This requires root */
    assertOk(option(U.IOMMU_OPTION_OP_SET, U.IOMMU_OPTION_RLIMIT_MODE, 1));
    expectErrno(EINVAL, option(U.IOMMU_OPTION_OP_SET, U.IOMMU_OPTION_RLIMIT_MODE, 2));

    r = assertOk(option(U.IOMMU_OPTION_OP_GET, U.IOMMU_OPTION_RLIMIT_MODE, 2));
    expect(r.val64).to.equal(1n);

    assertOk(option(U.IOMMU_OPTION_OP_SET, U.IOMMU_OPTION_RLIMIT_MODE, 0));

    expectErrno(ENOENT, option(U.IOMMU_OPTION_OP_GET, U.IOMMU_OPTION_HUGE_PAGES, 0));
    expectErrno(ENOENT, option(U.IOMMU_OPTION_OP_SET, U.IOMMU_OPTION_HUGE_PAGES, 0));
  });

  /* VFIO compatibility IOCTLs */
  // (In iommufd.c these come after the dirty tracking fixture. Each first
  // checks that the kernel has the compat at all: CONFIG_IOMMUFD_VFIO_CONTAINER.)
  it('simple_ioctls', function () {
    requireVfioCompat(this);
    const compat = lockstep().compatOn(self.fd);
    expect(assertOk(compat.getApiVersion()).version).to.equal(U.VFIO_API_VERSION);
    expect(assertOk(compat.checkExtension(U.VFIO_TYPE1v2_IOMMU)).value).to.equal(1);
  });

  it('unmap_cmd', function () {
    requireVfioCompat(this);
    const compat = lockstep().compatOn(self.fd);
    const unmap = { iova: U.MOCK_APERTURE_START, size: PAGE_SIZE };

    expectErrno(EINVAL, compat.unmapDma({ ...unmap, argsz: 1 }));
    expectErrno(EINVAL, compat.unmapDma({ ...unmap, flags: (1 << 31) >>> 0 }));
    expectErrno(ENODEV, compat.unmapDma({ ...unmap, flags: 0 }));
  });

  it('map_cmd', function () {
    requireVfioCompat(this);
    const compat = lockstep().compatOn(self.fd);
    const map = { iova: U.MOCK_APERTURE_START, size: PAGE_SIZE, vaddr: selftestBuffer().address };

    expectErrno(EINVAL, compat.mapDma({ ...map, flags: 0, argsz: 1 }));
    expectErrno(EINVAL, compat.mapDma({ ...map, flags: (1 << 31) >>> 0 }));
    /* Requires a domain to be attached */
    expectErrno(ENODEV, compat.mapDma({ ...map, flags: U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE }));
  });

  it('info_cmd', function () {
    requireVfioCompat(this);
    const compat = lockstep().compatOn(self.fd);

    /* Invalid argsz */
    expectErrno(EINVAL, compat.getInfo({ argsz: 1, bufferSize: U.vfio_iommu_type1_info.sizeof }));
    expectErrno(ENODEV, compat.getInfo({ argsz: U.vfio_iommu_type1_info.sizeof, bufferSize: U.vfio_iommu_type1_info.sizeof }));
  });

  it('set_iommu_cmd', function () {
    requireVfioCompat(this);
    const compat = lockstep().compatOn(self.fd);

    /* Requires a domain to be attached */
    expectErrno(ENODEV, compat.setIommu(U.VFIO_TYPE1v2_IOMMU));
    expectErrno(ENODEV, compat.setIommu(U.VFIO_TYPE1_IOMMU));
  });

  it('vfio_ioas', function () {
    requireVfioCompat(this);
    /* ENODEV if there is no compat ioas */
    expectErrno(ENODEV, self.fd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_GET }));

    /* Invalid id for set */
    expectErrno(ENOENT, self.fd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_SET }));

    /* Valid id for set*/
    const ioasId = ioasAlloc(self);
    assertOk(self.fd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_SET, ioasId }));

    /* Same id comes back from get */
    expect(assertOk(self.fd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_GET })).ioasId).to.equal(ioasId);

    /* Clear works */
    assertOk(self.fd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_CLEAR }));
    expectErrno(ENODEV, self.fd.vfioIoas({ op: U.IOMMU_VFIO_IOAS_GET }));
  });
});
