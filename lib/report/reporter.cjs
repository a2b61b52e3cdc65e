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

/** The tests a run selects: every test under `suite` that mocha's grep (if any) lets through. */
function selectedTests(runner, suite) {
  const grep = runner._grep;
  const out = [];
  const walk = (s) => {
    for (const t of s.tests) {
      const match = !grep || grep.test(t.fullTitle()) !== Boolean(runner._invert);
      if (match) out.push(t);
    }
    s.suites.forEach(walk);
  };
  walk(suite);
  return out;
}

function hookKind(hook) {
  const title = hook.originalTitle || hook.title || '';
  if (title.startsWith('"before all"')) return 'before all';
  if (title.startsWith('"before each"')) return 'before each';
  if (title.startsWith('"after each"')) return 'after each';
  if (title.startsWith('"after all"')) return 'after all';
  return 'hook';
}

/**
 * One result per test, under the test's own name, whatever mocha reported:
 * - a failing test, or one failed after it passed (a kernel report read by an
 *   afterEach root hook, lib/vm/kernel-log.ts), is one "not ok" with every
 *   message it got;
 * - a failing hook is not a test: it fails the tests it belongs to. "before
 *   all" fails every selected test of its suite and sub-suites, "before each"
 *   the test it ran for and the rest of its suite (mocha's
 *   failHookAffectedTests reports these itself; without it they would
 *   vanish), "after each" the test it ran after (and those of its suite that
 *   mocha then leaves out), "after all" its suite's last test. So the plan
 *   counts tests, and a hook failure can hide none.
 * `results()` gives them in the order they first appeared.
 */
function trackResults(runner) {
  const byTest = new Map();
  const extra = [];
  const record = (test, status, fields) => {
    const prev = byTest.get(test);
    if (!prev) {
      byTest.set(test, { name: ktapName(test), test, status, messages: fields.message ? [fields.message] : [], skip: fields.skip });
      return;
    }
    if (status === 'not ok') {
      prev.status = 'not ok';
      // mocha's own failHookAffectedTests message repeats the hook's, already recorded.
      if (prev.messages.length > 0 && fields.message && fields.message.startsWith('Test skipped due to failure in hook')) return;
      prev.skip = undefined;
      if (fields.message && !prev.messages.includes(fields.message)) prev.messages.push(fields.message);
    }
  };
  const messageOf = (err) => (err && err.message !== undefined ? String(err.message) : String(err));
  runner.on(EVENT_TEST_PASS, (test) => record(test, 'ok', {}));
  runner.on(EVENT_TEST_PENDING, (test) => record(test, 'ok', { skip: reasonOf(test) }));
  runner.on(EVENT_TEST_FAIL, (test, err) => {
    if (test.type !== 'hook') {
      const prev = byTest.get(test);
      // Failed after it passed: mocha counted it in both; count it once, as failed.
      if (prev && prev.status === 'ok' && !prev.skip && runner.stats) runner.stats.passes = Math.max(0, runner.stats.passes - 1);
      record(test, 'not ok', { message: messageOf(err) });
      return;
    }
    const kind = hookKind(test);
    const message = `${kind} hook failed: ${messageOf(err)}`;
    const current = test.ctx && test.ctx.currentTest;
    if ((kind === 'before each' || kind === 'after each' || kind === 'after all') && current) {
      record(current, 'not ok', { message });
    }
    if (kind === 'after all') {
      if (!current) extra.push({ name: `${ktapName(test.parent) || 'root'}.after_all_hook`, status: 'not ok', messages: [message] });
      return;
    }
    // mocha runs nothing more under the hook's suite: those tests fail (or
    // skip, if marked so) with the hook's message, here and now, before
    // mocha's failHookAffectedTests reports them with its own.
    for (const t of selectedTests(runner, test.parent)) {
      if (byTest.has(t)) continue;
      if (t.isPending()) record(t, 'ok', { skip: reasonOf(t) });
      else record(t, 'not ok', { message: `not run: ${message}` });
    }
  });
  return {
    results: () => [...byTest.values(), ...extra],
    counts() {
      const all = [...byTest.values(), ...extra];
      return {
        pass: all.filter((r) => r.status === 'ok' && !r.skip).length,
        fail: all.filter((r) => r.status === 'not ok').length,
        skip: all.filter((r) => r.skip).length,
      };
    },
  };
}

