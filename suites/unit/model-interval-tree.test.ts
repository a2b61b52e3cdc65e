// The model's interval tree against a naive array, on seeded random operations.
import { expect } from 'chai';
import { doubleSpanHoles, IntervalNode, IntervalTree } from '../../lib/model/interval-tree.ts';

/** mulberry32: a small seeded PRNG, so failures replay. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Naive {
  nodes: IntervalNode[] = [];
  /** Insertion order breaks ties on start, as the tree does. */
  sorted(): IntervalNode[] {
    return [...this.nodes].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.itSeq - b.itSeq));
  }
  intersecting(s: bigint, l: bigint): IntervalNode[] {
    return this.sorted().filter((n) => n.start <= l && n.last >= s);
  }
  /** Used spans and holes of [first, last], by brute force over a small universe. */
  spans(first: bigint, last: bigint): { isHole: boolean; start: bigint; last: bigint }[] {
    const out: { isHole: boolean; start: bigint; last: bigint }[] = [];
    for (let x = first; x <= last; x++) {
      const used = this.nodes.some((n) => n.start <= x && x <= n.last);
      const top = out[out.length - 1];
      if (top && top.isHole === !used) top.last = x;
      else out.push({ isHole: !used, start: x, last: x });
    }
    return out;
  }
}

describe('model interval tree', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`agrees with a naive array on random inserts, removes and queries (seed ${seed})`, () => {
      const rnd = prng(seed);
      const tree = new IntervalTree();
      const naive = new Naive();
      const U = 200; // a small universe makes overlaps, adjacency and ties frequent
      const r = (n: number) => BigInt(Math.floor(rnd() * n));
      for (let op = 0; op < 3000; op++) {
        const k = rnd();
        if (k < 0.45 || naive.nodes.length === 0) {
          const s = r(U);
          const node = new IntervalNode(s, s + r(12));
          tree.insert(node);
          naive.nodes.push(node);
        } else if (k < 0.75) {
          const i = Math.floor(rnd() * naive.nodes.length);
          const node = naive.nodes[i]!;
          tree.remove(node);
          naive.nodes.splice(i, 1);
        } else {
          const s = r(U);
          const l = s + r(40);
          const want = naive.intersecting(s, l);
          expect([...tree.intersecting(s, l)]).to.deep.equal(want);
          expect(tree.iterFirst(s, l)).to.equal(want[0] ?? null);
          if (k > 0.95) expect([...tree.spans(s, l)]).to.deep.equal(naive.spans(s, l));
        }
        expect(tree.size).to.equal(naive.nodes.length);
      }
      expect([...tree]).to.deep.equal(naive.sorted());
    });
  }

  it('yields spans over the whole u64 range, merging adjacent nodes', () => {
    const tree = new IntervalTree();
    const max = 0xffff_ffff_ffff_ffffn;
    expect([...tree.spans(0n, max)]).to.deep.equal([{ isHole: true, start: 0n, last: max }]);
    tree.insert(new IntervalNode(0n, 0xffffffn));
    tree.insert(new IntervalNode(0x80000000n, max));
    tree.insert(new IntervalNode(0x1000000n, 0x1000fffn)); // adjacent to the first: one used span
    expect([...tree.spans(0n, max)]).to.deep.equal([
      { isHole: false, start: 0n, last: 0x1000fffn },
      { isHole: true, start: 0x1001000n, last: 0x7fffffffn },
      { isHole: false, start: 0x80000000n, last: max },
    ]);
    expect([...tree.holes(0n, max)]).to.deep.equal([{ start: 0x1001000n, last: 0x7fffffffn }]);
  });

  it('finds the holes of two trees together (pages.c double span)', () => {
    for (const seed of [11, 12, 13]) {
      const rnd = prng(seed);
      const a = new IntervalTree();
      const b = new IntervalTree();
      const na = new Naive();
      for (let i = 0; i < 40; i++) {
        const s = BigInt(Math.floor(rnd() * 300));
        const n = new IntervalNode(s, s + BigInt(Math.floor(rnd() * 10)));
        (i % 2 ? a : b).insert(n);
        na.nodes.push(n);
      }
      for (let q = 0; q < 50; q++) {
        const s = BigInt(Math.floor(rnd() * 300));
        const l = s + BigInt(Math.floor(rnd() * 80));
        const want = na.spans(s, l).filter((x) => x.isHole).map((x) => ({ start: x.start, last: x.last }));
        expect([...doubleSpanHoles(a, b, s, l)]).to.deep.equal(want);
      }
    }
  });

  it('refuses to insert a node twice or remove a stranger', () => {
    const tree = new IntervalTree();
    const n = new IntervalNode(1n, 2n);
    tree.insert(n);
    expect(() => tree.insert(n)).to.throw();
    expect(() => tree.remove(new IntervalNode(1n, 2n))).to.throw();
  });
});
