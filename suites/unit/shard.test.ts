// lib/shard.ts: --shard K/N parsing, the split of a test list, and the
// pruning of a loaded mocha suite tree.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import Mocha from 'mocha';
import { PACKAGE_ROOT } from '../../lib/package-root.ts';
import { applyShard, assignShards, parseShard, selectionDigest } from '../../lib/shard.ts';

const NAMES = Array.from({ length: 53 }, (_, i) => `fixture_${i % 5}.variant_${i % 3}.test_${i}`);

function tree(): Mocha.Suite {
  const root = new Mocha.Suite('', new Mocha.Context());
  for (let f = 0; f < 4; f++) {
    const s = Mocha.Suite.create(root, `fix${f}`);
    for (let t = 0; t < 6; t++) s.addTest(new Mocha.Test(`t${t}`, () => {}));
    const inner = Mocha.Suite.create(s, 'inner');
    inner.addTest(new Mocha.Test('deep', () => {}));
  }
  return root;
}

const titles = (root: Mocha.Suite): string[] => {
  const out: string[] = [];
  root.eachTest((t) => {
    out.push(t.fullTitle());
  });
  return out;
};

describe('shard', () => {
  it('parses K/N and refuses anything else, naming the value', () => {
    expect(parseShard('2/4')).to.deep.equal({ index: 2, count: 4 });
    expect(parseShard(' 1 / 1 ')).to.deep.equal({ index: 1, count: 1 });
    for (const bad of ['0/4', '5/4', '1/0', '2', '2/4/1', 'a/b', '-1/4', '1.5/4', '']) {
      expect(() => parseShard(bad), bad).to.throw(RangeError, /shard/);
    }
  });

  it('gives every test exactly one shard, with sizes within one of each other', () => {
    for (const n of [1, 2, 3, 4, 7, 53, 60]) {
      const shardOf = assignShards(NAMES, n);
      expect(shardOf).to.have.length(NAMES.length);
      const sizes = Array.from({ length: n }, (_, k) => shardOf.filter((s) => s === k + 1).length);
      expect(sizes.reduce((a, b) => a + b, 0)).to.equal(NAMES.length);
      expect(Math.max(...sizes) - Math.min(...sizes), `n=${n}`).to.be.at.most(1);
    }
  });

  it('splits by name alone: the same names in another load order land in the same shards', () => {
    const a = assignShards(NAMES, 4);
    const reversed = [...NAMES].reverse();
    const b = assignShards(reversed, 4);
    const byName = new Map(NAMES.map((n, i) => [n, a[i]]));
    reversed.forEach((n, i) => expect(b[i], n).to.equal(byName.get(n)));
    expect(selectionDigest(NAMES)).to.not.equal(selectionDigest(reversed));
  });

  it('spreads a fixture over the shards instead of handing it to one', () => {
    const shardOf = assignShards(NAMES, 4);
    const fixture0 = new Set(NAMES.map((n, i) => (n.startsWith('fixture_0.') ? shardOf[i]! : 0)).filter((s) => s > 0));
    expect(fixture0.size).to.be.greaterThan(1);
  });

  it('removes the out-of-shard tests from the tree: the shards together are the whole, with no test twice', () => {
    const all = titles(tree());
    const seen: string[] = [];
    for (let k = 1; k <= 3; k++) {
      const root = tree();
      const sel = applyShard(root, { index: k, count: 3 }, null, (t) => t.fullTitle());
      const kept = titles(root);
      expect(sel.total).to.equal(all.length);
      expect(sel.selected).to.equal(kept.length);
      seen.push(...kept);
    }
    expect([...seen].sort()).to.deep.equal([...all].sort());
  });

  it('splits only what --grep selects, and leaves the rest for mocha to filter', () => {
    const grep = /^fix1 /;
    const selected = titles(tree()).filter((t) => grep.test(t));
    const kept: string[] = [];
    for (let k = 1; k <= 2; k++) {
      const root = tree();
      const sel = applyShard(root, { index: k, count: 2 }, grep, (t) => t.fullTitle());
      expect(sel.total).to.equal(selected.length);
      kept.push(...titles(root).filter((t) => grep.test(t)));
      // Tests --grep leaves out are mocha's to skip, not the shard's to remove.
      expect(titles(root).filter((t) => !grep.test(t))).to.have.length(titles(tree()).length - selected.length);
    }
    expect(kept.sort()).to.deep.equal([...selected].sort());
  });

  it('without a shard removes nothing and measures the selection', () => {
    const root = tree();
    const sel = applyShard(root, null, null, (t) => t.fullTitle());
    expect(titles(root)).to.have.length(28);
    expect(sel).to.deep.include({ total: 28, selected: 28 });
  });

  it('vm --list and run --list print each shard\'s part of the selection: disjoint, together the whole', function () {
    this.timeout(120_000);
    const list = (args: string[]) => {
      const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin/iommufd-conformance.js'), ...args, '--list'], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      return r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    };
    for (const base of [['vm', '--profile', 'mock', '--grep', '^iommufd '], ['run', '--files', 'suites/unit/uapi-codec.test.ts']]) {
      const whole = list(base);
      const parts = [1, 2, 3].map((k) => list([...base, '--shard', `${k}/3`]));
      expect(whole.length, base.join(' ')).to.be.greaterThan(5);
      for (const p of parts) expect(p.length).to.be.within(Math.floor(whole.length / 3), Math.ceil(whole.length / 3));
      expect(parts.flat().sort()).to.deep.equal([...whole].sort());
    }
  });
});
