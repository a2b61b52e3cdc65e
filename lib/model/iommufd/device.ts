// IOMMU_GET_HW_INFO (device.c) at the ABI.
import { EFAULT, EOPNOTSUPP } from '../errno.ts';
import { field, iommufdUcmdRespond, setField, type Ucmd } from './ucmd.ts';

/**
 * device.c:iommufd_get_hw_info: the driver's data is copied to data_uptr and
 * the rest of the user's data_len zeroed (clear_user) before the struct is
 * copied back with the kernel's data_len.
 */
export function iommufdGetHwInfo(ucmd: Ucmd): number {
  const reserved = field<number[]>(ucmd, '__reserved');
  if (field(ucmd, 'flags') || reserved.some((b) => b !== 0)) return -EOPNOTSUPP;
  const userLen = field(ucmd, 'data_len');
  const r = ucmd.ctx.getHwInfo({ devId: field(ucmd, 'dev_id'), dataLen: userLen, flags: 0 });
  if (r.errno) return -r.errno;
  if (userLen > 0 && !ucmd.user.write(field<bigint>(ucmd, 'data_uptr'), r.data)) return -EFAULT;
  setField(ucmd, 'out_data_type', r.dataType);
  setField(ucmd, 'data_len', r.dataLen);
  setField(ucmd, 'out_capabilities', r.capabilities);
  setField(ucmd, 'out_max_pasid_log2', r.maxPasidLog2);
  return iommufdUcmdRespond(ucmd);
}
