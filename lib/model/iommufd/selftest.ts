// IOMMU_TEST_CMD (selftest.c:iommufd_test) at the ABI: one row per op, the
// union member it reads, and what it copies back.
import * as U from '../../uapi/index.ts';
import { EOPNOTSUPP } from '../errno.ts';
import type { KernelBehaviour } from '../kernel-behaviour.ts';
import { ModelCannotAnswer } from '../uaccess.ts';
import { field, iommufdUcmdRespond, ret, setField, type Ucmd } from './ucmd.ts';
// vIOMMU (7.x)
import { testTriggerVevent } from './eventq.ts';
import { testDevCheckCache } from './viommu.ts';

export interface TestOp {
  readonly name: string;
  /** The union member of iommu_test_cmd the op reads. */
  readonly member?: string;
  readonly execute: (ucmd: Ucmd) => number;
  /** The op's `id` is an access fd (iommufd_access_get), not an object ID. */
  readonly idIsAccessFd?: boolean;
  /** The union member that carries an fd the op makes. */
  readonly fdOut?: string;
  /** It may pin or unpin pages (VmPin, VmLck). */
  readonly accounting?: boolean;
  /** The union member that carries an fd the caller passes. */
  readonly fdIn?: string;
  /** The op returns a new fd as the ioctl's value. */
  readonly returnsFd?: boolean;
  /** Whether the running kernel has the op (a later kernel's); absent: always. Without it: EOPNOTSUPP. */
  readonly available?: (behaviour: Readonly<KernelBehaviour>) => boolean;
}

const accessFd = (ucmd: Ucmd): number => ucmd.fds.accessOf(ucmd.ctx, field(ucmd, 'id')) ?? -1;

function mockDomain(ucmd: Ucmd, member: 'mock_domain' | 'mock_domain_flags', devFlags: number): number {
  const r = member === 'mock_domain' ? ucmd.ctx.testMockDomain({ ptId: field(ucmd, 'id') }) : ucmd.ctx.testMockDomainFlags({ ptId: field(ucmd, 'id'), devFlags });
  if (r.errno) return -r.errno;
  setField(ucmd, `${member}.out_stdev_id`, r.stdevId);
  setField(ucmd, `${member}.out_hwpt_id`, r.hwptId);
  setField(ucmd, `${member}.out_idev_id`, r.idevId);
  return iommufdUcmdRespond(ucmd);
}

