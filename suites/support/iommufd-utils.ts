// tools/testing/selftests/iommu/iommufd_utils.h in TypeScript: the helpers the
// kernel's iommufd selftest is written with, so that a mirrored test reads
// like the C one, a few lines each. Names follow the C macros in camelCase:
//
//   test_ioctl_ioas_alloc(&id)              id = ioasAlloc(self)
//   test_ioctl_ioas_map_fixed(buf, len, v)  ioasMapFixed(self, buf, len, v)
//   test_err_ioctl_ioas_unmap(E, iova, len) errIoasUnmap(ENOENT, self, iova, len)
//   EXPECT_ERRNO(E, _test_ioctl_destroy())  expectErrno(EBUSY, self.fd.destroy(id))
//
// `self` is the fixture's state (self->fd, self->ioas_id). Every ioctl goes
// through the run's lockstep process (suites/support/lockstep.ts); the few
// the typed client cannot express (NULL user pointers, odd sizes, a forked
// child's ioctl) are raw, and say so.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { Errno, IommuFd } from '../../lib/kernel/index.ts';
import { errnoName, errnoNumber, MAP_ANONYMOUS, MAP_HUGETLB, MAP_SHARED, MFD_HUGETLB, PAGE_SIZE as SYS_PAGE_SIZE, PROT_READ, PROT_WRITE, sys, type Mapping } from '../../lib/sys/index.ts';
import * as U from '../../lib/uapi/index.ts';
import { fdsOpenedSince, IOMMU_HW_INFO_FLAG_INPUT_TYPE, isDmabufFd, kernelFeatures, openFds } from '../../lib/kernel/index.ts';
import { reportFinding } from './findings.ts';
import { lockstep } from './lockstep.ts';

// ---------------------------------------------------------------- errno values
// From the host's errno table (lib/sys), not from the model's own constants:
// the suites' expectations must not share a source with the model they check.

export const ENOENT = errnoNumber('ENOENT');
export const EIO = errnoNumber('EIO');
export const E2BIG = errnoNumber('E2BIG');
export const EFAULT = errnoNumber('EFAULT');
export const EBUSY = errnoNumber('EBUSY');
export const EEXIST = errnoNumber('EEXIST');
export const ENODEV = errnoNumber('ENODEV');
export const EINVAL = errnoNumber('EINVAL');
export const ENOTTY = errnoNumber('ENOTTY');
export const EMSGSIZE = errnoNumber('EMSGSIZE');
export const EOPNOTSUPP = errnoNumber('EOPNOTSUPP');
export const EADDRINUSE = errnoNumber('EADDRINUSE');
export const EOVERFLOW = errnoNumber('EOVERFLOW');
export const ENXIO = errnoNumber('ENXIO');

// ---------------------------------------------------------------- sizes (iommufd.c setup_sizes())

export const PAGE_SIZE = SYS_PAGE_SIZE;
export const MOCK_PAGE_SIZE = PAGE_SIZE / 2;
export const MOCK_HUGE_PAGE_SIZE = 512 * MOCK_PAGE_SIZE;
export const BUFFER_SIZE = PAGE_SIZE * 16;
export const UINT32_MAX = 0xffff_ffff;
export const UINT64_MAX = 0xffff_ffff_ffff_ffffn;
export const SIZE_MAX = UINT64_MAX;

/** get_huge_page_size(): the THP PMD size, 2 MiB when it cannot be read. */
function getHugePageSize(): number {
  try {
    const n = Number.parseInt(readFileSync('/sys/kernel/mm/transparent_hugepage/hpage_pmd_size', 'utf8'), 10);
    return Number.isFinite(n) && n > 0 ? n : 2 * 1024 * 1024;
  } catch {
    return 2 * 1024 * 1024;
  }
}
export const HUGEPAGE_SIZE = getHugePageSize();

/** The lockstep fd the fixtures use: /dev/iommu, every call run on the kernel and the model. */
export type Iommufd = ReturnType<ReturnType<typeof lockstep>['openIommufd']>;

/** A fixture's state: its /dev/iommu and (for the ioas-bound macros) its IOAS. */
export interface Self {
  fd: Iommufd;
  ioasId: number;
}

let globalBuffer: Mapping | undefined;
/**
 * The selftest's global `buffer`: BUFFER_SIZE bytes of MAP_SHARED anonymous
 * memory at a HUGEPAGE_SIZE-aligned address, made once per process (the C
 * constructor setup_sizes()) and never unmapped.
 */
export function selftestBuffer(): Mapping {
  globalBuffer ??= lockstep().mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0, HUGEPAGE_SIZE);
  return globalBuffer;
}

/** The bytes of a mapping (or part of it) as a Uint8Array. */
export function bytesOf(m: Mapping, offset = 0, length = m.length - offset): Uint8Array {
  return new Uint8Array(m.buffer, offset, length);
}

/** The address of a view's first byte (for uptr fields): through the session, so the model sees the buffer too. */
export function addressOf(view: ArrayBufferView): bigint {
  return lockstep().sys.addressOf(view);
}

// ---------------------------------------------------------------- assertions

/** ASSERT_EQ(0, call): the ioctl succeeded. */
/** What a check names in its failure: a string, or a function that builds it only then (hot loops). */
export type What = string | (() => string);
const nameOf = (what: What) => (typeof what === 'function' ? what() : what);

export function assertOk<T extends Errno>(r: T, what: What = 'ioctl'): T {
  // The selftest loops call this ~10^5 times: chai only when it fails.
  if (r.errno === 0) return r;
  expect(r.errno === 0 ? 'success' : errnoName(r.errno), `${nameOf(what)}: errno`).to.equal('success');
  return r;
}

/** EXPECT_ERRNO(expected, call): the ioctl failed with exactly this errno. */
export function expectErrno<T extends Errno>(expected: number, r: T, what: What = 'ioctl'): T {
  if (r.errno === expected) return r;
  expect(r.errno === 0 ? 'success' : errnoName(r.errno), `${nameOf(what)}: errno`).to.equal(errnoName(expected));
  return r;
}

// ---------------------------------------------------------------- objects and IOAS

/** test_ioctl_destroy(id) */
export function destroy(self: Pick<Self, 'fd'>, id: number): void {
  assertOk(self.fd.destroy(id), () => `IOMMU_DESTROY(${id})`);
}

/** test_ioctl_ioas_alloc(&id): succeeds with a non-zero id. */
export function ioasAlloc(self: Pick<Self, 'fd'>): number {
  const r = assertOk(self.fd.ioasAlloc(), 'IOMMU_IOAS_ALLOC');
  expect(r.ioasId, 'out_ioas_id').to.not.equal(0);
  return r.ioasId;
}

const MAP_RW = U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE;

