// The HWPT ioctls (hw_pagetable.c) at the ABI.
import { EFAULT, EOPNOTSUPP } from '../errno.ts';
import { HugeIoptesUnknown } from '../iommufd.ts';
import { ModelCannotAnswer } from '../uaccess.ts';
import { field, iommufdUcmdRespond, setField, type Ucmd } from './ucmd.ts';

const IOMMU_HWPT_DATA_NONE = 0;
/** hw_pagetable.c IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX */
const ENTRY_NUM_MAX = 1 << 19;
const PAGE_SIZE = 4096;

/**
 * hw_pagetable.c:iommufd_hwpt_alloc. The driver data (data_uptr, data_len)
 * is copied by the driver (iommu_copy_struct_from_user) after its own
 * checks: the semantic model gets the bytes, or the fault.
 */
export function iommufdHwptAlloc(ucmd: Ucmd): number {
  if (field(ucmd, '__reserved')) return -EOPNOTSUPP;
  const dataType = field(ucmd, 'data_type');
  const dataLen = field(ucmd, 'data_len');
  const uptr = field<bigint>(ucmd, 'data_uptr');
  let data: Uint8Array | undefined;
  let dataFault = false;
  if (dataType !== IOMMU_HWPT_DATA_NONE && dataLen > 0) {
    // Only a data_len the driver accepts is ever copied (the selftest's: exactly 4 bytes).
    const read = dataLen <= PAGE_SIZE ? ucmd.user.read(uptr, dataLen) : null;
    data = read ? read.slice() : new Uint8Array(Math.min(dataLen, PAGE_SIZE + 1));
    dataFault = read === null && dataLen <= PAGE_SIZE;
  } else if (dataLen > 0) {
    data = new Uint8Array(Math.min(dataLen, PAGE_SIZE + 1));
  }
  const r = ucmd.ctx.hwptAlloc({
    flags: field(ucmd, 'flags'),
    devId: field(ucmd, 'dev_id'),
    ptId: field(ucmd, 'pt_id'),
    dataType,
    data,
    dataFault,
    faultId: field(ucmd, 'fault_id'),
  });
  if (r.errno) return -r.errno;
  setField(ucmd, 'out_hwpt_id', r.hwptId);
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) ucmd.ctx.destroy(r.hwptId);
  return rc;
}

/** hw_pagetable.c:iommufd_hwpt_set_dirty_tracking */
export function iommufdHwptSetDirtyTracking(ucmd: Ucmd): number {
  if (field(ucmd, '__reserved')) return -EOPNOTSUPP;
  const flags = field(ucmd, 'flags');
  return -ucmd.ctx.hwptSetDirtyTracking({ hwptId: field(ucmd, 'hwpt_id'), enable: (flags & 1) !== 0, flags }).errno || 0;
}

/**
 * hw_pagetable.c:iommufd_hwpt_get_dirty_bitmap: bits are set in the user
 * bitmap at `data` (iova_bitmap pins its pages as it walks; a failed pin
 * only stops the walk, the ioctl still succeeds).
 */
export function iommufdHwptGetDirtyBitmap(ucmd: Ucmd): number {
  if (field(ucmd, '__reserved')) return -EOPNOTSUPP;
  const length = field<bigint>(ucmd, 'length');
  const pageSize = field<bigint>(ucmd, 'page_size');
  const data = field<bigint>(ucmd, 'data');
  const nbytes = pageSize > 0n ? (length / pageSize + 7n) / 8n : 0n;
  if (nbytes > 64n << 20n) throw new ModelCannotAnswer('dirty bitmap larger than the model follows', `${nbytes} bytes`);
  let user: Uint8Array | null = null;
  try {
    user = nbytes > 0n ? ucmd.user.read(data, Number(nbytes)) : new Uint8Array(0);
  } catch (e) {
    if (!(e instanceof ModelCannotAnswer)) throw e;
  }
  const bitmap = user ? user.slice() : new Uint8Array(Number(nbytes));
  let r: { errno: number };
  try {
    r = ucmd.ctx.hwptGetDirtyBitmap({
      hwptId: field(ucmd, 'hwpt_id'),
      flags: field(ucmd, 'flags'),
      iova: field<bigint>(ucmd, 'iova'),
      length,
      pageSize,
      bitmap,
    });
  } catch (e) {
    if (e instanceof HugeIoptesUnknown) throw new ModelCannotAnswer('hugetlb buffer under 1 MiB mock IOPTEs', e.message);
    throw e;
  }
  if (r.errno) return -r.errno;
  if (!user) {
    if (bitmap.some((b) => b !== 0)) throw new ModelCannotAnswer('dirty bitmap in memory the model was not told about');
    return 0;
  }
  if (!ucmd.user.write(data, bitmap)) throw new ModelCannotAnswer('dirty bitmap in memory the model was not told about');
  return 0;
}

/**
 * hw_pagetable.c:iommufd_hwpt_invalidate: entry_num is copied back with the
 * number of entries handled on every path, failures included.
 */
export function iommufdHwptInvalidate(ucmd: Ucmd): number {
  let rc: number;
  let done = 0;
  if (field(ucmd, '__reserved')) {
    rc = -EOPNOTSUPP;
  } else {
    const entryLen = field(ucmd, 'entry_len');
    const entryNum = field(ucmd, 'entry_num');
    const uptr = field<bigint>(ucmd, 'data_uptr');
    let entries: Uint8Array | null = null;
    if (uptr && entryNum && entryLen && entryLen <= PAGE_SIZE && entryNum <= ENTRY_NUM_MAX) {
      // The readable entries, in order: the driver copies them one at a time and stops at a fault.
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < entryNum; i++) {
        const b = ucmd.user.read(uptr + BigInt(i * entryLen), entryLen);
        if (!b) break;
        chunks.push(b);
      }
      if (chunks.length === 0) throw new ModelCannotAnswer('HWPT_INVALIDATE entries at an address that faults');
      entries = new Uint8Array(chunks.length * entryLen);
      chunks.forEach((c, i) => entries!.set(c, i * entryLen));
    }
    const r = ucmd.ctx.hwptInvalidate({ hwptId: field(ucmd, 'hwpt_id'), dataType: field(ucmd, 'data_type'), entryLen, entryNum, entries });
    rc = r.errno ? -r.errno : 0;
    if (r.errno === EFAULT && entries && entries.length < entryNum * entryLen) rc = -EFAULT;
    done = r.entryNum;
  }
  setField(ucmd, 'entry_num', done);
  if (iommufdUcmdRespond(ucmd)) return -EFAULT;
  return rc;
}
