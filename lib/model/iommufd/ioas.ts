// The IOAS ioctls (ioas.c) at the ABI: decode the kernel's copy of the
// struct, call the semantic model (IommufdModel), write back what the kernel
// writes and when.
import * as U from '../../uapi/index.ts';
import { EFAULT, EINVAL, EMSGSIZE } from '../errno.ts';
import { field, iommufdUcmdRespond, ret, setField, type Ucmd } from './ucmd.ts';

/** ioas.c:iommufd_ioas_alloc_ioctl */
export function iommufdIoasAlloc(ucmd: Ucmd): number {
  const r = ucmd.ctx.ioasAlloc({ flags: field(ucmd, 'flags') });
  if (r.errno) return -r.errno;
  setField(ucmd, 'out_ioas_id', r.ioasId);
  // A failed respond destroys the new IOAS again (out_table: iommufd_object_abort_and_destroy).
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) ucmd.ctx.destroy(r.ioasId);
  return rc;
}

/**
 * ioas.c:iommufd_ioas_iova_ranges: each range that fits is copied to
 * allowed_iovas as it is found; then the struct is copied back (num_iovas the
 * total), and only then EMSGSIZE when they did not all fit.
 */
export function iommufdIoasIovaRanges(ucmd: Ucmd): number {
  const max = field(ucmd, 'num_iovas');
  const r = ucmd.ctx.ioasIovaRanges({ ioasId: field(ucmd, 'ioas_id'), capacity: max, reserved: field(ucmd, '__reserved') });
  if (r.errno && r.errno !== EMSGSIZE) return -r.errno;
  const base = field<bigint>(ucmd, 'allowed_iovas');
  for (let i = 0; i < r.ranges.length; i++) {
    const elm = U.iommu_iova_range.encode(r.ranges[i]!);
    if (!ucmd.user.write(base + BigInt(i * elm.length), elm)) return -EFAULT;
  }
  setField(ucmd, 'num_iovas', r.numIovas);
  setField(ucmd, 'out_iova_alignment', r.alignment);
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) return rc;
  return r.numIovas > max ? -EMSGSIZE : 0;
}

/**
 * ioas.c:iommufd_ioas_allow_iovas: after the IOAS lookup the ranges are copied
 * in one by one (iommufd_ioas_load_iovas), each checked as it comes, so a
 * fault at range i comes after the checks of ranges 0..i-1.
 */
export function iommufdIoasAllowIovas(ucmd: Ucmd): number {
  const ioasId = field(ucmd, 'ioas_id');
  const reserved = field(ucmd, '__reserved');
  const ranges: { start: bigint; last: bigint }[] = [];
  if (!reserved && ucmd.ctx.getIoas(ioasId)) {
    const n = field(ucmd, 'num_iovas');
    const base = field<bigint>(ucmd, 'allowed_iovas');
    for (let i = 0; i < n; i++) {
      const b = ucmd.user.read(base + BigInt(i * U.iommu_iova_range.sizeof), U.iommu_iova_range.sizeof);
      if (!b) return -EFAULT;
      const r = U.iommu_iova_range.decode(b);
      if (r.start >= r.last || ranges.some((o) => o.start <= r.last && r.start <= o.last)) return -EINVAL;
      ranges.push(r);
    }
  }
  return ret(ucmd.ctx.ioasAllowIovas({ ioasId, ranges, reserved }).errno);
}

/** ioas.c:iommufd_ioas_map */
export function iommufdIoasMap(ucmd: Ucmd): number {
  const r = ucmd.ctx.ioasMap({
    ioasId: field(ucmd, 'ioas_id'),
    flags: field(ucmd, 'flags'),
    userVa: field<bigint>(ucmd, 'user_va'),
    length: field<bigint>(ucmd, 'length'),
    iova: field<bigint>(ucmd, 'iova'),
    reserved: field(ucmd, '__reserved'),
  });
  if (r.errno) return -r.errno;
  setField(ucmd, 'iova', r.iova);
  return iommufdUcmdRespond(ucmd);
}

/** ioas.c:iommufd_ioas_map_file (7.x): the fd is looked up in the caller's fd table (dma_buf_get, fget). */
export function iommufdIoasMapFile(ucmd: Ucmd): number {
  const r = ucmd.ctx.ioasMapFile({
    ioasId: field(ucmd, 'ioas_id'),
    flags: field(ucmd, 'flags'),
    file: ucmd.fds.fileOf(field(ucmd, 'fd')),
    start: field<bigint>(ucmd, 'start'),
    length: field<bigint>(ucmd, 'length'),
    iova: field<bigint>(ucmd, 'iova'),
  });
  if (r.errno) return -r.errno;
  setField(ucmd, 'iova', r.iova);
  return iommufdUcmdRespond(ucmd);
}

/** ioas.c:iommufd_ioas_copy */
export function iommufdIoasCopy(ucmd: Ucmd): number {
  const r = ucmd.ctx.ioasCopy({
    flags: field(ucmd, 'flags'),
    dstIoasId: field(ucmd, 'dst_ioas_id'),
    srcIoasId: field(ucmd, 'src_ioas_id'),
    length: field<bigint>(ucmd, 'length'),
    dstIova: field<bigint>(ucmd, 'dst_iova'),
    srcIova: field<bigint>(ucmd, 'src_iova'),
  });
  if (r.errno) return -r.errno;
  setField(ucmd, 'dst_iova', r.dstIova);
  return iommufdUcmdRespond(ucmd);
}

/** ioas.c:iommufd_ioas_unmap */
export function iommufdIoasUnmap(ucmd: Ucmd): number {
  const r = ucmd.ctx.ioasUnmap({ ioasId: field(ucmd, 'ioas_id'), iova: field<bigint>(ucmd, 'iova'), length: field<bigint>(ucmd, 'length') });
  if (r.errno) return -r.errno;
  setField(ucmd, 'length', r.length);
  return iommufdUcmdRespond(ucmd);
}

/** main.c:iommufd_option: only val64 is copied back, and only on success. */
export function iommufdOption(ucmd: Ucmd): number {
  const r = ucmd.ctx.option({
    optionId: field(ucmd, 'option_id'),
    op: field(ucmd, 'op'),
    objectId: field(ucmd, 'object_id'),
    val64: field<bigint>(ucmd, 'val64'),
    reserved: field(ucmd, '__reserved'),
  });
  if (r.errno) return -r.errno;
  const val = new Uint8Array(8);
  new DataView(val.buffer).setBigUint64(0, r.val64, true);
  return ucmd.arg.write(U.iommu_option.offsetOf('val64'), val) ? 0 : -EFAULT;
}

/** ioas.c:iommufd_ioas_change_process (7.x): nothing is copied back. */
export function iommufdIoasChangeProcess(ucmd: Ucmd): number {
  return ret(ucmd.ctx.ioasChangeProcess({ reserved: field(ucmd, '__reserved') }).errno);
}
