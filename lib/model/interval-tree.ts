// An interval tree over inclusive [start, last] u64 ranges, the model's
// counterpart of include/linux/interval_tree.h + lib/interval_tree.c.
//
// It is a treap (random priorities, so expected O(log n) depth) ordered by
// (start, insertion sequence) and augmented with the maximum `last` of each
// subtree, which is what lets iterFirst/iterNext skip subtrees that cannot
// intersect the query, exactly like the kernel's augmented rbtree
// (interval_tree_subtree_search). Nodes may overlap (reserved ranges and
// page-access ranges do), and equal starts are kept in insertion order.
//
// Nodes are the caller's own objects (they extend IntervalNode), so removing
// one needs no lookup table: the tree finds it by its (start, seq) key.

export class IntervalNode {
  start: bigint;
  last: bigint;
  /** @internal treap links and augmentation; only the tree touches them. */
  itLeft: IntervalNode | null = null;
  itRight: IntervalNode | null = null;
  itMaxLast = 0n;
  itPriority = 0;
  itSeq = -1;

  constructor(start: bigint, last: bigint) {
    this.start = start;
    this.last = last;
  }
}

/** One step of a span iteration (lib/interval_tree.c interval_tree_span_iter). */
export interface Span {
  /** true: no node covers [start, last]; false: [start, last] is covered by the union of nodes. */
  isHole: boolean;
  start: bigint;
  last: bigint;
}

function keyLess(aStart: bigint, aSeq: number, b: IntervalNode): boolean {
  return aStart < b.start || (aStart === b.start && aSeq < b.itSeq);
}

function update(n: IntervalNode): void {
  let m = n.last;
  if (n.itLeft && n.itLeft.itMaxLast > m) m = n.itLeft.itMaxLast;
  if (n.itRight && n.itRight.itMaxLast > m) m = n.itRight.itMaxLast;
  n.itMaxLast = m;
}

export class IntervalTree<N extends IntervalNode = IntervalNode> {
  #root: IntervalNode | null = null;
  #size = 0;
  #seq = 0;
  #version = 0;

  get size(): number {
    return this.#size;
  }

  /** Changes with every insert, remove and clear: a lookup remembered with it holds while it is unchanged. */
  get version(): number {
    return this.#version;
  }

  get empty(): boolean {
    return this.#root === null;
  }

  insert(node: N): void {
    if (node.itSeq >= 0) throw new Error('interval node is already in a tree');
    if (node.last < node.start) throw new Error(`interval [${node.start}, ${node.last}] is reversed`);
    node.itSeq = this.#seq++;
    node.itPriority = Math.random();
    node.itLeft = node.itRight = null;
    node.itMaxLast = node.last;
    this.#root = this.#insert(this.#root, node);
    this.#size++;
    this.#version++;
  }

