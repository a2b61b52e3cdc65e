// The model's fault queue (lib/model/iommufd/fault.ts): what a mock device's
// page fault delivers, and what the fault fd reads, takes and polls, each
// rule from 6.12.117 fault.c / 7.2.13 eventq.c (iommufd_fault_fops_read,
// _write, _poll, iommufd_auto_response_faults) and io-pgfault.c
// (find_fault_handler), and run against both kernels in lockstep by the
// fuzzer's faultRead/faultRespond/faultPoll steps and the selftest mirror's
// triggerIopf.
import { expect } from 'chai';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { BASELINE_BEHAVIOUR, type KernelBehaviour } from '../../lib/model/kernel-behaviour.ts';
import { ModelProcess } from '../../lib/model/process.ts';
import * as U from '../../lib/uapi/index.ts';

const [EINVAL, ESPIPE, EBADF] = [22, 29, 9];
const REC = U.iommu_hwpt_pgfault.sizeof;
const POLLIN = 0x1;
const POLLOUT = 0x4;

function fixture(changes: Partial<KernelBehaviour> = {}) {
  const fd = new IommufdModel(new ModelProcess(), undefined, { ...BASELINE_BEHAVIOUR, ...changes });
  const ioasId = fd.ioasAlloc().ioasId;
  const dev = fd.testMockDomainFlags({ ptId: ioasId, devFlags: 0 });
  expect(dev.errno).to.equal(0);
  const parent = fd.hwptAlloc({ devId: dev.idevId, ptId: ioasId, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).hwptId;
  const fault = fd.faultQueueAlloc();
  const data = U.iommu_hwpt_selftest.encode({ iotlb: 0 }).subarray(0, 4);
  const nested = (faultId: number | null) =>
    fd.hwptAlloc({ devId: dev.idevId, ptId: parent, flags: faultId === null ? 0 : U.IOMMU_HWPT_FAULT_ID_VALID, faultId: faultId ?? 0, dataType: U.IOMMU_HWPT_DATA_SELFTEST, data }).hwptId;
  const iopfHwpt = nested(fault.faultId);
  const trigger = (pasid = 0, grpid = 2) => fd.testTriggerIopf({ devId: dev.idevId, pasid, grpid, perm: U.IOMMU_PGFAULT_PERM_READ, addr: 0xdeadbeafn }).errno;
  const read = (count: number) => fd.readFile(fault.faultFd, count);
  const respond = (...rs: { cookie: number; code: number }[]) => fd.writeFile(fault.faultFd, concat(rs.map((r) => U.iommu_hwpt_page_response.encode(r))));
  const replace = (ptId: number) => fd.testMockDomainReplace({ stdevId: dev.stdevId, ptId }).errno;
  return { fd, dev, ioasId, fault, nested, iopfHwpt, trigger, read, respond, replace };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const cookies = (bytes: Uint8Array) => Array.from({ length: bytes.length / REC }, (_, i) => U.iommu_hwpt_pgfault.decode(bytes.subarray(i * REC)).cookie);

describe('model: fault queue delivery (io-pgfault.c:find_fault_handler)', () => {
  it('delivers only while the device is attached to a HWPT with a fault', () => {
    const f = fixture();
    expect(f.trigger()).to.equal(0);
    expect(f.read(REC).ret, 'attached to the auto domain: nothing').to.equal(0);
    expect(f.replace(f.iopfHwpt)).to.equal(0);
    expect(f.trigger()).to.equal(0);
    const r = f.read(2 * REC);
    expect(r.ret).to.equal(REC);
    const rec = U.iommu_hwpt_pgfault.decode(r.bytes);
    expect(rec).to.include({ flags: U.IOMMU_PGFAULT_FLAGS_LAST_PAGE, dev_id: f.dev.idevId, pasid: 0, grpid: 2, perm: U.IOMMU_PGFAULT_PERM_READ, length: 0, cookie: 1 });
    expect(rec.addr).to.equal(0xdeadbeafn);
  });

  it('a PASID fault falls back to the RID only for a nested domain (the mock sets user_pasid_table)', () => {
    const f = fixture();
    expect(f.replace(f.iopfHwpt)).to.equal(0);
    f.trigger(5);
    const rec = U.iommu_hwpt_pgfault.decode(f.read(REC).bytes);
    expect(rec.flags).to.equal(U.IOMMU_PGFAULT_FLAGS_LAST_PAGE | U.IOMMU_PGFAULT_FLAGS_PASID_VALID);
    expect(rec.pasid).to.equal(5);
  });

  it('a nested HWPT without a fault delivers nothing', () => {
    const f = fixture();
    expect(f.replace(f.nested(null))).to.equal(0);
    f.trigger();
    expect(f.read(REC).ret).to.equal(0);
  });
});

describe('model: fault fd read (iommufd_fault_fops_read)', () => {
  it('a count that is no multiple of the record is ESPIPE, 0 with a group queued EINVAL, an empty queue 0', () => {
    const f = fixture();
    expect(f.read(0).ret).to.equal(0);
    f.replace(f.iopfHwpt);
    f.trigger();
    expect(f.read(REC - 1).ret).to.equal(-ESPIPE);
    expect(f.read(REC + 8).ret).to.equal(-ESPIPE);
    expect(f.read(0).ret).to.equal(-EINVAL);
    expect(f.read(4 * REC).ret, 'more than is queued: what is').to.equal(REC);
    expect(f.read(REC).ret).to.equal(0);
  });

  it('hands out whole groups in order, each with the lowest free cookie from 1', () => {
    const f = fixture();
    f.replace(f.iopfHwpt);
    for (let i = 0; i < 3; i++) f.trigger(0, i);
    expect(cookies(f.read(2 * REC).bytes)).to.deep.equal([1, 2]);
    expect(f.respond({ cookie: 1, code: U.IOMMUFD_PAGE_RESP_SUCCESS })).to.equal(8);
    const r = f.read(REC);
    expect(cookies(r.bytes)).to.deep.equal([1]);
    expect(U.iommu_hwpt_pgfault.decode(r.bytes).grpid).to.equal(2);
  });

  it('an fd the model did not hand out is EBADF', () => {
    const f = fixture();
    expect(f.fd.readFile(f.fault.faultFd + 100, REC).ret).to.equal(-EBADF);
  });
});

describe('model: fault fd write (iommufd_fault_fops_write)', () => {
  it('takes responses until one fails: a bad code or an unknown cookie is EINVAL on the first, else the count so far', () => {
    const f = fixture();
    f.replace(f.iopfHwpt);
    f.trigger();
    f.trigger();
    expect(cookies(f.read(2 * REC).bytes)).to.deep.equal([1, 2]);
    expect(f.respond({ cookie: 1, code: 2 })).to.equal(-EINVAL);
    expect(f.respond({ cookie: 0x7ffffff0, code: 0 })).to.equal(-EINVAL);
    expect(f.respond({ cookie: 1, code: U.IOMMUFD_PAGE_RESP_INVALID }, { cookie: 1, code: 0 })).to.equal(8);
    expect(f.respond({ cookie: 1, code: 0 }), 'stale').to.equal(-EINVAL);
    expect(f.fd.writeFile(f.fault.faultFd, new Uint8Array(7))).to.equal(-ESPIPE);
    expect(f.fd.writeFile(f.fault.faultFd, new Uint8Array(0))).to.equal(0);
    expect(f.respond({ cookie: 2, code: 0 })).to.equal(8);
  });
});

describe('model: fault fd poll and auto response', () => {
  it('is always writable, readable while a group is queued', () => {
    const f = fixture();
    expect(f.fd.pollFile(f.fault.faultFd, POLLIN | POLLOUT)).to.equal(POLLOUT);
    f.replace(f.iopfHwpt);
    f.trigger();
    expect(f.fd.pollFile(f.fault.faultFd, POLLIN)).to.equal(POLLIN);
    expect(f.fd.pollFile(f.fault.faultFd, 0)).to.equal(0);
  });

  it('leaving the HWPT answers the groups of that attach, read or not (iommufd_auto_response_faults)', () => {
    const f = fixture();
    f.replace(f.iopfHwpt);
    f.trigger();
    f.trigger();
    expect(f.read(REC).ret).to.equal(REC);
    expect(f.replace(f.ioasId)).to.equal(0);
    expect(f.read(REC).ret, 'the queued one is gone').to.equal(0);
    expect(f.respond({ cookie: 1, code: 0 }), 'and the read one').to.equal(-EINVAL);
  });

  it('a paging HWPT takes a fault only where the kernel does (hwptPagingFault), and delivers there', () => {
    const f = fixture({ hwptPagingFault: true });
    const paging = f.fd.hwptAlloc({ devId: f.dev.idevId, ptId: f.ioasId, flags: U.IOMMU_HWPT_FAULT_ID_VALID, faultId: f.fault.faultId });
    expect(paging.errno).to.equal(0);
    expect(f.replace(paging.hwptId)).to.equal(0);
    f.trigger();
    expect(f.read(REC).ret).to.equal(REC);
    // a PASID fault has no nested RID domain to fall back to
    f.trigger(3);
    expect(f.read(REC).ret).to.equal(0);
  });
});