/** _test_ioctl_ioas_map(): the raw result, iova read back. */
export function ioasMapCall(fd: Iommufd, ioasId: number, userVa: bigint, length: number | bigint, iova: number | bigint, flags: number) {
  return fd.ioasMap({ ioasId, flags, userVa, length, iova: flags & U.IOMMU_IOAS_MAP_FIXED_IOVA ? iova : 0 });
}

/** test_ioctl_ioas_map(buffer, length, &iova): the kernel picks the IOVA. */
export function ioasMap(self: Self, userVa: bigint, length: number | bigint): bigint {
  return assertOk(ioasMapCall(self.fd, self.ioasId, userVa, length, 0, MAP_RW), 'IOMMU_IOAS_MAP').iova;
}
/** test_err_ioctl_ioas_map(errno, buffer, length, &iova) */
export function errIoasMap(errno: number, self: Self, userVa: bigint, length: number | bigint): void {
  expectErrno(errno, ioasMapCall(self.fd, self.ioasId, userVa, length, 0, MAP_RW), 'IOMMU_IOAS_MAP');
}
/** test_ioctl_ioas_map_id(ioas_id, buffer, length, &iova) */
export function ioasMapId(self: Pick<Self, 'fd'>, ioasId: number, userVa: bigint, length: number | bigint): bigint {
  return assertOk(ioasMapCall(self.fd, ioasId, userVa, length, 0, MAP_RW), 'IOMMU_IOAS_MAP').iova;
}
/** test_ioctl_ioas_map_fixed(buffer, length, iova) */
export function ioasMapFixed(self: Self, userVa: bigint, length: number | bigint, iova: number | bigint): void {
  assertOk(ioasMapCall(self.fd, self.ioasId, userVa, length, iova, U.IOMMU_IOAS_MAP_FIXED_IOVA | MAP_RW), () => `IOMMU_IOAS_MAP(FIXED_IOVA ${iova})`);
}
/** test_ioctl_ioas_map_fixed_id(ioas_id, buffer, length, iova) */
export function ioasMapFixedId(self: Pick<Self, 'fd'>, ioasId: number, userVa: bigint, length: number | bigint, iova: number | bigint): void {
  assertOk(ioasMapCall(self.fd, ioasId, userVa, length, iova, U.IOMMU_IOAS_MAP_FIXED_IOVA | MAP_RW), () => `IOMMU_IOAS_MAP(FIXED_IOVA ${iova})`);
}
/** test_err_ioctl_ioas_map_fixed(errno, buffer, length, iova) */
export function errIoasMapFixed(errno: number, self: Self, userVa: bigint, length: number | bigint, iova: number | bigint): void {
  expectErrno(errno, ioasMapCall(self.fd, self.ioasId, userVa, length, iova, U.IOMMU_IOAS_MAP_FIXED_IOVA | MAP_RW), () => `IOMMU_IOAS_MAP(FIXED_IOVA ${iova})`);
}

/** test_ioctl_ioas_unmap(iova, length) */
export function ioasUnmap(self: Self, iova: number | bigint, length: number | bigint): void {
  assertOk(self.fd.ioasUnmap({ ioasId: self.ioasId, iova, length }), () => `IOMMU_IOAS_UNMAP(${iova}, ${length})`);
}
/** test_ioctl_ioas_unmap_id(ioas_id, iova, length) */
export function ioasUnmapId(self: Pick<Self, 'fd'>, ioasId: number, iova: number | bigint, length: number | bigint): void {
  assertOk(self.fd.ioasUnmap({ ioasId, iova, length }), () => `IOMMU_IOAS_UNMAP(${iova}, ${length})`);
}
/** test_err_ioctl_ioas_unmap(errno, iova, length) */
export function errIoasUnmap(errno: number, self: Self, iova: number | bigint, length: number | bigint): void {
  expectErrno(errno, self.fd.ioasUnmap({ ioasId: self.ioasId, iova, length }), () => `IOMMU_IOAS_UNMAP(${iova}, ${length})`);
}

/** test_ioctl_set_temp_memory_limit(limit) */
export function setTempMemoryLimit(self: Pick<Self, 'fd'>, limit: number): void {
  assertOk(self.fd.testSetTempMemoryLimit({ limit }), 'IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT');
}
/** test_ioctl_set_default_memory_limit() */
export function setDefaultMemoryLimit(self: Pick<Self, 'fd'>): void {
  setTempMemoryLimit(self, 65536);
}

// ---------------------------------------------------------------- mock devices and domains

export interface MockDomain {
  stdevId: number;
  hwptId: number;
  idevId: number;
}

/** test_cmd_mock_domain(ioas_id, &stdev_id, &hwpt_id, &idev_id) */
export function mockDomain(self: Pick<Self, 'fd'>, ptId: number): MockDomain {
  const r = assertOk(self.fd.testMockDomain({ ptId }), () => `IOMMU_TEST_OP_MOCK_DOMAIN(${ptId})`);
  expect(r.stdevId, 'out_stdev_id').to.not.equal(0);
  return { stdevId: r.stdevId, hwptId: r.hwptId, idevId: r.idevId };
}
/** test_err_mock_domain(errno, ioas_id, ...) */
export function errMockDomain(errno: number, self: Pick<Self, 'fd'>, ptId: number): void {
  expectErrno(errno, self.fd.testMockDomain({ ptId }), () => `IOMMU_TEST_OP_MOCK_DOMAIN(${ptId})`);
}
/** test_cmd_mock_domain_flags(ioas_id, flags, ...) */
export function mockDomainFlags(self: Pick<Self, 'fd'>, ptId: number, devFlags: number): MockDomain {
  const r = assertOk(self.fd.testMockDomainFlags({ ptId, devFlags }), () => `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS(${ptId}, ${devFlags})`);
  expect(r.stdevId, 'out_stdev_id').to.not.equal(0);
  return { stdevId: r.stdevId, hwptId: r.hwptId, idevId: r.idevId };
}
/** test_err_mock_domain_flags(errno, ioas_id, flags, ...) */
export function errMockDomainFlags(errno: number, self: Pick<Self, 'fd'>, ptId: number, devFlags: number): void {
  expectErrno(errno, self.fd.testMockDomainFlags({ ptId, devFlags }), () => `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS(${ptId}, ${devFlags})`);
}
/** test_cmd_mock_domain_replace(stdev_id, pt_id) */
export function mockDomainReplace(self: Pick<Self, 'fd'>, stdevId: number, ptId: number): void {
  assertOk(self.fd.testMockDomainReplace({ stdevId, ptId }), () => `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE(${stdevId} -> ${ptId})`);
}
/** test_err_mock_domain_replace(errno, stdev_id, pt_id) */
export function errMockDomainReplace(errno: number, self: Pick<Self, 'fd'>, stdevId: number, ptId: number): void {
  expectErrno(errno, self.fd.testMockDomainReplace({ stdevId, ptId }), () => `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE(${stdevId} -> ${ptId})`);
}