  #insert(root: IntervalNode | null, node: IntervalNode): IntervalNode {
    if (!root) return node;
    if (node.itPriority > root.itPriority) {
      const [l, r] = this.#split(root, node.start, node.itSeq);
      node.itLeft = l;
      node.itRight = r;
      update(node);
      return node;
    }
    if (keyLess(node.start, node.itSeq, root)) root.itLeft = this.#insert(root.itLeft, node);
    else root.itRight = this.#insert(root.itRight, node);
    update(root);
    return root;
  }

  /** Splits into (keys < k, keys >= k). */
  #split(n: IntervalNode | null, kStart: bigint, kSeq: number): [IntervalNode | null, IntervalNode | null] {
    if (!n) return [null, null];
    if (keyLess(n.start, n.itSeq, { start: kStart, itSeq: kSeq } as IntervalNode)) {
      const [l, r] = this.#split(n.itRight, kStart, kSeq);
      n.itRight = l;
      update(n);
      return [n, r];
    }
    const [l, r] = this.#split(n.itLeft, kStart, kSeq);
    n.itLeft = r;
    update(n);
    return [l, n];
  }

  #merge(a: IntervalNode | null, b: IntervalNode | null): IntervalNode | null {
    if (!a) return b;
    if (!b) return a;
    if (a.itPriority > b.itPriority) {
      a.itRight = this.#merge(a.itRight, b);
      update(a);
      return a;
    }
    b.itLeft = this.#merge(a, b.itLeft);
    update(b);
    return b;
  }

  remove(node: N): void {
    if (node.itSeq < 0) throw new Error('interval node is not in a tree');
    const found = { done: false };
    this.#root = this.#remove(this.#root, node, found);
    if (!found.done) throw new Error('interval node is not in this tree');
    node.itSeq = -1;
    node.itLeft = node.itRight = null;
    this.#size--;
    this.#version++;
  }

  #remove(root: IntervalNode | null, node: IntervalNode, found: { done: boolean }): IntervalNode | null {
    if (!root) return null;
    if (root === node) {
      found.done = true;
      return this.#merge(root.itLeft, root.itRight);
    }
    if (keyLess(node.start, node.itSeq, root)) root.itLeft = this.#remove(root.itLeft, node, found);
    else root.itRight = this.#remove(root.itRight, node, found);
    update(root);
    return root;
  }

  /** The lowest-start node intersecting [start, last] (interval_tree_iter_first). */
  iterFirst(start: bigint, last: bigint): N | null {
    return this.#subtreeFirst(this.#root, start, last) as N | null;
  }

  // Mirrors lib/interval_tree_generic.h ITSUBTREE_search: go left while the
  // left subtree can hold an intersecting node, else test this node, else go right.
  #subtreeFirst(n: IntervalNode | null, start: bigint, last: bigint): IntervalNode | null {
    if (!n || n.itMaxLast < start) return null;
    for (;;) {
      if (n.itLeft && n.itLeft.itMaxLast >= start) {
        n = n.itLeft;
        continue;
      }
      if (n.start <= last) {
        if (start <= n.last) return n;
        if (n.itRight && n.itRight.itMaxLast >= start) {
          n = n.itRight;
          continue;
        }
      }
      return null;
    }
  }

  /** The next node after `node` (in start order) intersecting [start, last] (interval_tree_iter_next). */
  iterNext(node: N, start: bigint, last: bigint): N | null {
    return this.#firstAfter(this.#root, node.start, node.itSeq, start, last) as N | null;
  }

  #firstAfter(n: IntervalNode | null, kStart: bigint, kSeq: number, start: bigint, last: bigint): IntervalNode | null {
    while (n) {
      if (n.itMaxLast < start) return null;
      if (!keyLess(kStart, kSeq, n)) {
        // n and its left subtree are at or before the key.
        n = n.itRight;
        continue;
      }
      const inLeft = this.#firstAfter(n.itLeft, kStart, kSeq, start, last);
      if (inLeft) return inLeft;
      if (n.start > last) return null;
      if (n.last >= start) return n;
      return this.#subtreeFirst(n.itRight, start, last);
    }
    return null;
  }

  /** All nodes intersecting [start, last] in start order. */
  *intersecting(start: bigint, last: bigint): Generator<N> {
    for (let n = this.iterFirst(start, last); n; n = this.iterNext(n, start, last)) yield n;
  }

  /** Every node in start order. */
  *[Symbol.iterator](): Generator<N> {
    const stack: IntervalNode[] = [];
    let n = this.#root;
    while (n || stack.length) {
      while (n) {
        stack.push(n);
        n = n.itLeft;
      }
      const top = stack.pop()!;
      yield top as N;
      n = top.itRight;
    }
  }

  /**
   * Walks [first, last] as alternating used spans and holes, like
   * interval_tree_for_each_span: overlapping or adjacent nodes merge into one
   * used span, clipped to [first, last].
   */
  *spans(first: bigint, last: bigint): Generator<Span> {
    let next = this.iterFirst(first, last);
    let pos = first;
    while (next) {
      if (next.start > pos) {
        yield { isHole: true, start: pos, last: next.start - 1n };
        pos = next.start;
      }
      // interval_tree_span_iter_next_gap: absorb every node that overlaps or touches the used span.
      let usedLast = next.last;
      let cur = this.iterNext(next, first, last);
      while (cur && (usedLast >= cur.start || usedLast + 1n === cur.start)) {
        if (cur.last > usedLast) usedLast = cur.last;
        cur = this.iterNext(cur, first, last);
      }
      if (usedLast >= last) {
        yield { isHole: false, start: pos, last };
        return;
      }
      yield { isHole: false, start: pos, last: usedLast };
      pos = usedLast + 1n;
      next = cur;
    }
    yield { isHole: true, start: pos, last };
  }

  /** The holes of [first, last] not covered by any node. */
  *holes(first: bigint, last: bigint): Generator<{ start: bigint; last: bigint }> {
    for (const s of this.spans(first, last)) if (s.isHole) yield { start: s.start, last: s.last };
  }

  clear(): void {
    for (const n of [...this]) {
      n.itSeq = -1;
      n.itLeft = n.itRight = null;
    }
    this.#root = null;
    this.#size = 0;
    this.#version++;
  }
}

/**
 * The holes left by the union of two trees over [first, last], as
 * pages.c interval_tree_double_span_iter yields them (is_used == 0 spans).
 * Holes are maximal: they end where either tree becomes used.
 */
export function* doubleSpanHoles(
  a: IntervalTree,
  b: IntervalTree,
  first: bigint,
  last: bigint,
): Generator<{ start: bigint; last: bigint }> {
  let pos = first;
  for (;;) {
    const na = a.iterFirst(pos, last);
    const nb = b.iterFirst(pos, last);
    // The lowest covered point at or after pos across both trees.
    let coveredFrom: bigint | null = null;
    for (const n of [na, nb]) {
      if (!n) continue;
      const s = n.start > pos ? n.start : pos;
      if (coveredFrom === null || s < coveredFrom) coveredFrom = s;
    }
    if (coveredFrom === null) {
      yield { start: pos, last };
      return;
    }
    if (coveredFrom > pos) yield { start: pos, last: coveredFrom - 1n };
    // Skip the used run starting at coveredFrom. A node holding the point just
    // past the run extends it; one that overlaps further is found at the next probe.
    let usedLast = coveredFrom - 1n;
    for (let grew = true; grew && usedLast < last; ) {
      grew = false;
      const probe = usedLast + 1n;
      for (const t of [a, b]) {
        const n = t.iterFirst(probe, probe);
        if (n && n.last > usedLast) {
          usedLast = n.last;
          grew = true;
          break;
        }
      }
    }
    if (usedLast >= last) return;
    pos = usedLast + 1n;
  }
}
