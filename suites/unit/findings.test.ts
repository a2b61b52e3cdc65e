// fixtures/findings.json and the classification of kernel reports by it
// (lib/vm/findings.ts): a known finding's report is named by its id, any
// other report stays unknown (and fails a VM run).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { classifyProblems, loadFindings } from '../../lib/vm/findings.ts';
import { kernelProblems } from '../../lib/vm/kernel-log.ts';

// The two WARNs as 7.2.13 logs them (kernel/panic.c:__warn's 7.x format) and as 6.x would.
const KF_0001_72 = [
  '------------[ cut here ]------------',
  'WARNING: drivers/iommu/generic_pt/iommu_pt.h:947 at pt_iommu_amdv1_mock_map_range+0x7d/0x5d0, CPU#1: node/187',
  'Modules linked in:',
  'CPU: 1 UID: 0 PID: 187 Comm: node Not tainted 7.2.13 #1 PREEMPT(voluntary)',
].join('\n');
const KF_0001_OLD_FORMAT = 'WARNING: CPU: 0 PID: 187 at drivers/iommu/generic_pt/iommu_pt.h:947 pt_iommu_vtdss_map_range+0x7d/0x5d0';
// 7.2.13 as the project builds it (no KALLSYMS): an address instead of the function.
const KF_0001_NO_SYMBOLS = 'WARNING: drivers/iommu/generic_pt/fmt/../iommu_pt.h:947 at 0xffffffff814958fa, CPU#0: node/51';
const OTHER_WARN = 'WARNING: drivers/iommu/iommufd/pages.c:1234 at iopt_area_unfill_domain+0x10/0x20, CPU#0: node/187';

describe('kernel findings', () => {
  it('loads fixtures/findings.json: every entry has a doc, a signature and a test carrying its id', () => {
    const findings = loadFindings();
    expect(findings.map((f) => f.id)).to.include('KF-0001');
    for (const f of findings) {
      expect(f.test).to.contain(f.id);
      expect(f.doc).to.equal(`docs/findings/${f.id}.md`);
    }
  });

  it('names a known finding by its id in either WARNING format, and leaves other reports unknown', () => {
    const findings = loadFindings();
    const problems = kernelProblems(`${KF_0001_72}\n${KF_0001_OLD_FORMAT}\n${KF_0001_NO_SYMBOLS}\n${OTHER_WARN}`);
    const { known, unknown } = classifyProblems(problems, findings);
    expect(known.map((k) => k.finding.id)).to.deep.equal(['KF-0001', 'KF-0001', 'KF-0001', 'KF-0001']);
    expect(unknown).to.have.length(1);
    expect(unknown[0]).to.contain('pages.c:1234');
  });

  it('refuses an entry it cannot use', () => {
    const dir = mkdtempSync(join(tmpdir(), 'findings-'));
    const write = (findings: unknown[]) => {
      const path = join(dir, 'f.json');
      writeFileSync(path, JSON.stringify({ format: 1, findings }));
      return path;
    };
    const good = { id: 'KF-0009', title: 't', doc: 'docs/findings/KF-0009.md', kind: 'WARN', signature: ['x'], test: 'findings KF-0009 x' };
    expect(loadFindings(write([good]))).to.have.length(1);
    expect(() => loadFindings(write([{ ...good, id: 'KF-9' }]))).to.throw(/id must look like/);
    expect(() => loadFindings(write([good, good]))).to.throw(/duplicate id/);
    expect(() => loadFindings(write([{ ...good, test: 'findings x' }]))).to.throw(/carry the id/);
    expect(() => loadFindings(write([{ ...good, signature: [] }]))).to.throw(/signature/);
    expect(loadFindings(write([{ ...good, kind: 'wrong result', signature: [] }]))).to.have.length(1);
    expect(() => loadFindings(write([{ ...good, kind: 'wrong result' }]))).to.throw(/empty exactly for/);
    expect(() => loadFindings(write([{ ...good, since: '7.2' }]))).to.throw(/unknown key since/);
  });
});
