// The model's vIOMMU, vDEVICE, vEVENTQ and HW queue (lib/model/iommufd/viommu.ts, eventq.ts) on their
// own, through the typed client over the model's system calls, each rule with the 7.2.13 code it follows.
// All but the partial read were also seen on 7.2.13 in lockstep (suites/vm/mock/selftest/iommufd_viommu.test.ts);
// the partial read is read from eventq.c alone: no mirrored case reads part of a full queue.
import { expect } from 'chai';
import { IommuFd } from '../../lib/kernel/index.ts';
import { ModelSysCore } from '../../lib/lockstep/index.ts';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { BASELINE_BEHAVIOUR } from '../../lib/model/kernel-behaviour.ts';
import { ModelProcess, PROT_READ, PROT_WRITE } from '../../lib/model/process.ts';
import { ModelSyscalls } from '../../lib/model/syscalls.ts';
import { addonBuilt } from '../../lib/sys/addon.ts';
import * as U from '../../lib/uapi/index.ts';
import { skipBecause } from '../support/skip.ts';

const EINVAL = 22;
const ENOENT = 2;
const EIO = 5;
const EBUSY = 16;
const EEXIST = 17;
const HDR = 8;
const EVENT = HDR + 4;
/** A user address of the model's process (its memory, not this one's). */
const BUF = 0x7f00_0000_0000n;