export const TEST_OPS: ReadonlyMap<number, TestOp> = new Map<number, TestOp>([
  [U.IOMMU_TEST_OP_ADD_RESERVED, {
    name: 'ADD_RESERVED',
    member: 'add_reserved',
    execute: (u) => ret(u.ctx.testAddReserved({ ioasId: field(u, 'id'), start: field<bigint>(u, 'add_reserved.start'), length: field<bigint>(u, 'add_reserved.length') }).errno),
  }],
  [U.IOMMU_TEST_OP_MOCK_DOMAIN, { name: 'MOCK_DOMAIN',
    member: 'mock_domain', accounting: true, execute: (u) => mockDomain(u, 'mock_domain', 0) }],
  [U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, {
    name: 'MOCK_DOMAIN_FLAGS',
    member: 'mock_domain_flags',
    accounting: true,
    execute: (u) => mockDomain(u, 'mock_domain_flags', field(u, 'mock_domain_flags.dev_flags')),
  }],
  [U.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, {
    name: 'MOCK_DOMAIN_REPLACE',
    member: 'mock_domain_replace',
    accounting: true,
    execute: (u) => {
      const r = u.ctx.testMockDomainReplace({ stdevId: field(u, 'id'), ptId: field(u, 'mock_domain_replace.pt_id') });
      if (r.errno) return -r.errno;
      setField(u, 'mock_domain_replace.pt_id', r.ptId);
      return iommufdUcmdRespond(u);
    },
  }],
  [U.IOMMU_TEST_OP_MD_CHECK_MAP, {
    name: 'MD_CHECK_MAP',
    member: 'check_map',
    execute: (u) => ret(u.ctx.testCheckMap({ hwptId: field(u, 'id'), iova: field<bigint>(u, 'check_map.iova'), length: field<bigint>(u, 'check_map.length'), uptr: field<bigint>(u, 'check_map.uptr') }).errno),
  }],
  [U.IOMMU_TEST_OP_MD_CHECK_REFS, {
    name: 'MD_CHECK_REFS',
    member: 'check_refs',
    execute: (u) => ret(u.ctx.testCheckRefs({ length: field<bigint>(u, 'check_refs.length'), uptr: field<bigint>(u, 'check_refs.uptr'), refs: field(u, 'check_refs.refs') }).errno),
  }],
  [U.IOMMU_TEST_OP_MD_CHECK_IOTLB, {
    name: 'MD_CHECK_IOTLB',
    member: 'check_iotlb',
    execute: (u) => ret(u.ctx.testCheckIotlb({ hwptId: field(u, 'id'), iotlbId: field(u, 'check_iotlb.id'), iotlb: field(u, 'check_iotlb.iotlb') }).errno),
  }],
  [U.IOMMU_TEST_OP_CREATE_ACCESS, {
    name: 'CREATE_ACCESS',
    member: 'create_access',
    fdOut: 'create_access.out_access_fd',
    execute: (u) => {
      const r = u.ctx.testCreateAccess({ ioasId: field(u, 'id'), flags: field(u, 'create_access.flags') });
      if (r.errno) return -r.errno;
      setField(u, 'create_access.out_access_fd', u.fds.install(u.ctx, 'access', r.accessFd));
      return iommufdUcmdRespond(u);
    },
  }],
  [U.IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, {
    name: 'ACCESS_REPLACE_IOAS',
    member: 'access_replace_ioas',
    idIsAccessFd: true,
    accounting: true,
    execute: (u) => ret(u.ctx.testAccessReplaceIoas({ accessFd: accessFd(u), ioasId: field(u, 'access_replace_ioas.ioas_id') }).errno),
  }],
  [U.IOMMU_TEST_OP_ACCESS_PAGES, {
    name: 'ACCESS_PAGES',
    member: 'access_pages',
    idIsAccessFd: true,
    accounting: true,
    execute: (u) => {
      const r = u.ctx.testAccessPages({
        accessFd: accessFd(u),
        flags: field(u, 'access_pages.flags'),
        iova: field<bigint>(u, 'access_pages.iova'),
        length: field<bigint>(u, 'access_pages.length'),
        uptr: field<bigint>(u, 'access_pages.uptr'),
      });
      if (r.errno) return -r.errno;
      setField(u, 'access_pages.out_access_pages_id', r.accessPagesId);
      return iommufdUcmdRespond(u);
    },
  }],
  [U.IOMMU_TEST_OP_ACCESS_RW, {
    name: 'ACCESS_RW',
    member: 'access_rw',
    idIsAccessFd: true,
    // A read's bytes (copy_to_user of the pages' contents) are not modelled: the selftests compare them themselves.
    execute: (u) => ret(u.ctx.testAccessRw({
      accessFd: accessFd(u),
      iova: field<bigint>(u, 'access_rw.iova'),
      length: field<bigint>(u, 'access_rw.length'),
      uptr: field<bigint>(u, 'access_rw.uptr'),
      flags: field(u, 'access_rw.flags'),
    }).errno),
  }],
  [U.IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, {
    name: 'DESTROY_ACCESS_PAGES',
    member: 'destroy_access_pages',
    idIsAccessFd: true,
    accounting: true,
    execute: (u) => ret(u.ctx.testDestroyAccessPages({ accessFd: accessFd(u), accessPagesId: field(u, 'destroy_access_pages.access_pages_id') }).errno),
  }],
  [U.IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, {
    name: 'SET_TEMP_MEMORY_LIMIT',
    member: 'memory_limit',
    execute: (u) => ret(u.ctx.testSetTempMemoryLimit({ limit: field(u, 'memory_limit.limit') }).errno),
  }],
  [U.IOMMU_TEST_OP_DIRTY, {
    name: 'DIRTY',
    member: 'dirty',
    execute: (u) => {
      // iommufd_test_dirty copies the bitmap in from uptr (after its own checks: the semantic model makes them).
      const length = field<bigint>(u, 'dirty.length');
      const pageSize = field<bigint>(u, 'dirty.page_size');
      const uptr = field<bigint>(u, 'dirty.uptr');
      const nbytes = pageSize > 0n && length / pageSize <= 16n * 1024n * 1024n * 8n ? Number((length / pageSize + 7n) / 8n) : 0;
      let bits: Uint8Array | undefined;
      try {
        bits = u.user.read(uptr, nbytes)?.slice();
      } catch (e) {
        if (!(e instanceof ModelCannotAnswer)) throw e;
      }
      let r;
      try {
        r = u.ctx.testDirty({ hwptId: field(u, 'id'), flags: field(u, 'dirty.flags'), iova: field<bigint>(u, 'dirty.iova'), length, pageSize, uptr, bits });
      } catch (e) {
        if (bits === undefined) throw new ModelCannotAnswer('user pointer to memory the model was not told about', `IOMMU_TEST_OP_DIRTY bitmap at 0x${uptr.toString(16)}`);
        throw e;
      }
      if (r.errno) return -r.errno;
      setField(u, 'dirty.out_nr_dirty', r.nrDirty);
      return iommufdUcmdRespond(u);
    },
  }],
  [U.IOMMU_TEST_OP_TRIGGER_IOPF, {
    name: 'TRIGGER_IOPF',
    member: 'trigger_iopf',
    execute: (u) => ret(u.ctx.testTriggerIopf({
      devId: field(u, 'trigger_iopf.dev_id'),
      pasid: field(u, 'trigger_iopf.pasid'),
      grpid: field(u, 'trigger_iopf.grpid'),
      perm: field(u, 'trigger_iopf.perm'),
      addr: field<bigint>(u, 'trigger_iopf.addr'),
    }).errno),
  }],
  // vIOMMU (7.x)
  [U.IOMMU_TEST_OP_DEV_CHECK_CACHE, {
    name: 'DEV_CHECK_CACHE',
    member: 'check_dev_cache',
    available: (b) => b.viommu,
    execute: (u) => ret(testDevCheckCache(u.ctx, { devId: field(u, 'id'), cacheId: field(u, 'check_dev_cache.id'), cache: field(u, 'check_dev_cache.cache') }).errno),
  }],
  [U.IOMMU_TEST_OP_TRIGGER_VEVENT, {
    name: 'TRIGGER_VEVENT',
    member: 'trigger_vevent',
    available: (b) => b.viommu,
    execute: (u) => ret(testTriggerVevent(u.ctx, { devId: field(u, 'trigger_vevent.dev_id') }).errno),
  }],
  // PASID attach/replace/detach (7.x: issue 13); a kernel without them answers EOPNOTSUPP (iommufd_test's default).
  [U.IOMMU_TEST_OP_PASID_ATTACH, {
    name: 'PASID_ATTACH',
    member: 'pasid_attach',
    accounting: true,
    available: (b) => b.pasid,
    execute: (u) => {
      const stdevId = field(u, 'id');
      const pasid = field(u, 'pasid_attach.pasid');
      const r = u.ctx.testPasidAttach({ stdevId, pasid, ptId: field(u, 'pasid_attach.pt_id') });
      if (r.errno) return -r.errno;
      setField(u, 'pasid_attach.pt_id', r.ptId);
      // iommufd_test_pasid_attach: a failed respond detaches again.
      const rc = iommufdUcmdRespond(u);
      if (rc) u.ctx.testPasidDetach({ stdevId, pasid });
      return rc;
    },
  }],
  [U.IOMMU_TEST_OP_PASID_REPLACE, {
    name: 'PASID_REPLACE',
    // selftest.c:iommufd_test_pasid_replace reads cmd->pasid_attach (the same layout as pasid_replace).
    member: 'pasid_attach',
    accounting: true,
    available: (b) => b.pasid,
    execute: (u) => {
      const r = u.ctx.testPasidReplace({ stdevId: field(u, 'id'), pasid: field(u, 'pasid_attach.pasid'), ptId: field(u, 'pasid_attach.pt_id') });
      if (r.errno) return -r.errno;
      setField(u, 'pasid_attach.pt_id', r.ptId);
      return iommufdUcmdRespond(u);
    },
  }],
  [U.IOMMU_TEST_OP_PASID_DETACH, {
    name: 'PASID_DETACH',
    member: 'pasid_detach',
    accounting: true,
    available: (b) => b.pasid,
    execute: (u) => ret(u.ctx.testPasidDetach({ stdevId: field(u, 'id'), pasid: field(u, 'pasid_detach.pasid') }).errno),
  }],
  [U.IOMMU_TEST_OP_PASID_CHECK_HWPT, {
    name: 'PASID_CHECK_HWPT',
    member: 'pasid_check',
    available: (b) => b.pasid,
    execute: (u) => ret(u.ctx.testPasidCheckHwpt({ stdevId: field(u, 'id'), pasid: field(u, 'pasid_check.pasid'), hwptId: field(u, 'pasid_check.hwpt_id') }).errno),
  }],
  // The selftest's dma-bufs (7.x)
  [U.IOMMU_TEST_OP_DMABUF_GET, {
    name: 'DMABUF_GET',
    member: 'dmabuf_get',
    returnsFd: true,
    available: (b) => b.testDmabuf,
    execute: (u) => {
      const r = u.ctx.testDmabufGet({ length: field(u, 'dmabuf_get.length'), openFlags: field(u, 'dmabuf_get.open_flags') });
      if (r.errno) return -r.errno;
      // "return dma_buf_fd(dmabuf, open_flags)": the fd is the ioctl's value; the struct is not copied back.
      const dmabufFd = u.fds.installDmabuf(r.dmabuf!);
      // KernelBehaviour.dmabufGetFdUnreported (KF-0005): installed all the same, 0 returned.
      return u.ctx.behaviour.dmabufGetFdUnreported ? 0 : dmabufFd;
    },
  }],
  [U.IOMMU_TEST_OP_DMABUF_REVOKE, {
    name: 'DMABUF_REVOKE',
    member: 'dmabuf_revoke',
    fdIn: 'dmabuf_revoke.dmabuf_fd',
    available: (b) => b.testDmabuf,
    execute: (u) => ret(u.ctx.testDmabufRevoke({ file: u.fds.fileOf(field(u, 'dmabuf_revoke.dmabuf_fd')), revoked: field(u, 'dmabuf_revoke.revoked') }).errno),
  }],
]);

