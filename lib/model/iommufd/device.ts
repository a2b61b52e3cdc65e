// IOMMU_GET_HW_INFO (device.c) at the ABI.
import { EFAULT, EOPNOTSUPP } from '../errno.ts';
import { field, iommufdUcmdRespond, setField, type Ucmd } from './ucmd.ts';

/** iommufd.h IOMMU_HW_INFO_FLAG_INPUT_TYPE (later than 6.12's uAPI). */
const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1;

/**
 * device.c:iommufd_get_hw_info: the driver's data is copied to data_uptr and
 * the rest of the user's data_len zeroed (clear_user) before the struct is
 * copied back with the kernel's data_len.
 */
export function iommufdGetHwInfo(ucmd: Ucmd): number {
  const reserved = field<number[]>(ucmd, '__reserved');
  // IOMMU_HW_INFO_FLAG_INPUT_TYPE where the kernel has it (KernelBehaviour.hwInfoInputType); without it,
  // "Clear the type field since drivers don't support a random input".
  const flags = field<number>(ucmd, 'flags');
  const supported = ucmd.ctx.behaviour.hwInfoInputType ? IOMMU_HW_INFO_FLAG_INPUT_TYPE : 0;
  if (flags & ~supported || reserved.some((b) => b !== 0)) return -EOPNOTSUPP;
  const inDataType = flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE ? field<number>(ucmd, 'out_data_type') : 0;
  const userLen = field(ucmd, 'data_len');
  const r = ucmd.ctx.getHwInfo({ devId: field(ucmd, 'dev_id'), dataLen: userLen, flags: 0, inDataType });
  if (r.errno) return -r.errno;
  if (userLen > 0 && !ucmd.user.write(field<bigint>(ucmd, 'data_uptr'), r.data)) return -EFAULT;
  setField(ucmd, 'out_data_type', r.dataType);
  setField(ucmd, 'data_len', r.dataLen);
  setField(ucmd, 'out_capabilities', r.capabilities);
  setField(ucmd, 'out_max_pasid_log2', r.maxPasidLog2);
  return iommufdUcmdRespond(ucmd);
}
