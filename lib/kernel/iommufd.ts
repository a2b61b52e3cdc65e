// A typed client for /dev/iommu: one method per iommufd ioctl and per
// IOMMU_TEST_CMD op, each returning `{ errno, ...outputs }` with errno 0 on
// success. Inputs use camelCase names for the kernel's fields; outputs are
// read back from the struct the kernel wrote (also on failure, where the
// kernel may have written part of it: callers decide what that means).
import { O_CLOEXEC, O_RDWR, coreSys, type Mapping, type SysCore } from '../sys/index.ts';
import * as U from '../uapi/index.ts';
import { callBytes, callStruct, DeviceFile, errnoOf, openDevice, type Errno } from './ioctl-call.ts';

export type U64 = bigint | number;

export interface IovaRange {
  start: bigint;
  last: bigint;
}

export class IommuFd extends DeviceFile {
  static readonly PATH = '/dev/iommu';

  /** Opens /dev/iommu; `errno` is set (and `iommufd` null) when it cannot be opened. */
  static open(sys: SysCore = coreSys(), path = IommuFd.PATH): { errno: number; iommufd: IommuFd | null } {
    const { errno, fd } = openDevice(path, O_RDWR | O_CLOEXEC, sys);
    return { errno, iommufd: errno === 0 ? new IommuFd(path, fd, sys) : null };
  }

  // ------------------------------------------------------------ objects

