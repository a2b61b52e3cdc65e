// eventq.c (7.x) beside the model: the vEVENTQ object, IOMMU_VEVENTQ_ALLOC at
// the ABI, what its fd reads and polls, and how the driver reports a vEVENT
// into it (driver.c:iommufd_viommu_report_event, iommufd_private.h:
// iommufd_vevent_handler), with the mock driver's TRIGGER_VEVENT.
//
// The queue, as eventq.c keeps it:
// - at most `depth` normal vEVENTs are queued; one reported into a full queue
//   is dropped and the queue's one lost-events header (flags
//   IOMMU_VEVENTQ_FLAG_LOST_EVENTS, no data) is queued in its place;
// - every report, lost or not, takes the next sequence number (31 bits);
// - a lost-events header at the tail is taken out when the next report is
//   queued (the gap in the sequence numbers then tells the loss);
// - a read returns whole vEVENTs (header + data), as many as fit; a read
//   shorter than a header, or too short for the first vEVENT, is EINVAL; an
//   empty queue reads 0 bytes.
import { EEXIST, EINVAL, ENOENT, EOPNOTSUPP, ESPIPE } from '../errno.ts';
import type { DeviceObject, IommufdModel } from '../iommufd.ts';
import { IommufdObject } from '../objects.ts';
import { ModelCannotAnswer } from '../uaccess.ts';
import { field, iommufdUcmdRespond, setField, type Ucmd } from './ucmd.ts';
import type { ViommuObject } from './viommu.ts';

// include/uapi/linux/iommufd.h
const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1;
// iommufd_test.h
const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
/** eventq.c: "An arbitrary upper bound for veventq_depth that fits all existing HWs" */
export const VEVENTQ_MAX_DEPTH = 1 << 19;
/** sizeof(struct iommufd_vevent_header) */
const HEADER_SIZE = 8;
const INT_MAX = 0x7fff_ffff;
// include/uapi/asm-generic/poll.h
const EPOLLIN = 0x1;
const EPOLLRDNORM = 0x40;

const u32 = (v: number | undefined): number => (v ?? 0) >>> 0;

/** struct iommufd_vevent: a header and its event data (none for the lost-events header). */
interface Vevent {
  flags: number;
  sequence: number;
  data: Uint8Array;
}

/** struct iommufd_veventq (with its struct iommufd_eventq) */
export class VeventqObject extends IommufdObject {
  readonly type = 'veventq' as const;
  /** eventq->deliver */
  readonly deliver: Vevent[] = [];
  /** veventq->lost_events_header: one node, queued at most once */
  readonly lostEventsHeader: Vevent = { flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 0, data: new Uint8Array(0) };
  numEvents = 0;
  sequence = 0;
  constructor(
    readonly viommu: ViommuObject,
    readonly eventqType: number,
    readonly depth: number,
    /** The model's number for the vEVENTQ's fd (its file holds a user reference while open). */
    readonly fd: number,
  ) {
    super();
  }
}

/** eventq.c:iommufd_veventq_alloc. The fd is installed by the caller. */
export function veventqAlloc(
  ctx: IommufdModel,
  args: { flags: number; viommuId: number; type: number; depth: number; reserved: number },
): { errno: number; veventq: VeventqObject | null } {
  const fail = (errno: number) => ({ errno, veventq: null });
  if (u32(args.flags) || u32(args.reserved) || u32(args.type) === IOMMU_VEVENTQ_TYPE_DEFAULT) return fail(EOPNOTSUPP);
  const depth = u32(args.depth);
  if (!depth || depth > VEVENTQ_MAX_DEPTH) return fail(EINVAL);
  const viommu = ctx.objects.get<ViommuObject>(u32(args.viommuId), 'viommu');
  if (!viommu) return fail(ENOENT);
  // iommufd_viommu_find_veventq: one vEVENTQ per type and vIOMMU
  if (viommu.veventqs.some((q) => q.eventqType === u32(args.type))) return fail(EEXIST);
  const veventq = new VeventqObject(viommu, u32(args.type), depth, ctx.viommuContext.nextFileNumber());
  const rc = ctx.objects.reserve(veventq);
  if (rc) return fail(rc);
  viommu.users++;
  viommu.veventqs.push(veventq);
  // iommufd_eventq_init: the file's reference
  veventq.users++;
  return { errno: 0, veventq };
}

/** eventq.c:iommufd_veventq_destroy → iommufd_veventq_abort */
export function veventqDestroy(veventq: VeventqObject): void {
  veventq.deliver.length = 0;
  veventq.viommu.users--;
  const i = veventq.viommu.veventqs.indexOf(veventq);
  if (i >= 0) veventq.viommu.veventqs.splice(i, 1);
}

/** iommufd_private.h:iommufd_vevent_handler */
function veventHandler(q: VeventqObject, vevent: Vevent): void {
  // "Remove the lost_events_header and add the new node at the same time."
  if (q.deliver.at(-1) === q.lostEventsHeader) q.deliver.pop();
  q.deliver.push(vevent);
  vevent.sequence = q.sequence;
  q.sequence = (q.sequence + 1) & INT_MAX;
}