function setup() {
  const process = new ModelProcess();
  const platform = { iommufd: (p: ModelProcess) => new IommufdModel(p, undefined, { ...BASELINE_BEHAVIOUR, mockGenericPt: true, hwptInvalidateAnyObject: true, viommu: true }) };
  const sys = new ModelSysCore(new ModelSyscalls(process, platform), { unknownFaults: true });
  const fd = IommuFd.open(sys).iommufd!;
  const ioasId = fd.ioasAlloc().ioasId;
  const mock = fd.testMockDomain({ ptId: ioasId });
  const parent = fd.hwptAlloc({ devId: mock.idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
  const viommu = fd.viommuAlloc({ devId: mock.idevId, hwptId: parent.hwptId, type: U.IOMMU_VIOMMU_TYPE_SELFTEST });
  const data = new Uint8Array(8);
  new DataView(data.buffer).setUint32(0, U.IOMMU_TEST_IOTLB_DEFAULT, true);
  const nested = fd.hwptAlloc({ devId: mock.idevId, ptId: viommu.viommuId, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data });
  expect([mock.errno, parent.errno, viommu.errno, nested.errno]).to.deep.equal([0, 0, 0, 0]);
  return { fd, process, ioasId, mock, viommuId: viommu.viommuId, nestedId: nested.hwptId };
}

const headers = (bytes: Uint8Array, n: number) =>
  Array.from({ length: n }, (_, i) => U.iommufd_vevent_header.decode(bytes.subarray(i * EVENT)));

describe('model: vIOMMU, vDEVICE, vEVENTQ, HW queue (7.x)', () => {
  before(function () {
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
  });

  it('a nested HWPT of a vIOMMU takes a device only with a vDEVICE on it (iommufd_viommu_get_vdev_id: ENOENT)', () => {
    const { fd, mock, viommuId, nestedId } = setup();
    expect(fd.testMockDomainReplace({ stdevId: mock.stdevId, ptId: nestedId }).errno).to.equal(ENOENT);
    expect(fd.vdeviceAlloc({ viommuId, devId: mock.idevId, virtId: 0x99 }).errno).to.equal(0);
    expect(fd.testMockDomainReplace({ stdevId: mock.stdevId, ptId: nestedId }).errno).to.equal(0);
    // idev->vdev: one vDEVICE per device (viommu.c:iommufd_vdevice_alloc_ioctl)
    expect(fd.vdeviceAlloc({ viommuId, devId: mock.idevId, virtId: 0x88 }).errno).to.equal(EEXIST);
  });

  it('a full vEVENTQ drops the event and queues one lost-events header, which takes a sequence number (driver.c:iommufd_viommu_report_event)', () => {
    const { fd, mock, viommuId, nestedId } = setup();
    const q = fd.veventqAlloc({ viommuId, type: U.IOMMU_VEVENTQ_TYPE_SELFTEST, depth: 2 });
    fd.vdeviceAlloc({ viommuId, devId: mock.idevId, virtId: 0x88 });
    fd.testMockDomainReplace({ stdevId: mock.stdevId, ptId: nestedId });
    // eventq.c:iommufd_veventq_fops_read: shorter than a header, or than the first vEVENT, is EINVAL; empty reads 0
    expect(fd.readEventq(q.veventqFd, new Uint8Array(HDR - 1)).errno).to.equal(EINVAL);
    expect(fd.readEventq(q.veventqFd, new Uint8Array(HDR))).to.deep.equal({ errno: 0, bytes: 0 });
    expect(fd.pollEventq(q.veventqFd, 0x1, 0).revents).to.equal(0);
    for (let i = 0; i < 3; i++) expect(fd.testTriggerVevent({ devId: mock.idevId }).errno).to.equal(0);
    expect(fd.pollEventq(q.veventqFd, 0x1, 0).revents).to.equal(0x1);
    expect(fd.readEventq(q.veventqFd, new Uint8Array(HDR)).errno).to.equal(EINVAL);
    const buf = new Uint8Array(3 * EVENT);
    expect(fd.readEventq(q.veventqFd, buf).bytes).to.equal(2 * EVENT + HDR);
    expect(headers(buf, 3)).to.deep.equal([
      { flags: 0, sequence: 0 },
      { flags: 0, sequence: 1 },
      { flags: U.IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 2 },
    ]);
    expect(U.iommu_viommu_event_selftest.decode(buf.subarray(HDR)).virt_id).to.equal(0x88);
    // The next report takes the next number; the header is gone once read.
    fd.testTriggerVevent({ devId: mock.idevId });
    const next = new Uint8Array(EVENT);
    expect(fd.readEventq(q.veventqFd, next).bytes).to.equal(EVENT);
    expect(headers(next, 1)).to.deep.equal([{ flags: 0, sequence: 3 }]);
  });

  it('a read that fits only part of the queue leaves the rest, and a lost-events header at the tail goes when the next event comes', () => {
    const { fd, mock, viommuId, nestedId } = setup();
    const q = fd.veventqAlloc({ viommuId, type: U.IOMMU_VEVENTQ_TYPE_SELFTEST, depth: 2 });
    fd.vdeviceAlloc({ viommuId, devId: mock.idevId, virtId: 0x77 });
    fd.testMockDomainReplace({ stdevId: mock.stdevId, ptId: nestedId });
    for (let i = 0; i < 3; i++) fd.testTriggerVevent({ devId: mock.idevId });
    const one = new Uint8Array(EVENT);
    expect(fd.readEventq(q.veventqFd, one).bytes).to.equal(EVENT);
    // Queue: event 1, lost header 2. A new event (room for one) replaces the tail header
    // (iommufd_private.h:iommufd_vevent_handler): the gap 1 -> 3 tells the loss.
    fd.testTriggerVevent({ devId: mock.idevId });
    const rest = new Uint8Array(3 * EVENT);
    expect(fd.readEventq(q.veventqFd, rest).bytes).to.equal(2 * EVENT);
    expect(headers(rest, 2)).to.deep.equal([{ flags: 0, sequence: 1 }, { flags: 0, sequence: 3 }]);
  });

  it('a device destroyed under its vDEVICE leaves the vDEVICE a tombstone: ENOENT, and its ID not handed out again', () => {
    const { fd, mock, viommuId, nestedId } = setup();
    const vdev = fd.vdeviceAlloc({ viommuId, devId: mock.idevId, virtId: 0x99 });
    expect(fd.destroy(mock.stdevId).errno).to.equal(0);
    expect(fd.destroy(vdev.vdeviceId).errno).to.equal(ENOENT);
    const ioas = fd.ioasAlloc();
    expect(ioas.ioasId).to.not.equal(vdev.vdeviceId);
    // The vDEVICE's reference on the vIOMMU went with it: the nested HWPT's is the last.
    expect(fd.destroy(viommuId).errno).to.equal(EBUSY);
    expect(fd.destroy(nestedId).errno).to.equal(0);
    expect(fd.destroy(viommuId).errno).to.equal(0);
  });

  it('HW queues: index 0 first (EIO), their pages locked against unmap (EBUSY), index 1 holds index 0', () => {
    const { fd, process, ioasId, viommuId } = setup();
    const page = BUF;
    process.memory.map(BUF, 0x10000n, PROT_READ | PROT_WRITE, true);
    const iova = fd.ioasMap({ ioasId, flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, userVa: page, length: 4096 });
    expect(iova.errno).to.equal(0);
    const alloc = (index: number, at: bigint, length: number) =>
      fd.hwQueueAlloc({ viommuId, type: U.IOMMU_HW_QUEUE_TYPE_SELFTEST, index, nestingParentIova: at, length });
    expect(alloc(1, iova.iova, 4096).errno).to.equal(EIO);
    const q0 = alloc(0, iova.iova, 4096);
    expect(q0.errno).to.equal(0);
    expect(fd.ioasUnmap({ ioasId, iova: iova.iova, length: 4096 }).errno).to.equal(EBUSY);
    const q1 = alloc(1, iova.iova + 2048n, 2048);
    // Each queue's internal access took an ID of its own.
    expect(q1.hwQueueId).to.equal(q0.hwQueueId + 2);
    expect(fd.destroy(q0.hwQueueId).errno).to.equal(EBUSY);
    expect(fd.destroy(q1.hwQueueId).errno).to.equal(0);
    expect(fd.destroy(q0.hwQueueId).errno).to.equal(0);
    expect(fd.ioasUnmap({ ioasId, iova: iova.iova, length: 4096 }).errno).to.equal(0);
  });
});