/** check_refs(ptr, length, refs): the kernel checks the pin count of each page. */
export function checkRefs(self: Pick<Self, 'fd'>, uptr: bigint, length: number, refs: number): void {
  assertOk(self.fd.testCheckRefs({ uptr, length, refs }), () => `IOMMU_TEST_OP_MD_CHECK_REFS(refs ${refs})`);
}

/** check_mock_iova(ptr, iova, length) of iommufd_mock_domain: the user pages made it to each mock domain. */
export function checkMockIova(self: Pick<Self, 'fd'>, hwptIds: readonly number[], uptr: bigint, iova: number | bigint, length: number | bigint): void {
  for (const hwptId of hwptIds) {
    if (!hwptId) continue;
    assertOk(self.fd.testCheckMap({ hwptId, iova, length, uptr }), () => `IOMMU_TEST_OP_MD_CHECK_MAP(hwpt ${hwptId})`);
  }
}

// ---------------------------------------------------------------- HWPTs

/** _test_cmd_hwpt_alloc() as the client issues it. */
function hwptAllocCall(self: Pick<Self, 'fd'>, devId: number, ptId: number, faultId: number, flags: number, dataType: number, data: Uint8Array | null) {
  return self.fd.hwptAlloc({ devId, ptId, faultId, flags: flags >>> 0, dataType, ...(data ? { data } : {}) });
}
/** test_cmd_hwpt_alloc(device_id, pt_id, flags, &hwpt_id) */
export function hwptAlloc(self: Pick<Self, 'fd'>, devId: number, ptId: number, flags: number): number {
  return assertOk(hwptAllocCall(self, devId, ptId, 0, flags, U.IOMMU_HWPT_DATA_NONE, null), () => `IOMMU_HWPT_ALLOC(dev ${devId}, pt ${ptId}, flags ${flags})`).hwptId;
}
/** test_err_hwpt_alloc(errno, device_id, pt_id, flags, &hwpt_id) */
export function errHwptAlloc(errno: number, self: Pick<Self, 'fd'>, devId: number, ptId: number, flags: number): void {
  expectErrno(errno, hwptAllocCall(self, devId, ptId, 0, flags, U.IOMMU_HWPT_DATA_NONE, null), () => `IOMMU_HWPT_ALLOC(dev ${devId}, pt ${ptId}, flags ${flags})`);
}
/** test_cmd_hwpt_alloc_nested(device_id, pt_id, flags, &hwpt_id, data_type, data, data_len) */
export function hwptAllocNested(self: Pick<Self, 'fd'>, devId: number, ptId: number, flags: number, dataType: number, data: Uint8Array): number {
  return assertOk(hwptAllocCall(self, devId, ptId, 0, flags, dataType, data), () => `IOMMU_HWPT_ALLOC nested(dev ${devId}, parent ${ptId})`).hwptId;
}
/** test_err_hwpt_alloc_nested(errno, device_id, pt_id, flags, &hwpt_id, data_type, data, data_len) */
export function errHwptAllocNested(errno: number, self: Pick<Self, 'fd'>, devId: number, ptId: number, flags: number, dataType: number, data: Uint8Array): void {
  expectErrno(errno, hwptAllocCall(self, devId, ptId, 0, flags, dataType, data), () => `IOMMU_HWPT_ALLOC nested(dev ${devId}, parent ${ptId}, type ${dataType})`);
}
/**
 * test_err_hwpt_alloc_nested(errno, ..., data_type, NULL, data_len): a NULL
 * data_uptr with a non-zero data_len, which the typed client cannot express
 * (it derives both from one buffer): a raw ioctl, unchecked by the model.
 */
export function errHwptAllocNestedNullData(errno: number, self: Pick<Self, 'fd'>, devId: number, ptId: number, flags: number, dataType: number, dataLen: number): void {
  const cmd = U.iommu_hwpt_alloc.encode({ flags, dev_id: devId, pt_id: ptId, data_type: dataType, data_len: dataLen, data_uptr: 0 });
  expectErrno(errno, self.fd.ioctl(U.IOMMU_HWPT_ALLOC, cmd), 'IOMMU_HWPT_ALLOC nested(data_uptr NULL)');
}
/** test_cmd_hwpt_alloc_iopf(device_id, pt_id, fault_id, flags, &hwpt_id, data_type, data, data_len) */
export function hwptAllocIopf(self: Pick<Self, 'fd'>, devId: number, ptId: number, faultId: number, flags: number, dataType: number, data: Uint8Array): number {
  return assertOk(hwptAllocCall(self, devId, ptId, faultId, flags, dataType, data), () => `IOMMU_HWPT_ALLOC iopf(dev ${devId}, fault ${faultId})`).hwptId;
}
/** test_err_hwpt_alloc_iopf(errno, device_id, pt_id, fault_id, flags, &hwpt_id, data_type, data, data_len) */
export function errHwptAllocIopf(errno: number, self: Pick<Self, 'fd'>, devId: number, ptId: number, faultId: number, flags: number, dataType: number, data: Uint8Array): void {
  expectErrno(errno, hwptAllocCall(self, devId, ptId, faultId, flags, dataType, data), () => `IOMMU_HWPT_ALLOC iopf(dev ${devId}, fault ${faultId})`);
}

/** test_cmd_hwpt_check_iotlb(hwpt_id, iotlb_id, expected) */
export function hwptCheckIotlb(self: Pick<Self, 'fd'>, hwptId: number, iotlbId: number, expected: number): void {
  assertOk(self.fd.testCheckIotlb({ hwptId, iotlbId, iotlb: expected }), () => `IOMMU_TEST_OP_MD_CHECK_IOTLB(hwpt ${hwptId}, iotlb ${iotlbId} == ${expected})`);
}
/** test_cmd_hwpt_check_iotlb_all(hwpt_id, expected) */
export function hwptCheckIotlbAll(self: Pick<Self, 'fd'>, hwptId: number, expected: number): void {
  for (let i = 0; i < U.MOCK_NESTED_DOMAIN_IOTLB_NUM; i++) hwptCheckIotlb(self, hwptId, i, expected);
}