/**
 * KTAP version 1 (Documentation/dev-tools/ktap.rst), with the kselftest
 * harness's closing "# Totals:" line, for kernel CI tooling. A failure's whole
 * message (a lockstep divergence report runs to many lines) goes in "# "
 * diagnostic lines before its result line.
 */
function writeKtap(tracker, file) {
  const results = tracker.results();
  const lines = ['KTAP version 1', `1..${results.length}`];
  results.forEach((r, i) => {
    r.messages.forEach((m, j) => {
      const text = m.split('\n');
      lines.push(`# ${r.name}: ${j > 0 ? 'also: ' : ''}${text[0]}`);
      for (const more of text.slice(1)) lines.push(`# ${more}`.trimEnd());
    });
    // Parts of a test the running kernel cannot do (suites/support/skip.ts notChecked): named under it.
    for (const line of (r.test && r.test.notChecked) || []) lines.push(`# ${r.name}: ${line}`);
    lines.push(`${r.status} ${i + 1} ${r.name}${r.skip ? ` # SKIP ${r.skip}` : ''}`);
  });
  const c = tracker.counts();
  lines.push(`# Totals: pass:${c.pass} fail:${c.fail} xfail:0 xpass:0 skip:${c.skip} error:0`);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
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

/**
 * mocha's JSON reporter copies a failure's own properties into results.json
 * with JSON.stringify, which throws on a bigint (u64 fields, lockstep
 * differences): the whole results.json was lost and mocha died at the end of
 * the run. Bigints become their decimal text, in place, before it gets there.
 */
function bigintsAsText(err) {
  if (!err || typeof err !== 'object') return;
  for (const key of Object.keys(err)) {
    const v = err[key];
    if (typeof v === 'bigint') {
      err[key] = v.toString();
    } else if (v && typeof v === 'object') {
      try {
        JSON.stringify(v);
      } catch (e) {
        if (!(e instanceof TypeError) || !/BigInt/i.test(e.message)) continue; // cycles: mocha's own cleanCycles handles them
        try {
          err[key] = JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));
        } catch {
          err[key] = String(v);
        }
      }
    }
  }
}

class ConformanceReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    const opts = (options && options.reporterOption) || {};
    const out = opts.out || process.env.IOMMUFD_CONFORMANCE_OUT;
    // Registered before the file reporters, so that a test failed after it
    // passed is counted once (runner.stats) by the time they read the stats.
    const tracker = trackResults(runner);
    runner.on(EVENT_TEST_FAIL, (_test, err) => bigintsAsText(err));
    if (out) {
      fs.mkdirSync(out, { recursive: true });
      // eslint-disable-next-line no-new
      new JSONReporter(runner, { reporterOption: { output: path.join(out, 'results.json') } });
      new XUnit(runner, { reporterOptions: { output: path.join(out, 'results.xml'), suiteName: opts.suiteName || 'iommufd-conformance' } });
      attachToFile(runner, TAP, path.join(out, 'results.tap'), { reporterOptions: { tapVersion: '13' } });
      runner.once(EVENT_RUN_END, () => writeKtap(tracker, path.join(out, 'results.ktap')));
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
      if (reasons.size > 0) {
        console.log('  skipped, by reason:');
        for (const [reason, n] of [...reasons].sort((a, b) => b[1] - a[1])) console.log(`    ${n} × ${reason}`);
        console.log('');
      }
      // The lockstep layer (lib/lockstep/stats.ts) leaves its figures here.
      const lockstep = globalThis[Symbol.for('iommufd-conformance.lockstep')];
      const line = lockstep && typeof lockstep.describe === 'function' ? lockstep.describe() : null;
      if (line) console.log(`  ${line}\n`);
      // Per test (a failed hook is not a test; the tests it took with it are).
      const c = tracker.counts();
      console.log(`summary: ${c.pass} passed, ${c.fail} failed, ${c.skip} skipped`);
    });
  }
}

ConformanceReporter.ktapName = ktapName;
module.exports = ConformanceReporter;
