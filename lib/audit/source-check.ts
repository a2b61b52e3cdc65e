// The check that a known difference's citation is true of the kernel tree in
// use: the cited file is there, the cited function is defined in it, and the
// cited excerpt is inside that function's body (whitespace-normalised; a line
// of its own holding '...' elides lines between the excerpt's pieces, which
// must then appear in that order), at exactly the lines the citation gives for
// that kernel. Finding the name somewhere in the file is not enough: an excerpt
// from another function, or a function whose body changed, would pass that. A
// citation names the kernels it is true of; each is checked in its own tree.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SourceRef } from './known-differences.ts';
import { cacheDir } from '../kbuild/cache.ts';
import { kernelVersionOf } from '../kbuild/source.ts';

/** A function's definition in a C file: its text from the name to the closing brace, and where it starts. */
export interface FunctionBody {
  /** 1-based line of the function's name. */
  line: number;
  /** 1-based line of the closing brace. */
  endLine: number;
  /** From the name to the closing brace, both included. */
  text: string;
}

/**
 * Blanks out comments, string and character literals (keeping every newline and the length), so that braces
 * and parentheses inside them are not counted.
 */
export function blankNonCode(src: string): string {
  let out = '';
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    const next = src[i + 1];
    if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end === -1 ? n : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === '/' && next === '/') {
      let stop = src.indexOf('\n', i);
      if (stop === -1) stop = n;
      out += ' '.repeat(stop - i);
      i = stop;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      const stop = Math.min(n, j + 1);
      out += c + src.slice(i + 1, stop - 1).replace(/[^\n]/g, ' ') + (stop - 1 > i ? src[stop - 1] : '');
      i = stop;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * The definition of function `name` in C source `src`, or null. A definition is the name followed by a
 * balanced parameter list (the name may be wrapped in a naming macro: NS(name)) and then, after optional attributes or macros, an opening brace (a declaration or a
 * call ends with ';' or sits inside an expression instead). The body ends at the matching closing brace.
 */
export function findFunctionBody(src: string, name: string): FunctionBody | null {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new RangeError(`not a C function name: ${JSON.stringify(name)}`);
  const code = blankNonCode(src);
  // The name as it is, or wrapped in a naming macro (generic_pt's `static int NS(map_range)(...)`).
  const re = new RegExp(`(?:\\b[A-Za-z_][A-Za-z0-9_]*\\(\\s*${name}\\s*\\)|\\b${name})\\s*\\(`, 'g');
  for (let m = re.exec(code); m; m = re.exec(code)) {
    // A definition's name starts a declarator: what precedes it on its statement is a type, not an operator.
    const before = code.slice(Math.max(0, m.index - 200), m.index);
    if (/(?:[=,(!&|?:+\-<>]|\breturn|->|\.)\s*$/.test(before)) continue;
    let depth = 0;
    let i = m.index + m[0].length - 1;
    for (; i < code.length; i++) {
      if (code[i] === '(') depth++;
      else if (code[i] === ')' && --depth === 0) break;
    }
    if (depth !== 0) return null;
    // After the parameter list: attributes or annotations (__must_hold(x), __acquires(x)) then '{'.
    const after = /^(?:\s|[A-Za-z_][A-Za-z0-9_]*(?:\s*\([^(){};]*\))?)*\{/.exec(code.slice(i + 1));
    if (!after) continue;
    const open = i + 1 + after[0].length - 1;
    let braces = 0;
    for (let j = open; j < code.length; j++) {
      if (code[j] === '{') braces++;
      else if (code[j] === '}' && --braces === 0) {
        const lineOf = (pos: number) => src.slice(0, pos).split('\n').length;
        return { line: lineOf(m.index), endLine: lineOf(j), text: src.slice(m.index, j + 1) };
      }
    }
    return null;
  }
  return null;
}

const flat = (s: string) => s.replace(/\s+/g, ' ').trim();

/** `text` with every run of whitespace made one space, and where each of its characters came from. */
function flatWithOrigins(text: string): { flat: string; origin: number[] } {
  let out = '';
  const origin: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (/\s/.test(text[i]!)) {
      if (out !== '' && !out.endsWith(' ')) {
        out += ' ';
        origin.push(i);
      }
    } else {
      out += text[i];
      origin.push(i);
    }
  }
  return { flat: out, origin };
}

/** The pieces of an excerpt, whitespace-normalised: a line holding only '...' (or '…') separates them. */
export function excerptPieces(excerpt: string): string[] {
  return excerpt.split(/\n\s*(?:\.\.\.|…)\s*(?:\n|$)/).map(flat).filter((p) => p !== '');
}

/** Where a citation's excerpt is in the file: the lines from its first piece's start to its last piece's end. */
export interface ExcerptPlace {
  body: FunctionBody;
  /** 1-based, both included. */
  line: number;
  endLine: number;
}

/**
 * Where the excerpt of `s` is inside the body of the function it cites, or what is wrong (a string naming the
 * file, the function and the piece not found). `s.file` names the file in the messages.
 */
export function locateExcerpt(text: string, s: Pick<SourceRef, 'file' | 'function' | 'excerpt'>): ExcerptPlace | string {
  const body = findFunctionBody(text, s.function);
  if (!body) return `${s.file}: function ${s.function}() is not defined in the file`;
  const { flat: whole, origin } = flatWithOrigins(body.text);
  const pieces = excerptPieces(s.excerpt);
  if (pieces.length === 0) return `${s.file}: the excerpt cited from ${s.function}() is empty`;
  let at = 0;
  let first = -1;
  let last = -1;
  for (const piece of pieces) {
    const found = whole.indexOf(piece, at);
    if (found === -1) {
      const elsewhere = flat(text).includes(piece) ? ' (it is in the file, outside that function)' : '';
      return `${s.file}: the excerpt is not in the body of ${s.function}() (lines ${body.line}-${body.endLine})${elsewhere}, in this order: ${JSON.stringify(piece.length > 120 ? `${piece.slice(0, 120)}...` : piece)}`;
    }
    if (first === -1) first = found;
    last = found + piece.length - 1;
    at = found + piece.length;
  }
  const lineAt = (flatIndex: number) => body.line + body.text.slice(0, origin[flatIndex]!).split('\n').length - 1;
  return { body, line: lineAt(first), endLine: lineAt(last) };
}

/** '123' or '123-140', as citations write lines. */
export function formatLines(p: { line: number; endLine: number }): string {
  return p.line === p.endLine ? `${p.line}` : `${p.line}-${p.endLine}`;
}

/**
 * What is wrong with one citation against the file's text of kernel `kernel` (null: it holds): the function
 * is defined there, the excerpt is inside its body, and the lines the citation gives for that kernel are
 * exactly where the excerpt is. `file` names the file in the messages.
 */
export function citationProblem(text: string, s: SourceRef, kernel: string): string | null {
  const place = locateExcerpt(text, s);
  if (typeof place === 'string') return place;
  const lines = s.lines[kernel];
  if (lines === undefined) return `${s.file}: the citation of ${s.function}() gives no lines for kernel ${kernel}`;
  const actual = formatLines(place);
  if (lines !== actual) return `${s.file}: the excerpt is at lines ${actual} of ${kernel}'s tree (in ${s.function}(), lines ${place.body.line}-${place.body.endLine}), not ${lines}`;
  return null;
}

/** Checks one citation against the tree of kernel `kernel` at `tree`. */
export function checkCitation(tree: string, s: SourceRef, kernel: string): string | null {
  const path = join(tree, s.file);
  if (!existsSync(path)) return `${s.file}: not in the kernel tree ${tree}`;
  return citationProblem(readFileSync(path, 'utf8'), s, kernel);
}

/**
 * The kernel trees extracted in the build cache (lib/kbuild/source.ts extracts Debian's linux-source there),
 * by kernel release as `uname -r` of a kernel built from them reports it (the top Makefile's version).
 */
export function cachedKernelTrees(root: string = cacheDir('src')): Map<string, string> {
  const trees = new Map<string, string>();
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    if (!existsSync(join(dir, '.extracted')) || !existsSync(join(dir, 'Makefile'))) continue;
    trees.set(kernelVersionOf(dir), dir);
  }
  return trees;
}

/** The kernels a set of citations names (the keys of their lines), in version order. */
export function citedKernels(sources: Iterable<SourceRef>): string[] {
  const kernels = new Set<string>();
  for (const s of sources) for (const k of Object.keys(s.lines)) kernels.add(k);
  return [...kernels].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}