/** _test_cmd_hwpt_invalidate(): the result and the entry_num the kernel wrote back. */
function hwptInvalidateCall(self: Pick<Self, 'fd'>, hwptId: number, reqs: Uint8Array | null, dataType: number, entryLen: number, entryNum: number) {
  return self.fd.hwptInvalidate({ hwptId, entries: reqs, dataType, entryLen, entryNum });
}
/** test_cmd_hwpt_invalidate(hwpt_id, reqs, data_type, lreq, &nreqs): returns the new nreqs. */
export function hwptInvalidate(self: Pick<Self, 'fd'>, hwptId: number, reqs: Uint8Array | null, dataType: number, entryLen: number, entryNum: number): number {
  return assertOk(hwptInvalidateCall(self, hwptId, reqs, dataType, entryLen, entryNum), () => `IOMMU_HWPT_INVALIDATE(hwpt ${hwptId})`).entryNum;
}
/** test_err_hwpt_invalidate(errno, hwpt_id, reqs, data_type, lreq, &nreqs): returns the new nreqs. */
export function errHwptInvalidate(errno: number, self: Pick<Self, 'fd'>, hwptId: number, reqs: Uint8Array | null, dataType: number, entryLen: number, entryNum: number): number {
  return expectErrno(errno, hwptInvalidateCall(self, hwptId, reqs, dataType, entryLen, entryNum), () => `IOMMU_HWPT_INVALIDATE(hwpt ${hwptId})`).entryNum;
}

// ---------------------------------------------------------------- accesses

/** test_cmd_create_access(ioas_id, &access_id, flags): returns the access fd. */
export function createAccess(self: Pick<Self, 'fd'>, ioasId: number, flags: number): number {
  return assertOk(self.fd.testCreateAccess({ ioasId, flags }), () => `IOMMU_TEST_OP_CREATE_ACCESS(${ioasId})`).accessFd;
}
/** test_cmd_destroy_access(access_id): close() of the access fd. */
export function destroyAccess(self: Pick<Self, 'fd'>, accessFd: number): void {
  assertOk(self.fd.closeAccess(accessFd), 'close(access fd)');
}
/** IOMMU_TEST_OP_ACCESS_PAGES (the selftest issues it inline): returns out_access_pages_id. */
export function accessPages(self: Pick<Self, 'fd'>, accessFd: number, iova: number | bigint, length: number, uptr: bigint, flags = 0): number {
  return assertOk(self.fd.testAccessPages({ accessFd, iova, length, uptr, flags }), () => `IOMMU_TEST_OP_ACCESS_PAGES(iova ${iova}, length ${length})`).accessPagesId;
}
/** test_cmd_destroy_access_pages(access_id, access_pages_id) */
export function destroyAccessPages(self: Pick<Self, 'fd'>, accessFd: number, accessPagesId: number): void {
  assertOk(self.fd.testDestroyAccessPages({ accessFd, accessPagesId }), () => `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES(${accessPagesId})`);
}
/** test_err_destroy_access_pages(errno, access_id, access_pages_id) */
export function errDestroyAccessPages(errno: number, self: Pick<Self, 'fd'>, accessFd: number, accessPagesId: number): void {
  expectErrno(errno, self.fd.testDestroyAccessPages({ accessFd, accessPagesId }), () => `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES(${accessPagesId})`);
}
/** test_cmd_access_replace_ioas(access_id, ioas_id) */
export function accessReplaceIoas(self: Pick<Self, 'fd'>, accessFd: number, ioasId: number): void {
  assertOk(self.fd.testAccessReplaceIoas({ accessFd, ioasId }), () => `IOMMU_TEST_OP_ACCESS_REPLACE_IOAS(${ioasId})`);
}

// ---------------------------------------------------------------- hw_info

/**
 * _test_cmd_get_hw_info(): IOMMU_GET_HW_INFO into a user buffer of `dataLen`
 * bytes (none for 0: data_uptr NULL), filled with 0xff first like the C
 * test's uninitialised stack struct, so the kernel must write or clear each
 * byte for checkHwInfo() to pass. `dataType` other than
 * IOMMU_HW_INFO_TYPE_DEFAULT (0) sets IOMMU_HW_INFO_FLAG_INPUT_TYPE, a later
 * uAPI than 6.12's client knows: a raw ioctl (in_data_type shares
 * out_data_type's offset).
 */
export function getHwInfoCall(self: Pick<Self, 'fd'>, devId: number, dataType: number, dataLen: number) {
  const data = new Uint8Array(new ArrayBuffer(dataLen)).fill(0xff);
  if (dataType === IOMMU_HW_INFO_TYPE_DEFAULT) {
    const r = self.fd.getHwInfo({ devId, data });
    return { errno: r.errno, dataLen: r.dataLen, dataType: r.dataType, capabilities: r.capabilities, maxPasidLog2: r.maxPasidLog2, data };
  }
  const cmd = U.iommu_hw_info.encode({ flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE, dev_id: devId, data_len: dataLen, data_uptr: dataLen ? addressOf(data) : 0n, out_data_type: dataType });
  const r = self.fd.ioctl(U.IOMMU_GET_HW_INFO, cmd);
  const out = U.iommu_hw_info.decode(cmd);
  return { errno: r.errno, dataLen: out.data_len, dataType: out.out_data_type, capabilities: out.out_capabilities, maxPasidLog2: out.out_max_pasid_log2, data };
}
/** IOMMU_HW_INFO_TYPE_DEFAULT (later uAPI; the same value as IOMMU_HW_INFO_TYPE_NONE): no input type. */
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;

/**
 * The checks of _test_cmd_get_hw_info() on a successful call with a
 * `dataLen`-byte buffer: out_data_type is the selftest's, data_len is
 * sizeof(struct iommu_test_hw_info), the bytes past it in a larger buffer
 * were zeroed by the kernel, test_reg and flags hold the mock's values.
 */
export function checkHwInfo(r: { dataLen: number; dataType: number; data: Uint8Array }, dataLen: number): void {
  expect(r.dataType, 'out_data_type').to.equal(U.IOMMU_HW_INFO_TYPE_SELFTEST);
  // The struct iommu_test_hw_info should be the one defined by the current kernel.
  expect(r.dataLen, 'data_len').to.equal(U.iommu_test_hw_info.sizeof);
  // Trailing bytes should be 0 if user buffer is larger than the data that kernel reports.
  if (dataLen > r.dataLen) {
    const trailing = [...r.data.subarray(r.dataLen, dataLen)];
    expect(trailing, `trailing bytes [${r.dataLen}, ${dataLen}) of the user buffer`).to.deep.equal(new Array(dataLen - r.dataLen).fill(0));
  }
  if (dataLen > 0) {
    const info = U.iommu_test_hw_info.decode(r.data.subarray(0, dataLen));
    if (dataLen >= U.iommu_test_hw_info.offsetEnd('test_reg')) expect(info.test_reg, 'test_reg').to.equal(U.IOMMU_HW_INFO_SELFTEST_REGVAL);
    if (dataLen >= U.iommu_test_hw_info.offsetEnd('flags')) expect(info.flags, 'flags').to.equal(0);
  }
}