/** driver.c:iommufd_viommu_report_event (the vEVENT's allocation is taken to succeed) */
export function viommuReportEvent(viommu: ViommuObject, type: number, data: Uint8Array): number {
  const q = viommu.veventqs.find((v) => v.eventqType === type);
  if (!q) return EOPNOTSUPP;
  if (q.numEvents === q.depth) {
    veventHandler(q, q.lostEventsHeader);
    return 0;
  }
  q.numEvents++;
  veventHandler(q, { flags: 0, sequence: 0, data });
  return 0;
}

/** selftest.c:iommufd_test_trigger_vevent: a struct iommu_viommu_event_selftest { virt_id } for the device's vDEVICE. */
export function testTriggerVevent(ctx: IommufdModel, args: { devId: number }): { errno: number } {
  const idev = ctx.objects.get<DeviceObject>(u32(args.devId), 'device');
  if (!idev) return { errno: ENOENT };
  if (!idev.mock) throw new ModelCannotAnswer('IOMMU_TEST_OP_TRIGGER_VEVENT on a device that is not a mock device');
  const mdev = idev.mock;
  // mdev->viommu and mdev->vdev_id, as the last attach left them (a vdev_id of 0 counts as none)
  if (!mdev.viommu || !mdev.vdevId) return { errno: ENOENT };
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, Number(BigInt.asUintN(32, mdev.vdevId)), true);
  return { errno: viommuReportEvent(mdev.viommu as ViommuObject, IOMMU_VEVENTQ_TYPE_SELFTEST, data) };
}

/** iommufd_veventq_deliver_restore: back at the head; a lost-events copy only comes back to an empty queue. */
function deliverRestore(q: VeventqObject, cur: Vevent, isLostCopy: boolean): void {
  if (isLostCopy) {
    if (q.deliver.length === 0) q.deliver.unshift(q.lostEventsHeader);
    return;
  }
  q.deliver.unshift(cur);
}

/**
 * eventq.c:iommufd_veventq_fops_read of `count` bytes at file position `pos`:
 * the bytes read (also none: an empty queue), or a negative errno.
 */
export function veventqRead(q: VeventqObject, count: number, pos = 0): { ret: number; bytes: Uint8Array } {
  const none = new Uint8Array(0);
  if (pos) return { ret: -ESPIPE, bytes: none };
  // "Minimum read count is a vEVENT header"
  if (count < HEADER_SIZE) return { ret: -EINVAL, bytes: none };
  const out: Uint8Array[] = [];
  let done = 0;
  let rc = 0;
  while (q.deliver.length) {
    // iommufd_veventq_deliver_fetch: the lost-events header is handed out as a copy
    const next = q.deliver.shift()!;
    const isLost = next === q.lostEventsHeader;
    const cur = isLost ? { ...next } : next;
    if (done >= count || HEADER_SIZE > count - done) {
      deliverRestore(q, cur, isLost);
      break;
    }
    if (!isLost && HEADER_SIZE + cur.data.length > count - done) {
      deliverRestore(q, cur, isLost);
      // "Read count doesn't fit a single normal vEVENT"
      if (done === 0) rc = -EINVAL;
      break;
    }
    const chunk = new Uint8Array(HEADER_SIZE + cur.data.length);
    const dv = new DataView(chunk.buffer);
    dv.setUint32(0, cur.flags, true);
    dv.setUint32(4, cur.sequence, true);
    chunk.set(cur.data, HEADER_SIZE);
    out.push(chunk);
    if (!isLost) q.numEvents--;
    done += chunk.length;
  }
  if (done === 0) return { ret: rc, bytes: none };
  const bytes = new Uint8Array(done);
  let at = 0;
  for (const c of out) {
    bytes.set(c, at);
    at += c.length;
  }
  return { ret: done, bytes };
}

/** eventq.c:iommufd_eventq_fops_poll of a vEVENTQ: readable while anything is queued. */
export function veventqPoll(q: VeventqObject, events: number): number {
  const ready = q.deliver.length ? EPOLLIN | EPOLLRDNORM : 0;
  return ready & (events | 0x18); // POLLERR | POLLHUP are always reported (none here)
}

/** IOMMU_VEVENTQ_ALLOC at the ABI: the new fd is installed in the process. */
export function iommufdVeventqAllocIoctl(ucmd: Ucmd): number {
  const r = veventqAlloc(ucmd.ctx, {
    flags: field(ucmd, 'flags'),
    viommuId: field(ucmd, 'viommu_id'),
    type: field(ucmd, 'type'),
    depth: field(ucmd, 'veventq_depth'),
    reserved: field(ucmd, '__reserved'),
  });
  if (r.errno) return -r.errno;
  const q = r.veventq!;
  setField(ucmd, 'out_veventq_id', q.id);
  setField(ucmd, 'out_veventq_fd', ucmd.fds.install(ucmd.ctx, 'veventq', q.fd));
  const rc = iommufdUcmdRespond(ucmd);
  if (rc) {
    // put_unused_fd, then iommufd_object_abort_and_destroy (its file released first)
    q.users--;
    veventqDestroy(q);
    ucmd.ctx.objects.abort(q);
    return rc;
  }
  ucmd.ctx.viommuContext.openFile(q);
  ucmd.ctx.objects.finalize(q);
  return 0;
}
