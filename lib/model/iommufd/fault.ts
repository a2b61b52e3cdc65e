// The fault queue (IOMMUFD_OBJ_FAULT): 6.12's fault.c, 7.x's eventq.c
// ("IOMMUFD_OBJ_FAULT Functions"); IOMMU_FAULT_QUEUE_ALLOC at the ABI, what a
// page fault puts in the queue, what its fd reads, takes and polls. The read,
// write and poll code is the same in both trees (6.12.117 fault.c and 7.2.13
// eventq.c, line for line); where a fault comes from differs only in which
// HWPTs take a fault ID (KernelBehaviour.hwptPagingFault).
//
// The queue, as the kernel keeps it:
// - io-pgfault.c:iommu_report_device_fault hands a page request to the
//   domain's iopf_handler (iommufd_fault_iopf_handler, set by IOMMU_HWPT_ALLOC
//   with IOMMU_HWPT_FAULT_ID_VALID) of the attach handle found for it
//   (find_fault_handler), as one iopf_group, appended to fault->deliver;
// - a read hands out whole groups, each given a cookie (xa_alloc into
//   fault->response, XA_FLAGS_ALLOC1: the lowest free index from 1), and
//   moves them to fault->response, where a write of a page response with that
//   cookie takes them out;
// - detaching (or replacing) the device from the HWPT answers the groups of
//   that attach handle itself (iommufd_auto_response_faults), whether read or
//   not: their cookies are gone.
import { EINVAL, ESPIPE } from '../errno.ts';
import { field, iommufdUcmdRespond, setField, type Ucmd } from './ucmd.ts';

/** sizeof(struct iommu_hwpt_pgfault) */
export const PGFAULT_SIZE = 40;
/** sizeof(struct iommu_hwpt_page_response) */
export const PAGE_RESPONSE_SIZE = 8;
// include/linux/iommu.h (the values the uAPI's iommu_hwpt_pgfault_flags repeat)
const IOMMU_FAULT_PAGE_REQUEST_PASID_VALID = 1 << 0;
const IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE = 1 << 1;
// include/uapi/linux/iommufd.h enum iommufd_page_response_code
const IOMMUFD_PAGE_RESP_SUCCESS = 0;
const IOMMUFD_PAGE_RESP_INVALID = 1;
// include/uapi/asm-generic/poll.h
const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLRDNORM = 0x40;
/** POLLERR | POLLHUP: poll(2) reports them whatever was asked (none here). */
const ALWAYS_REPORTED = 0x18;

/** One fault of a group: struct iommu_fault's page request (prm) as the mock device raised it. */
export interface PageRequest {
  flags: number;
  pasid: number;
  grpid: number;
  perm: number;
  addr: bigint;
}

/**
 * struct iopf_group delivered to iommufd. `handle` names its attach handle
 * (struct iommufd_attach_handle: one device at one PASID on one HWPT, for as
 * long as that attach lasts).
 */
export interface IopfGroup {
  readonly handle: { readonly devId: number; readonly pasid: number; readonly hwpt: object };
  readonly faults: PageRequest[];
  cookie: number;
}

/** What the fault object holds: fault->common.deliver and fault->response. */
export interface FaultQueue {
  readonly deliver: IopfGroup[];
  readonly response: Map<number, IopfGroup>;
}

/**
 * selftest.c:iommufd_test_trigger_iopf's event: a last-page page request
 * (the mock never sends a partial one, so a group holds this one fault), with
 * PASID_VALID unless the PASID is IOMMU_NO_PASID (0).
 */
export function mockPageRequest(args: { pasid: number; grpid: number; perm: number; addr: bigint }): PageRequest {
  const flags = IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE | (args.pasid !== 0 ? IOMMU_FAULT_PAGE_REQUEST_PASID_VALID : 0);
  return { flags, pasid: args.pasid, grpid: args.grpid, perm: args.perm, addr: args.addr };
}

/** iommufd_fault_iopf_handler: the group goes to the tail of fault->deliver. */
export function faultIopfHandler(q: FaultQueue, group: IopfGroup): void {
  q.deliver.push(group);
}

/**
 * iommufd_auto_response_faults(hwpt, handle): every group of that attach
 * handle, queued or read (in fault->response), is answered
 * IOMMU_PAGE_RESP_INVALID and freed.
 */
export function faultAutoResponse(q: FaultQueue, handle: IopfGroup['handle']): void {
  const same = (g: IopfGroup) => g.handle.devId === handle.devId && g.handle.pasid === handle.pasid && g.handle.hwpt === handle.hwpt;
  for (let i = q.deliver.length - 1; i >= 0; i--) if (same(q.deliver[i]!)) q.deliver.splice(i, 1);
  for (const [cookie, g] of q.response) if (same(g)) q.response.delete(cookie);
}