/** test_cmd_get_hw_info(device_id, data_type, data, data_len): succeeds, with checkHwInfo()'s checks. */
export function getHwInfo(self: Pick<Self, 'fd'>, devId: number, dataType: number, dataLen: number) {
  const r = assertOk(getHwInfoCall(self, devId, dataType, dataLen), () => `IOMMU_GET_HW_INFO(dev ${devId}, type ${dataType}, len ${dataLen})`);
  checkHwInfo(r, dataLen);
  return r;
}
/** test_err_get_hw_info(errno, device_id, data_type, data, data_len) */
export function errGetHwInfo(errno: number, self: Pick<Self, 'fd'>, devId: number, dataType: number, dataLen: number): void {
  expectErrno(errno, getHwInfoCall(self, devId, dataType, dataLen), () => `IOMMU_GET_HW_INFO(dev ${devId}, type ${dataType})`);
}
/** test_cmd_get_hw_capabilities(device_id, caps) */
export function getHwCapabilities(self: Pick<Self, 'fd'>, devId: number): bigint {
  return getHwInfo(self, devId, IOMMU_HW_INFO_TYPE_DEFAULT, 0).capabilities;
}
/** test_cmd_get_hw_info_pasid(device_id, &max_pasid) */
export function getHwInfoPasid(self: Pick<Self, 'fd'>, devId: number): number {
  return getHwInfo(self, devId, IOMMU_HW_INFO_TYPE_DEFAULT, 0).maxPasidLog2;
}

// ---------------------------------------------------------------- faults (IOPF)

/** test_ioctl_fault_alloc(&fault_id, &fault_fd) */
export function faultAlloc(self: Pick<Self, 'fd'>): { faultId: number; faultFd: number } {
  const r = assertOk(self.fd.faultQueueAlloc(), 'IOMMU_FAULT_QUEUE_ALLOC');
  expect(r.faultId, 'out_fault_id').to.not.equal(0);
  expect(r.faultFd, 'out_fault_fd').to.not.equal(0);
  return { faultId: r.faultId, faultFd: r.faultFd };
}

/**
 * test_cmd_trigger_iopf(device_id, fault_fd) (test_cmd_trigger_iopf_pasid with
 * `pasid`): the mock device faults, the
 * fault is read from the fault fd and answered with a success response.
 * The read and the write go through the session's sys (in lockstep, the
 * model predicts the bytes read and what the write takes).
 */
export function triggerIopf(self: Pick<Self, 'fd'>, devId: number, faultFd: number, pasid = 0x1): void {
  assertOk(
    self.fd.testTriggerIopf({ devId, pasid, grpid: 0x2, perm: U.IOMMU_PGFAULT_PERM_READ | U.IOMMU_PGFAULT_PERM_WRITE, addr: 0xdeadbeaf }),
    'IOMMU_TEST_OP_TRIGGER_IOPF',
  );
  const fault = new Uint8Array(U.iommu_hwpt_pgfault.sizeof);
  expect(assertOk(self.fd.readEventq(faultFd, fault), 'read(fault_fd)').bytes, 'read(fault_fd)').to.be.greaterThan(0);
  const response = U.iommu_hwpt_page_response.encode({ cookie: U.iommu_hwpt_pgfault.decode(fault).cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS });
  expect(assertOk(self.fd.writeEventq(faultFd, response), 'write(fault_fd)').bytes, 'write(fault_fd)').to.be.greaterThan(0);
}

// ---------------------------------------------------------------- PASID (7.x: issue 13)

/** test_cmd_pasid_attach(pasid, hwpt_id), with the stdev_id explicit (the C macro takes self->stdev_id). */
export function pasidAttach(self: Pick<Self, 'fd'>, stdevId: number, pasid: number, ptId: number): void {
  assertOk(self.fd.testPasidAttach({ stdevId, pasid, ptId }), () => `IOMMU_TEST_OP_PASID_ATTACH(${stdevId}, pasid ${pasid}, ${ptId})`);
}
/** test_err_pasid_attach(_errno, pasid, hwpt_id) */
export function errPasidAttach(errno: number, self: Pick<Self, 'fd'>, stdevId: number, pasid: number, ptId: number): void {
  expectErrno(errno, self.fd.testPasidAttach({ stdevId, pasid, ptId }), () => `IOMMU_TEST_OP_PASID_ATTACH(${stdevId}, pasid ${pasid}, ${ptId})`);
}
/** test_cmd_pasid_replace(pasid, hwpt_id) */
export function pasidReplace(self: Pick<Self, 'fd'>, stdevId: number, pasid: number, ptId: number): void {
  assertOk(self.fd.testPasidReplace({ stdevId, pasid, ptId }), () => `IOMMU_TEST_OP_PASID_REPLACE(${stdevId}, pasid ${pasid}, ${ptId})`);
}
/** test_err_pasid_replace(_errno, pasid, hwpt_id) */
export function errPasidReplace(errno: number, self: Pick<Self, 'fd'>, stdevId: number, pasid: number, ptId: number): void {
  expectErrno(errno, self.fd.testPasidReplace({ stdevId, pasid, ptId }), () => `IOMMU_TEST_OP_PASID_REPLACE(${stdevId}, pasid ${pasid}, ${ptId})`);
}
/** test_cmd_pasid_detach(pasid) */
export function pasidDetach(self: Pick<Self, 'fd'>, stdevId: number, pasid: number): void {
  assertOk(self.fd.testPasidDetach({ stdevId, pasid }), () => `IOMMU_TEST_OP_PASID_DETACH(${stdevId}, pasid ${pasid})`);
}
/** ASSERT_EQ(0, test_cmd_pasid_check_hwpt(fd, stdev_id, pasid, hwpt_id)): `pasid` has hwpt_id's domain (0: none). */
export function pasidCheckHwpt(self: Pick<Self, 'fd'>, stdevId: number, pasid: number, hwptId: number): void {
  assertOk(self.fd.testPasidCheckHwpt({ stdevId, pasid, hwptId }), () => `IOMMU_TEST_OP_PASID_CHECK_HWPT(${stdevId}, pasid ${pasid}, ${hwptId})`);
}

// ---------------------------------------------------------------- dirty tracking

/** test_cmd_set_dirty_tracking(hwpt_id, enabled) */
export function setDirtyTracking(self: Pick<Self, 'fd'>, hwptId: number, enable: boolean): void {
  assertOk(self.fd.hwptSetDirtyTracking({ hwptId, enable }), () => `IOMMU_HWPT_SET_DIRTY_TRACKING(${hwptId}, ${enable})`);
}
/** test_cmd_get_dirty_bitmap(fd, hwpt_id, length, iova, page_size, bitmap, flags) */
export function getDirtyBitmap(self: Pick<Self, 'fd'>, hwptId: number, length: number, iova: number, pageSize: number, bitmap: Uint8Array, flags: number): void {
  assertOk(self.fd.hwptGetDirtyBitmap({ hwptId, length, iova, pageSize, bitmap, flags }), 'IOMMU_HWPT_GET_DIRTY_BITMAP');
}
/** test_cmd_mock_domain_set_dirty(fd, hwpt_id, length, iova, page_size, bitmap, &nr): returns nr. */
export function mockDomainSetDirty(self: Pick<Self, 'fd'>, hwptId: number, length: number, iova: number, pageSize: number, bitmap: Uint8Array): bigint {
  return assertOk(self.fd.testDirty({ hwptId, length, iova, pageSize, uptr: addressOf(bitmap) }), 'IOMMU_TEST_OP_DIRTY').nrDirty;
}