/** selftest.c:iommufd_test */
export function iommufdTest(ucmd: Ucmd): number {
  const op = TEST_OPS.get(field(ucmd, 'op'));
  return op && (!op.available || op.available(ucmd.ctx.behaviour)) ? op.execute(ucmd) : -EOPNOTSUPP;
}

/**
 * Under fault injection, a MOCK_DOMAIN or MOCK_DOMAIN_REPLACE whose injected
 * site the kernel absorbed (IommufdModel.absorbedFault, #autoGetDomain): the
 * domain the kernel reports, from its copy of the struct, in the semantic
 * result's shape. null for any other call.
 */
export function absorbedFaultResult(request: number, kernelBytes: Uint8Array | null): { errno: 0; hwptId?: number; ptId?: number } | null {
  if (request !== U.IOMMU_TEST_CMD || !kernelBytes || kernelBytes.length < U.iommu_test_cmd.sizeof) return null;
  const L = U.iommu_test_cmd;
  switch (L.read(kernelBytes, 'op')) {
    case U.IOMMU_TEST_OP_MOCK_DOMAIN:
    case U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
      return { errno: 0, hwptId: L.read(kernelBytes, 'mock_domain.out_hwpt_id') };
    case U.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
      return { errno: 0, ptId: L.read(kernelBytes, 'mock_domain_replace.pt_id') };
    // Returns 0 whether or not the page fault's iopf group was allocated (IommufdModel.testTriggerIopf).
    case U.IOMMU_TEST_OP_TRIGGER_IOPF:
      return { errno: 0 };
    default:
      return null;
  }
}