/** xa_alloc(&fault->response, ..., xa_limit_32b) on an XA_FLAGS_ALLOC1 array: the lowest free index from 1. */
function allocCookie(q: FaultQueue): number {
  let cookie = 1;
  while (q.response.has(cookie)) cookie++;
  return cookie;
}

/** iommufd_compose_fault_message */
function composeFaultMessage(out: DataView, at: number, f: PageRequest, devId: number, cookie: number): void {
  out.setUint32(at + 0, f.flags, true);
  out.setUint32(at + 4, devId, true);
  out.setUint32(at + 8, f.pasid, true);
  out.setUint32(at + 12, f.grpid, true);
  out.setUint32(at + 16, f.perm, true);
  out.setUint32(at + 20, 0, true); // __reserved (the kernel's struct starts zeroed)
  out.setBigUint64(at + 24, BigInt.asUintN(64, f.addr), true);
  out.setUint32(at + 32, 0, true); // length
  out.setUint32(at + 36, cookie, true);
}

/**
 * iommufd_fault_fops_read of `count` bytes at file position `pos`: whole
 * groups, as many as fit; a count that is no multiple of the struct is
 * ESPIPE (the same check as a non-zero position), a first group that does
 * not fit is EINVAL (also a count of 0 with a group queued), an empty queue
 * reads 0 bytes.
 */
export function faultRead(q: FaultQueue, count: number, pos = 0): { ret: number; bytes: Uint8Array } {
  const none = new Uint8Array(0);
  if (pos || count % PGFAULT_SIZE) return { ret: -ESPIPE, bytes: none };
  const out = new Uint8Array(count);
  const dv = new DataView(out.buffer);
  let done = 0;
  let rc = 0;
  while (q.deliver.length) {
    // iommufd_fault_deliver_fetch; iommufd_fault_deliver_restore puts it back at the head
    const group = q.deliver[0]!;
    if (done >= count || group.faults.length * PGFAULT_SIZE > count - done) {
      // "Read count doesn't fit the first fault group"
      if (done === 0) rc = -EINVAL;
      break;
    }
    q.deliver.shift();
    group.cookie = allocCookie(q);
    q.response.set(group.cookie, group);
    for (const f of group.faults) {
      composeFaultMessage(dv, done, f, group.handle.devId, group.cookie);
      done += PGFAULT_SIZE;
    }
  }
  return done === 0 ? { ret: rc, bytes: none } : { ret: done, bytes: out.subarray(0, done) };
}

/**
 * iommufd_fault_fops_write: page responses, one struct iommu_hwpt_page_response
 * each, taken in order until one fails: a count that is no multiple of the
 * struct is ESPIPE, a code other than SUCCESS or INVALID is EINVAL, and so is
 * a cookie not in fault->response (never handed out, already answered, or
 * answered by the kernel itself on a detach). What was taken before the
 * failure is the result; a failure on the first is the errno.
 */
export function faultWrite(q: FaultQueue, bytes: Uint8Array, pos = 0): number {
  const count = bytes.length;
  if (pos || count % PAGE_RESPONSE_SIZE) return -ESPIPE;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let done = 0;
  let rc = 0;
  while (count > done) {
    const cookie = dv.getUint32(done, true);
    const code = dv.getUint32(done + 4, true);
    if (code !== IOMMUFD_PAGE_RESP_SUCCESS && code !== IOMMUFD_PAGE_RESP_INVALID) {
      rc = -EINVAL;
      break;
    }
    // xa_erase: the group, if the cookie names one; iopf_group_response and iopf_free_group then answer it
    if (!q.response.delete(cookie)) {
      rc = -EINVAL;
      break;
    }
    done += PAGE_RESPONSE_SIZE;
  }
  return done === 0 ? rc : done;
}

/** iommufd_fault_fops_poll (7.x: iommufd_eventq_fops_poll of a fault): always writable, readable while a group is queued. */
export function faultPoll(q: FaultQueue, events: number): number {
  const ready = EPOLLOUT | (q.deliver.length ? EPOLLIN | EPOLLRDNORM : 0);
  return ready & (events | ALWAYS_REPORTED);
}

/** lib/lockstep/unchecked.ts: a page fault raised while a fault site failed; which one, the result does not say. */
export const PAGE_FAULT_UNDER_FAULT_INJECTION = 'page fault raised under fault injection';

/** A write(2) of an fd whose file has no ->write (a vEVENTQ's): vfs_write's EINVAL (no FMODE_CAN_WRITE). */
export const WRITE_WITHOUT_OP = -EINVAL;

export function iommufdFaultAlloc(ucmd: Ucmd): number {
  const r = ucmd.ctx.faultQueueAlloc({ flags: field(ucmd, 'flags') });
  if (r.errno) return -r.errno;
  setField(ucmd, 'out_fault_id', r.faultId);
  setField(ucmd, 'out_fault_fd', ucmd.fds.install(ucmd.ctx, 'fault', r.faultFd));
  return iommufdUcmdRespond(ucmd);
}
