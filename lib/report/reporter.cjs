// The project reporter: mocha's spec output on the console, skips counted by
// reason, and a closing line "summary: N passed, N failed, N skipped".
//
// With the reporter option `out=DIR` it also writes, through mocha's own
// reporters, DIR/results.json (json), DIR/results.tap (tap) and
// DIR/results.xml (xunit), and DIR/results.ktap (KTAP, for kernel CI tools). mocha's tap reporter only writes to stdout, so it
// is fed through a second event emitter while stdout is redirected to a file.
//
// In a test VM (IOMMUFD_CONFORMANCE_IN_VM=1) it prints a marker when the first
// test starts, so the host can time boot-to-first-test.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const Mocha = require('mocha');
const { Spec, JSON: JSONReporter, TAP, XUnit } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_TEST_PENDING, EVENT_TEST_BEGIN, EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_SUITE_BEGIN, EVENT_SUITE_END } = Mocha.Runner.constants;

function reasonOf(test) {
  for (let node = test; node; node = node.parent) {
    if (node.skipReason) return node.skipReason;
  }
  return 'skipped without a stated reason';
}

/**
 * A test's name as kernel tooling writes it: the titles joined by dots, so a
 * suite 'iommufd_ioas.mock_domain' with a test 'area' is
 * 'iommufd_ioas.mock_domain.area', the kselftest harness's FIXTURE.VARIANT.TEST.
 */
function ktapName(test) {
  return test.titlePath().map((t) => t.trim().replace(/\s+/g, '_').replace(/#/g, '')).join('.');
}

/**
 * KTAP version 1 (Documentation/dev-tools/ktap.rst), with the kselftest
 * harness's closing "# Totals:" line, for kernel CI tooling.
 */
function attachKtap(runner, file) {
  const results = [];
  runner.on(EVENT_TEST_PASS, (test) => results.push({ name: ktapName(test), status: 'ok' }));
  runner.on(EVENT_TEST_FAIL, (test, err) => {
    // A failing hook is reported against its suite's first test name.
    results.push({ name: ktapName(test), status: 'not ok', message: err && err.message ? String(err.message).split('\n')[0] : '' });
  });
  runner.on(EVENT_TEST_PENDING, (test) => results.push({ name: ktapName(test), status: 'ok', skip: reasonOf(test) }));
  runner.once(EVENT_RUN_END, () => {
    const lines = ['KTAP version 1', `1..${results.length}`];
    results.forEach((r, i) => {
      if (r.message) lines.push(`# ${r.name}: ${r.message}`);
      lines.push(`${r.status} ${i + 1} ${r.name}${r.skip ? ` # SKIP ${r.skip}` : ''}`);
    });
    const pass = results.filter((r) => r.status === 'ok' && !r.skip).length;
    const fail = results.filter((r) => r.status === 'not ok').length;
    const skip = results.filter((r) => r.skip).length;
    lines.push(`# Totals: pass:${pass} fail:${fail} xfail:0 xpass:0 skip:${skip} error:0`);
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
  });
}

/**
 * Wall time of each top-level suite, hooks included (mocha's test durations
 * leave out beforeEach/afterEach, where a fixture's set-up and teardown run):
 * DIR/timing.json, which `npm test` reads to print the selftest mirror's time.
 */
function attachTiming(runner, file) {
  const suites = [];
  const started = new Map();
  runner.on(EVENT_SUITE_BEGIN, (suite) => {
    if (suite.parent && suite.parent.root) started.set(suite, process.hrtime.bigint());
  });
  runner.on(EVENT_SUITE_END, (suite) => {
    const t0 = started.get(suite);
    if (t0 === undefined) return;
    suites.push({ title: suite.title, file: suite.file || '', ms: Number(process.hrtime.bigint() - t0) / 1e6 });
  });
  runner.once(EVENT_RUN_END, () => fs.writeFileSync(file, `${JSON.stringify({ suites }, null, 1)}\n`));
}

/** Runs `reporterClass` with its stdout going to `file`. */
function attachToFile(runner, ReporterClass, file, options) {
  const proxy = new EventEmitter();
  for (const key of ['stats', 'total', 'suite']) {
    Object.defineProperty(proxy, key, { get: () => runner[key] });
  }
  // eslint-disable-next-line no-new
  new ReporterClass(proxy, options);
  const fd = fs.openSync(file, 'w');
  const events = Object.values(Mocha.Runner.constants).filter((v) => typeof v === 'string' && !v.startsWith('EVENT_'));
  for (const event of new Set(events)) {
    runner.on(event, (...args) => {
      const write = process.stdout.write;
      process.stdout.write = (chunk, encoding, cb) => {
        fs.writeSync(fd, typeof chunk === 'string' ? chunk : Buffer.from(chunk));
        if (typeof encoding === 'function') encoding();
        else if (typeof cb === 'function') cb();
        return true;
      };
      try {
        proxy.emit(event, ...args);
      } finally {
        process.stdout.write = write;
      }
      if (event === EVENT_RUN_END) fs.closeSync(fd);
    });
  }
}

class ConformanceReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    const opts = (options && options.reporterOption) || {};
    const out = opts.out || process.env.IOMMUFD_CONFORMANCE_OUT;
    if (out) {
      fs.mkdirSync(out, { recursive: true });
      // eslint-disable-next-line no-new
      new JSONReporter(runner, { reporterOption: { output: path.join(out, 'results.json') } });
      new XUnit(runner, { reporterOptions: { output: path.join(out, 'results.xml'), suiteName: opts.suiteName || 'iommufd-conformance' } });
      attachToFile(runner, TAP, path.join(out, 'results.tap'), { reporterOptions: { tapVersion: '13' } });
      attachKtap(runner, path.join(out, 'results.ktap'));
      attachTiming(runner, path.join(out, 'timing.json'));
    }
    if (process.env.IOMMUFD_CONFORMANCE_IN_VM === '1') {
      runner.once(EVENT_TEST_BEGIN, () => console.log('@@iommufd-conformance:first-test'));
    }
    const reasons = new Map();
    runner.on(EVENT_TEST_PENDING, (test) => {
      const reason = reasonOf(test);
      reasons.set(reason, (reasons.get(reason) || 0) + 1);
    });
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats;
      if (reasons.size > 0) {
        console.log('  skipped, by reason:');
        for (const [reason, n] of [...reasons].sort((a, b) => b[1] - a[1])) console.log(`    ${n} × ${reason}`);
        console.log('');
      }
      // The lockstep layer (lib/lockstep/stats.ts) leaves its figures here.
      const lockstep = globalThis[Symbol.for('iommufd-conformance.lockstep')];
      const line = lockstep && typeof lockstep.describe === 'function' ? lockstep.describe() : null;
      if (line) console.log(`  ${line}\n`);
      console.log(`summary: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped`);
    });
  }
}

ConformanceReporter.ktapName = ktapName;
module.exports = ConformanceReporter;