function setBit(bitmap: Uint8Array, nr: number): void {
  bitmap[nr >> 3]! |= 1 << (nr & 7);
}
function testBit(bitmap: Uint8Array, nr: number): boolean {
  return ((bitmap[nr >> 3]! >> (nr & 7)) & 1) === 1;
}

/**
 * test_mock_dirty_bitmaps(hwpt_id, length, iova, page_size, pte_size, bitmap,
 * nbits, flags): marks every other IOPTE dirty in the mock domain, reads the
 * bitmap back twice (the second read sees nothing unless NO_CLEAR).
 * (Bit n of an unsigned long bitmap is bit n%8 of byte n/8 on little-endian.)
 */
export function mockDirtyBitmaps(self: Pick<Self, 'fd'>, hwptId: number, length: number, iova: number, pageSize: number, ptePageSize: number, bitmap: Uint8Array, nbits: number, flags: number): void {
  const npte = ptePageSize / pageSize;
  const pteset = 2 * npte;
  const nr = Math.floor(nbits / pteset) || 1;
  const bits = bitmap.subarray(0, Math.ceil(nbits / 8));

  // Mark all even bits as dirty in the mock domain
  bits.fill(0);
  for (let i = 0; i < nbits; i += pteset) setBit(bits, i);
  expect(mockDomainSetDirty(self, hwptId, length, iova, pageSize, bits), 'out_nr_dirty').to.equal(BigInt(nr));

  // Expect all even bits as dirty in the user bitmap
  bits.fill(0);
  getDirtyBitmap(self, hwptId, length, iova, pageSize, bits, flags);
  for (let i = 0; i < nbits; i += pteset) {
    for (let j = 0; j < pteset; j++) {
      if (testBit(bits, i + j) !== j < npte) expect(testBit(bits, i + j), `bit ${i + j}`).to.equal(j < npte);
    }
    // chai only on a mismatch: this runs once per PTE set (16k times for 128M).
    if (testBit(bits, i) !== (i % pteset === 0)) expect(testBit(bits, i), `bit ${i}`).to.equal(i % pteset === 0);
  }

  bits.fill(0);
  getDirtyBitmap(self, hwptId, length, iova, pageSize, bits, flags);
  // It as read already -- expect all zeroes
  const noClear = (flags & U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
  for (let i = 0; i < nbits; i += pteset) {
    for (let j = 0; j < pteset; j++) {
      if (testBit(bits, i + j) !== (j < npte && noClear)) expect(testBit(bits, i + j), `bit ${i + j} on re-read`).to.equal(j < npte && noClear);
    }
  }
}

// ---------------------------------------------------------------- memfds, IOMMU_IOAS_MAP_FILE and dma-bufs (7.x)

/**
 * memfd_mmap(length, prot, flags, &mfd): a memfd ("buffer"; MFD_HUGETLB when
 * flags has MAP_HUGETLB) of `length` bytes, mapped with `flags`, through the
 * session so that the model shares its pages between the mapping and
 * IOMMU_IOAS_MAP_FILE. null where the C returns MAP_FAILED (the memfd closed).
 */
export function memfdMmap(length: number, prot: number, flags: number): { buf: Mapping; mfd: number } | null {
  const session = lockstep();
  const mfd = session.memfdCreate('buffer', flags & MAP_HUGETLB ? MFD_HUGETLB : 0);
  if (mfd <= 0) return null;
  try {
    if (session.ftruncate(mfd, length)) {
      session.sys.close(mfd);
      return null;
    }
    return { buf: session.mmap(length, prot, flags, mfd, 0), mfd };
  } catch {
    session.sys.close(mfd);
    return null;
  }
}

let globalMfd: { buf: Mapping; mfd: number } | undefined;
/**
 * The selftest's global `mfd_buffer` and `mfd` (setup_sizes(): BUFFER_SIZE
 * bytes of a memfd mapped MAP_SHARED), made once per process and never
 * unmapped or closed.
 */
export function selftestMfdBuffer(): { buf: Mapping; mfd: number } {
  globalMfd ??= memfdMmap(BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED) ?? undefined;
  if (!globalMfd) throw new Error('memfd_mmap of the selftest\'s mfd_buffer failed');
  return globalMfd;
}

/** _test_ioctl_ioas_map_file(): the raw result, iova read back. */
export function ioasMapFileCall(fd: Iommufd, ioasId: number, mfd: number, start: number | bigint, length: number | bigint, iova: number | bigint, flags: number) {
  return fd.ioasMapFile({ ioasId, flags, fd: mfd, start, length, iova: flags & U.IOMMU_IOAS_MAP_FIXED_IOVA ? iova : 0 });
}
/** test_ioctl_ioas_map_file(mfd, start, length, &iova) */
export function ioasMapFile(self: Self, mfd: number, start: number | bigint, length: number | bigint): bigint {
  return assertOk(ioasMapFileCall(self.fd, self.ioasId, mfd, start, length, 0, MAP_RW), () => `IOMMU_IOAS_MAP_FILE(start ${start}, length ${length})`).iova;
}
/** test_err_ioctl_ioas_map_file(errno, mfd, start, length, &iova) */
export function errIoasMapFile(errno: number, self: Self, mfd: number, start: number | bigint, length: number | bigint): void {
  expectErrno(errno, ioasMapFileCall(self.fd, self.ioasId, mfd, start, length, 0, MAP_RW), () => `IOMMU_IOAS_MAP_FILE(start ${start}, length ${length})`);
}
/** test_ioctl_ioas_map_id_file(ioas_id, mfd, start, length, &iova) */
export function ioasMapIdFile(self: Pick<Self, 'fd'>, ioasId: number, mfd: number, start: number | bigint, length: number | bigint): bigint {
  return assertOk(ioasMapFileCall(self.fd, ioasId, mfd, start, length, 0, MAP_RW), () => `IOMMU_IOAS_MAP_FILE(ioas ${ioasId}, start ${start}, length ${length})`).iova;
}
/** test_ioctl_ioas_map_fixed_file(mfd, start, length, iova) */
export function ioasMapFixedFile(self: Self, mfd: number, start: number | bigint, length: number | bigint, iova: number | bigint): void {
  assertOk(ioasMapFileCall(self.fd, self.ioasId, mfd, start, length, iova, U.IOMMU_IOAS_MAP_FIXED_IOVA | MAP_RW), () => `IOMMU_IOAS_MAP_FILE(FIXED_IOVA ${iova})`);
}

/**
 * test_cmd_get_dmabuf(len, &dfd): the dma-buf's fd. The C helper takes the ioctl's value; where the kernel
 * returns 0 and leaves the fd unreported (the probe saw it: KF-0005, docs/findings/KF-0005.md), the fd is
 * found the only way there is, as the one dma-buf the call added to /proc/self/fd, and the case says so
 * under the finding's id. The C test goes on with fd 0 there.
 */
export function getDmabuf(self: Pick<Self, 'fd'>, length: number): number {
  const unreported = kernelFeatures().changes.dmabufGetFdUnreported;
  const before = unreported ? openFds() : null;
  const dfd = assertOk(self.fd.testDmabufGet({ length }), () => `IOMMU_TEST_OP_DMABUF_GET(${length})`).dmabufFd;
  if (!before) return dfd;
  const made = fdsOpenedSince(before).filter(isDmabufFd);
  if (dfd !== 0 || made.length !== 1) {
    throw new Error(`IOMMU_TEST_OP_DMABUF_GET(${length}) returned ${dfd} and made dma-buf fds [${made.join(', ')}], where the feature probe saw 0 and one unreported fd (KF-0005)`);
  }
  reportFinding('KF-0005', `IOMMU_TEST_OP_DMABUF_GET returned 0; its dma-buf is fd ${made[0]}, found in /proc/self/fd`);
  return made[0]!;
}
/** test_cmd_revoke_dmabuf(dmabuf_fd, revoked) */
export function revokeDmabuf(self: Pick<Self, 'fd'>, dmabufFd: number, revoked: boolean): void {
  assertOk(self.fd.testDmabufRevoke({ dmabufFd, revoked }), () => `IOMMU_TEST_OP_DMABUF_REVOKE(${revoked})`);
}
/** close(fd) of a memfd or dma-buf fd, through the session. */
export function closeFile(fd: number): void {
  const r = lockstep().sys.close(fd);
  expect(r < 0 ? errnoName(r) : 'success', `close(${fd})`).to.equal('success');
}

// ---------------------------------------------------------------- fork (fork_gone / fork_present)

/**
 * test_ioctl_ioas_map_fixed() issued by a forked child (a different mm).
 * keepAlive false: the child exits at once (fork_gone); true: it waits for
 * forkRelease (fork_present). In lockstep, the model runs it as one more
 * process sharing the (MAP_SHARED) buffer.
 */
export function forkIoasMapFixed(self: Self, userVa: bigint, length: number, iova: number, keepAlive: boolean): number {
  const cmd = U.iommu_ioas_map.encode({ flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | MAP_RW, ioas_id: self.ioasId, user_va: userVa, length, iova });
  const r = lockstep().forkIoctl(self.fd.fd, U.IOMMU_IOAS_MAP, cmd, keepAlive);
  if (typeof r === 'number') throw new Error(`fork failed: ${errnoName(r)}`);
  expect(r.ret < 0 ? errnoName(r.ret) : 'success', 'IOMMU_IOAS_MAP in the child').to.equal('success');
  return r.pid;
}

/** Lets a kept-alive child exit and reaps it (waitpid): its exit status. */
export function forkRelease(pid: number): number {
  return lockstep().forkRelease(pid);
}

// ---------------------------------------------------------------- teardown

/**
 * teardown_iommufd(fd): closes the fixture's fd, then checks on a fresh
 * /dev/iommu that nothing in the global buffer is still pinned.
 */
export function teardownIommufd(fd: Iommufd | undefined): void {
  if (!fd || fd.closed) return;
  assertOk(fd.close(), 'close(/dev/iommu)');
  const again = lockstep().openIommufd();
  try {
    const buffer = selftestBuffer();
    assertOk(again.testCheckRefs({ length: BUFFER_SIZE, uptr: buffer.address, refs: 0 }), 'IOMMU_TEST_OP_MD_CHECK_REFS of the buffer after close');
  } finally {
    assertOk(again.close(), 'close(/dev/iommu)');
  }
}

// ---------------------------------------------------------------- vIOMMU, vDEVICE, vEVENTQ, HW queue (7.x)

/** _test_cmd_viommu_alloc(fd, device_id, hwpt_id, 0, type, data, data_len, &viommu_id) as the client issues it. */
function viommuAllocCall(self: Pick<Self, 'fd'>, devId: number, hwptId: number, type: number, data: Uint8Array | null) {
  return self.fd.viommuAlloc({ devId, hwptId, type: type >>> 0, data });
}
/** test_cmd_viommu_alloc(device_id, hwpt_id, type, data, data_len, &viommu_id) */
export function viommuAlloc(self: Pick<Self, 'fd'>, devId: number, hwptId: number, type: number, data: Uint8Array | null): number {
  return assertOk(viommuAllocCall(self, devId, hwptId, type, data), () => `IOMMU_VIOMMU_ALLOC(dev ${devId}, hwpt ${hwptId}, type 0x${(type >>> 0).toString(16)})`).viommuId;
}
/** test_err_viommu_alloc(errno, device_id, hwpt_id, type, data, data_len, &viommu_id) */
export function errViommuAlloc(errno: number, self: Pick<Self, 'fd'>, devId: number, hwptId: number, type: number, data: Uint8Array | null): void {
  expectErrno(errno, viommuAllocCall(self, devId, hwptId, type, data), () => `IOMMU_VIOMMU_ALLOC(dev ${devId}, hwpt ${hwptId}, type 0x${(type >>> 0).toString(16)})`);
}

/** test_cmd_vdevice_alloc(viommu_id, idev_id, virt_id, &vdev_id) */
export function vdeviceAlloc(self: Pick<Self, 'fd'>, viommuId: number, devId: number, virtId: number): number {
  return assertOk(self.fd.vdeviceAlloc({ viommuId, devId, virtId }), () => `IOMMU_VDEVICE_ALLOC(viommu ${viommuId}, dev ${devId}, virt_id 0x${virtId.toString(16)})`).vdeviceId;
}
/** test_err_vdevice_alloc(errno, viommu_id, idev_id, virt_id, &vdev_id) */
export function errVdeviceAlloc(errno: number, self: Pick<Self, 'fd'>, viommuId: number, devId: number, virtId: number): void {
  expectErrno(errno, self.fd.vdeviceAlloc({ viommuId, devId, virtId }), () => `IOMMU_VDEVICE_ALLOC(viommu ${viommuId}, dev ${devId}, virt_id 0x${virtId.toString(16)})`);
}

/** test_cmd_hw_queue_alloc(viommu_id, type, idx, base_addr, len, &out_qid) */
export function hwQueueAlloc(self: Pick<Self, 'fd'>, viommuId: number, type: number, index: number, iova: number | bigint, length: number | bigint): number {
  return assertOk(self.fd.hwQueueAlloc({ viommuId, type, index, nestingParentIova: iova, length }), () => `IOMMU_HW_QUEUE_ALLOC(index ${index}, iova 0x${iova.toString(16)}, length ${length})`).hwQueueId;
}
/** test_err_hw_queue_alloc(errno, viommu_id, type, idx, base_addr, len, &out_qid) */
export function errHwQueueAlloc(errno: number, self: Pick<Self, 'fd'>, viommuId: number, type: number, index: number, iova: number | bigint, length: number | bigint): void {
  expectErrno(errno, self.fd.hwQueueAlloc({ viommuId, type, index, nestingParentIova: iova, length }), () => `IOMMU_HW_QUEUE_ALLOC(index ${index}, iova 0x${iova.toString(16)}, length ${length})`);
}

/** test_cmd_veventq_alloc(viommu_id, type, depth, &veventq_id, &veventq_fd) */
export function veventqAlloc(self: Pick<Self, 'fd'>, viommuId: number, type: number, depth: number): { veventqId: number; veventqFd: number } {
  const r = assertOk(self.fd.veventqAlloc({ viommuId, type, depth }), () => `IOMMU_VEVENTQ_ALLOC(viommu ${viommuId}, depth ${depth})`);
  return { veventqId: r.veventqId, veventqFd: r.veventqFd };
}
/** test_err_veventq_alloc(errno, viommu_id, type, depth, NULL, NULL) */
export function errVeventqAlloc(errno: number, self: Pick<Self, 'fd'>, viommuId: number, type: number, depth: number): void {
  expectErrno(errno, self.fd.veventqAlloc({ viommuId, type, depth }), () => `IOMMU_VEVENTQ_ALLOC(viommu ${viommuId}, depth ${depth})`);
}

/** test_cmd_trigger_vevents(dev_id, nvevents): one IOMMU_TEST_OP_TRIGGER_VEVENT per event, stopping at a failure. */
export function triggerVevents(self: Pick<Self, 'fd'>, devId: number, nvevents: number): void {
  for (let i = 0; i < nvevents; i++) assertOk(self.fd.testTriggerVevent({ devId }), () => `IOMMU_TEST_OP_TRIGGER_VEVENT(dev ${devId}) #${i + 1}`);
}

/**
 * _test_cmd_read_vevents(fd, event_fd, nvevents, virt_id, &prev_seq): poll for
 * POLLIN (1 s), read nvevents vEVENTs' worth of bytes at once, and walk the
 * headers: a lost-events header or a gap in the sequence is EOVERFLOW, an
 * event of another vDEVICE EINVAL (the C reads every event's data at the first
 * event, and so does this). Returns 0 or the errno, with prevSeq.value updated.
 */
export function readVevents(self: Pick<Self, 'fd'>, eventFd: number, nvevents: number, virtId: number, prevSeq: { value: number }): number {
  const POLLIN = 0x1;
  const polled = self.fd.pollEventq(eventFd, POLLIN, 1000);
  if (polled.errno) return polled.errno;
  const hdrSize = U.iommufd_vevent_header.sizeof;
  const evSize = U.iommu_viommu_event_selftest.sizeof;
  const data = new Uint8Array(nvevents * (hdrSize + evSize));
  const r = self.fd.readEventq(eventFd, data);
  if (r.errno || r.bytes <= 0) return EFAULT;
  for (let i = 0; i < nvevents; i++) {
    const hdr = U.iommufd_vevent_header.decode(data.subarray(i * (hdrSize + evSize)));
    // hdr->sequence - *prev_seq > 1, in __u32 arithmetic (prev_seq starts at -1)
    if (hdr.flags & U.IOMMU_VEVENTQ_FLAG_LOST_EVENTS || ((hdr.sequence - prevSeq.value) >>> 0) > 1) {
      prevSeq.value = hdr.sequence | 0;
      return EOVERFLOW;
    }
    prevSeq.value = hdr.sequence | 0;
    const event = U.iommu_viommu_event_selftest.decode(data.subarray(hdrSize));
    if (event.virt_id !== virtId) return EINVAL;
  }
  return 0;
}

/** test_cmd_dev_check_cache(device_id, cache_id, expected) */
export function devCheckCache(self: Pick<Self, 'fd'>, devId: number, cacheId: number, expected: number): void {
  assertOk(self.fd.testDevCheckCache({ devId, cacheId, cache: expected }), () => `IOMMU_TEST_OP_DEV_CHECK_CACHE(dev ${devId}, cache ${cacheId} == 0x${expected.toString(16)})`);
}
/** test_cmd_dev_check_cache_all(device_id, expected) */
export function devCheckCacheAll(self: Pick<Self, 'fd'>, devId: number, expected: number): void {
  for (let c = 0; c < U.MOCK_DEV_CACHE_NUM; c++) devCheckCache(self, devId, c, expected);
}

/** test_cmd_viommu_invalidate(viommu, reqs, lreq, &nreqs): returns the new nreqs. */
export function viommuInvalidate(self: Pick<Self, 'fd'>, viommuId: number, reqs: Uint8Array | null, entryLen: number, entryNum: number): number {
  return hwptInvalidate(self, viommuId, reqs, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entryLen, entryNum);
}
/** test_err_viommu_invalidate(errno, viommu_id, reqs, data_type, lreq, &nreqs): returns the new nreqs. */
export function errViommuInvalidate(errno: number, self: Pick<Self, 'fd'>, viommuId: number, reqs: Uint8Array | null, dataType: number, entryLen: number, entryNum: number): number {
  return errHwptInvalidate(errno, self, viommuId, reqs, dataType, entryLen, entryNum);
}

/** test_err_mmap(errno, length, offset): mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, offset) fails so. */
export function errMmap(errno: number, self: Pick<Self, 'fd'>, length: number | bigint, offset: number | bigint): void {
  const r = self.fd.mmapRegion({ length: Number(length), offset: Number(offset), prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED });
  if (r.mapping) self.fd.sys.munmap(r.mapping);
  expectErrno(errno, r, () => `mmap(iommufd, length ${length}, offset ${offset})`);
}

// ---------------------------------------------------------------- misc

/** A deterministic rand() (xorshift32): the selftest's rand() with a fixed seed. */
let seed = 0x2545f491;
export function rand(): number {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed & 0x7fffffff;
}

/** ffs(): 1 + the index of the least significant set bit, 0 for 0. */
export function ffs(n: number): number {
  if (n === 0) return 0;
  let i = 1;
  while ((n & 1) === 0) {
    n = Math.floor(n / 2);
    i++;
  }
  return i;
}

export type { IommuFd };
