// The kernel log read after every test (lib/vm/kernel-log.ts): a report fails
// the test during which it appeared (body or teardown), under its own name,
// and every other test still runs. Checked in a child mocha over a file of
// /dev/kmsg-format records, so no kernel needs to WARN.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KernelLogTail } from '../../lib/vm/kernel-log.ts';

const root = resolve(import.meta.dirname, '../..');

describe('kernel log after every test', () => {
  it('a WARN or KASAN report fails the test during which it appeared; the others pass', function () {
    this.timeout(60000);
    const dir = mkdtempSync(join(tmpdir(), 'klog-'));
    const kmsg = join(dir, 'kmsg');
    writeFileSync(kmsg, '6,1,0,-;Linux version 6.12 (boot, before the run: not charged to any test)\n4,2,0,-;WARNING: CPU: 0 PID: 1 at boot.c:1 early+0x0/0x1\n');
    const out = join(dir, 'out');
    const r = spawnSync(
      process.execPath,
      [join(root, 'node_modules/mocha/bin/mocha.js'), '--no-config', '--node-option', 'import=tsx',
        '--reporter', join(root, 'lib/report/reporter.cjs'), '--reporter-option', `out=${out}`,
        join(root, 'suites/unit/fixtures/kernel-log.fixture.ts')],
      { cwd: root, encoding: 'utf8', env: { ...process.env, KMSG_FILE: kmsg } },
    );
    const ktap = readFileSync(join(out, 'results.ktap'), 'utf8').split('\n');
    const results = ktap.filter((l) => /^(ok|not ok) /.test(l));
    expect(results).to.deep.equal([
      'ok 1 klog.var.quiet',
      'not ok 2 klog.var.warns',
      'ok 3 klog.var.after',
      'not ok 4 klog.teardown.splats_in_its_teardown',
      'ok 5 klog.late.still_runs',
    ]);
    expect(ktap).to.include('# klog.var.warns: the kernel logged 2 problem(s) during this test:');
    expect(ktap.join('\n')).to.match(/# WARN: WARNING: CPU: 1 PID: 42 at drivers\/iommu\/iommufd\/pages\.c:1234/);
    expect(ktap.join('\n')).to.match(/# klog\.teardown\.splats_in_its_teardown: the kernel logged 1 problem\(s\)[\s\S]*# KASAN: BUG: KASAN: slab-use-after-free/);
    expect(r.stdout.trimEnd().split('\n').pop()).to.equal('summary: 3 passed, 2 failed, 0 skipped');
  });

  it('reads only the records logged since the last read, continuation lines left out', () => {
    const dir = mkdtempSync(join(tmpdir(), 'klog-'));
    const kmsg = join(dir, 'kmsg');
    writeFileSync(kmsg, '6,1,0,-;old\n SUBSYSTEM=x\n');
    const tail = KernelLogTail.open(kmsg)!;
    expect(tail.read()).to.deep.equal([]);
    writeFileSync(kmsg, '6,1,0,-;old\n SUBSYSTEM=x\n6,2,0,-;new one\n DEVICE=y\n6,3,0,-;and another\n');
    expect(tail.read()).to.deep.equal(['new one', 'and another']);
    expect(tail.read()).to.deep.equal([]);
    tail.close();
  });
});
