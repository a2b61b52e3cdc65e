// IOMMU_FAULT_QUEUE_ALLOC (fault.c) at the ABI: the new fault fd is installed in the process.
import { field, iommufdUcmdRespond, setField, type Ucmd } from './ucmd.ts';

export function iommufdFaultAlloc(ucmd: Ucmd): number {
  const r = ucmd.ctx.faultQueueAlloc({ flags: field(ucmd, 'flags') });
  if (r.errno) return -r.errno;
  setField(ucmd, 'out_fault_id', r.faultId);
  setField(ucmd, 'out_fault_fd', ucmd.fds.install(ucmd.ctx, 'fault', r.faultFd));
  return iommufdUcmdRespond(ucmd);
}