  destroy(id: number): Errno {
    const r = callStruct(this.sys, this.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id });
    return { errno: r.errno };
  }

  // ------------------------------------------------------------ IOAS

  ioasAlloc(args: { flags?: number } = {}): Errno & { ioasId: number } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, { flags: args.flags ?? 0 });
    return { errno: r.errno, ioasId: r.out.out_ioas_id };
  }

  /**
   * IOMMU_IOAS_IOVA_RANGES with room for `capacity` ranges. On EMSGSIZE
   * `numIovas` still tells how many there are.
   */
  ioasIovaRanges(args: { ioasId: number; capacity?: number; reserved?: number }): Errno & {
    numIovas: number;
    alignment: bigint;
    ranges: IovaRange[];
  } {
    const capacity = args.capacity ?? 16;
    const array = new Uint8Array(Math.max(capacity, 1) * U.iommu_iova_range.sizeof);
    const r = callStruct(this.sys, this.fd, U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, {
      ioas_id: args.ioasId,
      num_iovas: capacity,
      __reserved: args.reserved ?? 0,
      allowed_iovas: capacity > 0 ? this.sys.addressOf(array) : 0n,
    });
    const stored = Math.min(r.out.num_iovas, capacity);
    const ranges = r.errno === 0 || r.errno === 90 /* EMSGSIZE */ ? U.iommu_iova_range.decodeArray(array).slice(0, stored) : [];
    return { errno: r.errno, numIovas: r.out.num_iovas, alignment: r.out.out_iova_alignment, ranges };
  }

  ioasAllowIovas(args: { ioasId: number; ranges: { start: U64; last: U64 }[]; reserved?: number }): Errno {
    const array = U.iommu_iova_range.encodeArray(args.ranges);
    const r = callStruct(this.sys, this.fd, U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, {
      ioas_id: args.ioasId,
      num_iovas: args.ranges.length,
      __reserved: args.reserved ?? 0,
      allowed_iovas: args.ranges.length > 0 ? this.sys.addressOf(array) : 0n,
    });
    return { errno: r.errno };
  }

  ioasMap(args: { ioasId: number; flags: number; userVa: U64; length: U64; iova?: U64; reserved?: number }): Errno & { iova: bigint } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
      flags: args.flags,
      ioas_id: args.ioasId,
      __reserved: args.reserved ?? 0,
      user_va: args.userVa,
      length: args.length,
      iova: args.iova ?? 0,
    });
    return { errno: r.errno, iova: r.out.iova };
  }

  ioasCopy(args: { dstIoasId: number; srcIoasId: number; flags: number; length: U64; dstIova?: U64; srcIova: U64 }): Errno & { dstIova: bigint } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, {
      flags: args.flags,
      dst_ioas_id: args.dstIoasId,
      src_ioas_id: args.srcIoasId,
      length: args.length,
      dst_iova: args.dstIova ?? 0,
      src_iova: args.srcIova,
    });
    return { errno: r.errno, dstIova: r.out.dst_iova };
  }

  ioasUnmap(args: { ioasId: number; iova: U64; length: U64 }): Errno & { length: bigint } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, {
      ioas_id: args.ioasId,
      iova: args.iova,
      length: args.length,
    });
    return { errno: r.errno, length: r.out.length };
  }

  // ------------------------------------------------------------ options and compat

  option(args: { optionId: number; op: number; objectId?: number; val64?: U64; reserved?: number }): Errno & { val64: bigint } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_OPTION, U.iommu_option, {
      option_id: args.optionId,
      op: args.op,
      __reserved: args.reserved ?? 0,
      object_id: args.objectId ?? 0,
      val64: args.val64 ?? 0,
    });
    return { errno: r.errno, val64: r.out.val64 };
  }

  vfioIoas(args: { op: number; ioasId?: number; reserved?: number }): Errno & { ioasId: number } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, {
      ioas_id: args.ioasId ?? 0,
      op: args.op,
      __reserved: args.reserved ?? 0,
    });
    return { errno: r.errno, ioasId: r.out.ioas_id };
  }

  // ------------------------------------------------------------ HWPT and device info

  hwptAlloc(args: { flags?: number; devId: number; ptId: number; dataType?: number; data?: Uint8Array; faultId?: number }): Errno & { hwptId: number } {
    const data = args.data;
    const r = callStruct(this.sys, this.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
      flags: args.flags ?? 0,
      dev_id: args.devId,
      pt_id: args.ptId,
      data_type: args.dataType ?? U.IOMMU_HWPT_DATA_NONE,
      data_len: data?.byteLength ?? 0,
      data_uptr: data && data.byteLength > 0 ? this.sys.addressOf(data) : 0n,
      fault_id: args.faultId ?? 0,
    });
    return { errno: r.errno, hwptId: r.out.out_hwpt_id };
  }

  /**
   * `data`: the caller's buffer (data_len is its length), else a zeroed one of `dataLen` bytes (64 by default).
   * `inDataType`: in_data_type, which the kernel reads with IOMMU_HW_INFO_FLAG_INPUT_TYPE in `flags` (7.x).
   */
  getHwInfo(args: { devId: number; dataLen?: number; flags?: number; data?: Uint8Array; inDataType?: number }): Errno & {
    dataLen: number;
    dataType: number;
    capabilities: bigint;
    maxPasidLog2: number;
    data: Uint8Array;
  } {
    const data = args.data ?? new Uint8Array(args.dataLen ?? 64);
    const r = callStruct(this.sys, this.fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, {
      flags: args.flags ?? 0,
      dev_id: args.devId,
      data_len: data.byteLength,
      data_uptr: data.byteLength > 0 ? this.sys.addressOf(data) : 0n,
      in_data_type: args.inDataType ?? 0,
    });
    return {
      errno: r.errno,
      dataLen: r.out.data_len,
      dataType: r.out.out_data_type,
      capabilities: r.out.out_capabilities,
      maxPasidLog2: r.out.out_max_pasid_log2,
      data,
    };
  }

  hwptSetDirtyTracking(args: { hwptId: number; enable: boolean; flags?: number }): Errno {
    const r = callStruct(this.sys, this.fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, {
      flags: args.flags ?? (args.enable ? U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0),
      hwpt_id: args.hwptId,
    });
    return { errno: r.errno };
  }

  /** Dirty bits land in `bitmap` (one bit per page_size, from iova). */
  hwptGetDirtyBitmap(args: { hwptId: number; flags?: number; iova: U64; length: U64; pageSize: U64; bitmap: Uint8Array }): Errno {
    const r = callStruct(this.sys, this.fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, {
      hwpt_id: args.hwptId,
      flags: args.flags ?? 0,
      iova: args.iova,
      length: args.length,
      page_size: args.pageSize,
      data: this.sys.addressOf(args.bitmap),
    });
    return { errno: r.errno };
  }

  /** `entries` holds entryNum entries of entryLen bytes; the kernel reports how many it handled. */
  hwptInvalidate(args: { hwptId: number; dataType: number; entryLen: number; entryNum: number; entries: Uint8Array | null }): Errno & { entryNum: number } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, {
      hwpt_id: args.hwptId,
      data_uptr: args.entries && args.entries.byteLength > 0 ? this.sys.addressOf(args.entries) : 0n,
      data_type: args.dataType,
      entry_len: args.entryLen,
      entry_num: args.entryNum,
    });
    return { errno: r.errno, entryNum: r.out.entry_num };
  }

  faultQueueAlloc(args: { flags?: number } = {}): Errno & { faultId: number; faultFd: number } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, { flags: args.flags ?? 0 });
    return { errno: r.errno, faultId: r.out.out_fault_id, faultFd: r.out.out_fault_fd };
  }

  // ------------------------------------------------------------ vIOMMU, vDEVICE, vEVENTQ, HW queue (7.x)

  /** IOMMU_VIOMMU_ALLOC. `data` (the driver's struct) is the caller's buffer: the kernel writes its outputs there. */
  viommuAlloc(args: { flags?: number; type: number; devId: number; hwptId: number; data?: Uint8Array | null; dataLen?: number; dataUptr?: U64 }): Errno & { viommuId: number } {
    const data = args.data ?? null;
    const r = callStruct(this.sys, this.fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, {
      flags: args.flags ?? 0,
      type: args.type,
      dev_id: args.devId,
      hwpt_id: args.hwptId,
      data_len: args.dataLen ?? data?.byteLength ?? 0,
      data_uptr: args.dataUptr ?? (data && data.byteLength > 0 ? this.sys.addressOf(data) : 0n),
    });
    return { errno: r.errno, viommuId: r.out.out_viommu_id };
  }

  vdeviceAlloc(args: { viommuId: number; devId: number; virtId: U64 }): Errno & { vdeviceId: number } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: args.viommuId, dev_id: args.devId, virt_id: args.virtId });
    return { errno: r.errno, vdeviceId: r.out.out_vdevice_id };
  }

  veventqAlloc(args: { flags?: number; viommuId: number; type: number; depth: number; reserved?: number }): Errno & { veventqId: number; veventqFd: number } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, {
      flags: args.flags ?? 0,
      viommu_id: args.viommuId,
      type: args.type,
      veventq_depth: args.depth,
      __reserved: args.reserved ?? 0,
    });
    return { errno: r.errno, veventqId: r.out.out_veventq_id, veventqFd: r.out.out_veventq_fd };
  }

  hwQueueAlloc(args: { flags?: number; viommuId: number; type: number; index: number; nestingParentIova: U64; length: U64 }): Errno & { hwQueueId: number } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, {
      flags: args.flags ?? 0,
      viommu_id: args.viommuId,
      type: args.type,
      index: args.index,
      nesting_parent_iova: args.nestingParentIova,
      length: args.length,
    });
    return { errno: r.errno, hwQueueId: r.out.out_hw_queue_id };
  }

  /**
   * read(2) of an event queue fd (a vEVENTQ's, or a fault queue's) into `buffer`:
   * `bytes` is how many it returned (the vEVENTs that fit, whole), 0 when empty.
   */
  readEventq(fd: number, buffer: Uint8Array): Errno & { bytes: number } {
    const ret = this.sys.read(fd, buffer);
    return { errno: ret < 0 ? -ret : 0, bytes: ret < 0 ? 0 : ret };
  }

  /** poll(2) of an event queue fd: its revents (POLLIN while something is queued), 0 on timeout. */
  pollEventq(fd: number, events: number, timeoutMs: number): Errno & { revents: number } {
    const ret = this.sys.poll(fd, events, timeoutMs);
    return { errno: ret < 0 ? -ret : 0, revents: ret < 0 ? 0 : ret };
  }

  /** mmap(2) of this iommufd at `offset`: a driver's region (a vIOMMU's, from its alloc data); `mapping` is null on failure. */
  mmapRegion(args: { length: number; offset: number; prot: number; flags: number }): Errno & { mapping: Mapping | null } {
    const r = this.sys.mmap(args.length, args.prot, args.flags, this.fd, args.offset);
    return typeof r === 'number' ? { errno: -r, mapping: null } : { errno: 0, mapping: r };
  }

  // ------------------------------------------------------------ IOMMU_TEST_CMD (CONFIG_IOMMUFD_TEST)

  /** Any IOMMU_TEST_CMD op: `fields` fills the union member of that op. */
  testCmd(op: number, id: number, fields: Omit<Parameters<typeof U.iommu_test_cmd.encode>[0], 'op' | 'id'> = {}) {
    // As encode({ ...fields, op, id }) (the same bytes, the same errors in the same order), without
    // spreading a differently shaped object into a new one on every call.
    const bytes = U.iommu_test_cmd.encode(fields);
    U.iommu_test_cmd.write(bytes, 'op', op);
    U.iommu_test_cmd.write(bytes, 'id', id);
    return callBytes(this.sys, this.fd, U.IOMMU_TEST_CMD, U.iommu_test_cmd, bytes);
  }

  testAddReserved(args: { ioasId: number; start: U64; length: U64 }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_ADD_RESERVED, args.ioasId, { add_reserved: { start: args.start, length: args.length } }).errno };
  }

  testMockDomain(args: { ptId: number }): Errno & { stdevId: number; hwptId: number; idevId: number } {
    const r = this.testCmd(U.IOMMU_TEST_OP_MOCK_DOMAIN, args.ptId);
    const m = r.out.mock_domain;
    return { errno: r.errno, stdevId: m.out_stdev_id, hwptId: m.out_hwpt_id, idevId: m.out_idev_id };
  }

  testMockDomainFlags(args: { ptId: number; devFlags: number }): Errno & { stdevId: number; hwptId: number; idevId: number } {
    const r = this.testCmd(U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, args.ptId, { mock_domain_flags: { dev_flags: args.devFlags } });
    const m = r.out.mock_domain_flags;
    return { errno: r.errno, stdevId: m.out_stdev_id, hwptId: m.out_hwpt_id, idevId: m.out_idev_id };
  }

  testMockDomainReplace(args: { stdevId: number; ptId: number }): Errno & { ptId: number } {
    const r = this.testCmd(U.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, args.stdevId, { mock_domain_replace: { pt_id: args.ptId } });
    return { errno: r.errno, ptId: r.out.mock_domain_replace.pt_id };
  }

  testCheckMap(args: { hwptId: number; iova: U64; length: U64; uptr: U64 }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_MD_CHECK_MAP, args.hwptId, { check_map: { iova: args.iova, length: args.length, uptr: args.uptr } }).errno };
  }

  testCheckRefs(args: { length: U64; uptr: U64; refs: number }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_MD_CHECK_REFS, 0, { check_refs: { length: args.length, uptr: args.uptr, refs: args.refs } }).errno };
  }

  testCreateAccess(args: { ioasId: number; flags?: number }): Errno & { accessFd: number } {
    const r = this.testCmd(U.IOMMU_TEST_OP_CREATE_ACCESS, args.ioasId, { create_access: { flags: args.flags ?? 0 } });
    return { errno: r.errno, accessFd: r.out.create_access.out_access_fd };
  }

  testDestroyAccessPages(args: { accessFd: number; accessPagesId: number }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, args.accessFd, { destroy_access_pages: { access_pages_id: args.accessPagesId } }).errno };
  }

  testAccessPages(args: { accessFd: number; flags?: number; iova: U64; length: U64; uptr: U64 }): Errno & { accessPagesId: number } {
    const r = this.testCmd(U.IOMMU_TEST_OP_ACCESS_PAGES, args.accessFd, {
      access_pages: { flags: args.flags ?? 0, iova: args.iova, length: args.length, uptr: args.uptr },
    });
    return { errno: r.errno, accessPagesId: r.out.access_pages.out_access_pages_id };
  }

  testAccessRw(args: { accessFd: number; iova: U64; length: U64; uptr: U64; flags?: number }): Errno {
    return {
      errno: this.testCmd(U.IOMMU_TEST_OP_ACCESS_RW, args.accessFd, {
        access_rw: { iova: args.iova, length: args.length, uptr: args.uptr, flags: args.flags ?? 0 },
      }).errno,
    };
  }

  testSetTempMemoryLimit(args: { limit: number }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0, { memory_limit: { limit: args.limit } }).errno };
  }

  testAccessReplaceIoas(args: { accessFd: number; ioasId: number }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, args.accessFd, { access_replace_ioas: { ioas_id: args.ioasId } }).errno };
  }

  testDirty(args: { hwptId: number; flags?: number; iova: U64; length: U64; pageSize: U64; uptr: U64 }): Errno & { nrDirty: bigint } {
    const r = this.testCmd(U.IOMMU_TEST_OP_DIRTY, args.hwptId, {
      dirty: { flags: args.flags ?? 0, iova: args.iova, length: args.length, page_size: args.pageSize, uptr: args.uptr },
    });
    return { errno: r.errno, nrDirty: r.out.dirty.out_nr_dirty };
  }

  testCheckIotlb(args: { hwptId: number; iotlbId: number; iotlb: number }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_MD_CHECK_IOTLB, args.hwptId, { check_iotlb: { id: args.iotlbId, iotlb: args.iotlb } }).errno };
  }

  testTriggerIopf(args: { devId: number; pasid: number; grpid: number; perm: number; addr: U64 }): Errno {
    return {
      errno: this.testCmd(U.IOMMU_TEST_OP_TRIGGER_IOPF, 0, {
        trigger_iopf: { dev_id: args.devId, pasid: args.pasid, grpid: args.grpid, perm: args.perm, addr: args.addr },
      }).errno,
    };
  }

  // vIOMMU (7.x)
  testDevCheckCache(args: { devId: number; cacheId: number; cache: number }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_DEV_CHECK_CACHE, args.devId, { check_dev_cache: { id: args.cacheId, cache: args.cache } }).errno };
  }

  testTriggerVevent(args: { devId: number }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_TRIGGER_VEVENT, 0, { trigger_vevent: { dev_id: args.devId } }).errno };
  }

  // ------------------------------------------------------------ PASID and CHANGE_PROCESS (7.x: issue 13)

  /** IOMMU_IOAS_CHANGE_PROCESS: every IOAS's pinned-page accounting moves to the calling process. */
  ioasChangeProcess(args: { reserved?: number } = {}): Errno {
    return { errno: callStruct(this.sys, this.fd, U.IOMMU_IOAS_CHANGE_PROCESS, U.iommu_ioas_change_process, { __reserved: args.reserved ?? 0 }).errno };
  }

  /** IOMMU_TEST_OP_PASID_ATTACH: `ptId` back is the HWPT attached (pt_id, as iommufd_device_attach writes it). */
  testPasidAttach(args: { stdevId: number; pasid: number; ptId: number }): Errno & { ptId: number } {
    const r = this.testCmd(U.IOMMU_TEST_OP_PASID_ATTACH, args.stdevId, { pasid_attach: { pasid: args.pasid, pt_id: args.ptId } });
    return { errno: r.errno, ptId: r.out.pasid_attach.pt_id };
  }

  /** IOMMU_TEST_OP_PASID_REPLACE (selftest.c reads it through the pasid_attach member; the layouts are the same). */
  testPasidReplace(args: { stdevId: number; pasid: number; ptId: number }): Errno & { ptId: number } {
    const r = this.testCmd(U.IOMMU_TEST_OP_PASID_REPLACE, args.stdevId, { pasid_replace: { pasid: args.pasid, pt_id: args.ptId } });
    return { errno: r.errno, ptId: r.out.pasid_replace.pt_id };
  }

  testPasidDetach(args: { stdevId: number; pasid: number }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_PASID_DETACH, args.stdevId, { pasid_detach: { pasid: args.pasid } }).errno };
  }

  /** IOMMU_TEST_OP_PASID_CHECK_HWPT: 0 when `pasid` has `hwptId`'s domain (hwptId 0: no domain), else EINVAL. */
  testPasidCheckHwpt(args: { stdevId: number; pasid: number; hwptId: number }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_PASID_CHECK_HWPT, args.stdevId, { pasid_check: { pasid: args.pasid, hwpt_id: args.hwptId } }).errno };
  }

  // ------------------------------------------------------------ IOMMU_IOAS_MAP_FILE and the selftest's dma-bufs (7.x)

  /** IOMMU_IOAS_MAP_FILE: `length` bytes of the memfd or dma-buf `fd` from byte `start`; flags as for ioasMap. */
  ioasMapFile(args: { ioasId: number; flags: number; fd: number; start: U64; length: U64; iova?: U64 }): Errno & { iova: bigint } {
    const r = callStruct(this.sys, this.fd, U.IOMMU_IOAS_MAP_FILE, U.iommu_ioas_map_file, {
      flags: args.flags,
      ioas_id: args.ioasId,
      fd: args.fd,
      start: args.start,
      length: args.length,
      iova: args.iova ?? 0,
    });
    return { errno: r.errno, iova: r.out.iova };
  }

  /** IOMMU_TEST_OP_DMABUF_GET: a dma-buf of `length` bytes (page-aligned up); its fd is the ioctl's value. */
  testDmabufGet(args: { length: number; openFlags?: number }): Errno & { dmabufFd: number } {
    const r = this.testCmd(U.IOMMU_TEST_OP_DMABUF_GET, 0, { dmabuf_get: { length: args.length, open_flags: args.openFlags ?? O_CLOEXEC } });
    return { errno: r.errno, dmabufFd: r.errno ? -1 : r.ret };
  }

  /** IOMMU_TEST_OP_DMABUF_REVOKE: marks the dma-buf revoked (or not) and invalidates every mapping of it. */
  testDmabufRevoke(args: { dmabufFd: number; revoked: boolean }): Errno {
    return { errno: this.testCmd(U.IOMMU_TEST_OP_DMABUF_REVOKE, 0, { dmabuf_revoke: { dmabuf_fd: args.dmabufFd, revoked: args.revoked ? 1 : 0 } }).errno };
  }

  /** Closes an access fd made by testCreateAccess (that is how an access is destroyed). */
  closeAccess(accessFd: number): Errno {
    return { errno: errnoOf(this.sys.close(accessFd)) };
  }
}
