// lib/audit/source-check.ts: a known difference's excerpt must be inside the
// body of the function it cites, in the kernel tree in use.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedKernelTrees, checkCitation, citationProblem, findFunctionBody, formatLines, locateExcerpt } from '../../lib/audit/source-check.ts';

// Shaped like drivers/iommu/iommufd/vfio_compat.c: a prototype, a caller, a comment and a string with
// braces, and two definitions.
const SRC = `static int iommufd_vfio_map_dma(struct iommufd_ctx *ictx, unsigned int cmd,
\t\t\t\tvoid __user *arg);

/* iommufd_vfio_map_dma() { is not code */
static int iommufd_vfio_map_dma(struct iommufd_ctx *ictx, unsigned int cmd,
\t\t\t\tvoid __user *arg)
{
\tsize_t minsz = offsetofend(struct vfio_iommu_type1_dma_map, size);
\tconst char *s = "}";

\tif (map.argsz < minsz || map.flags & ~supported_flags)
\t\treturn -EINVAL;
\tif (map.flags & VFIO_DMA_MAP_FLAG_READ) {
\t\tiommu_prot |= IOMMU_READ;
\t}
\treturn rc;
}

static int iommufd_vfio_unmap_dma(struct iommufd_ctx *ictx, unsigned int cmd,
\t\t\t\t  void __user *arg)
{
\tif (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL)
\t\treturn -EOPNOTSUPP;
\treturn iommufd_vfio_map_dma(ictx, cmd, arg);
}

static int NS(map_range)(struct pt_iommu *iommu_table, dma_addr_t iova)
{
\treturn 0;
}
`;

const FILE = 'drivers/iommu/iommufd/vfio_compat.c';

describe('audit.source-check', () => {
  it("finds a function's definition, not its prototype, a call or a comment, up to the matching brace", () => {
    const body = findFunctionBody(SRC, 'iommufd_vfio_map_dma')!;
    expect(body.line).to.equal(5);
    expect(body.endLine).to.equal(17);
    expect(body.text).to.match(/^iommufd_vfio_map_dma\(/);
    expect(body.text).to.match(/return rc;\n\}$/);
    expect(findFunctionBody(SRC, 'map_range')!.text, 'a name wrapped in a naming macro').to.match(/^NS\(map_range\)/);
  });

  it('a body that contains the excerpt (whitespace-normalised, pieces in order) at the lines given for the kernel: no problem', () => {
    const excerpt = 'if (map.argsz < minsz || map.flags & ~supported_flags)\n    return -EINVAL;\n...\niommu_prot |= IOMMU_READ;';
    expect(citationProblem(SRC, { file: FILE, function: 'iommufd_vfio_map_dma', lines: { '6.12.117': '11-14' }, excerpt }, '6.12.117')).to.equal(null);
    const place = locateExcerpt(SRC, { file: FILE, function: 'iommufd_vfio_map_dma', excerpt });
    expect(place).to.include({ line: 11, endLine: 14 });
    expect(formatLines({ line: 16, endLine: 16 })).to.equal('16');
  });

  it('a body that does not contain it: names the file, the function and the excerpt', () => {
    const at = { '6.12.117': '11' };
    // The excerpt is in the file, but in iommufd_vfio_unmap_dma.
    const p = citationProblem(SRC, { file: FILE, function: 'iommufd_vfio_map_dma', lines: at, excerpt: 'if (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) return -EOPNOTSUPP;' }, '6.12.117');
    expect(p).to.include(FILE).and.include('iommufd_vfio_map_dma()').and.include('unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL').and.include('outside that function');
    // Pieces out of order.
    expect(citationProblem(SRC, { file: FILE, function: 'iommufd_vfio_map_dma', lines: at, excerpt: 'iommu_prot |= IOMMU_READ;\n...\nreturn -EINVAL;' }, '6.12.117')).to.include('in this order');
  });

  it('lines that are not exactly where the excerpt is in that kernel, or none for it: a problem', () => {
    const cite = { file: FILE, function: 'iommufd_vfio_map_dma', lines: { '6.12.117': '11-12', '7.2.13': '20-21' }, excerpt: 'if (map.argsz < minsz || map.flags & ~supported_flags)\n\treturn -EINVAL;' };
    expect(citationProblem(SRC, cite, '6.12.117')).to.equal(null);
    expect(citationProblem(SRC, cite, '7.2.13')).to.equal(`${FILE}: the excerpt is at lines 11-12 of 7.2.13's tree (in iommufd_vfio_map_dma(), lines 5-17), not 20-21`);
    expect(citationProblem(SRC, { ...cite, lines: { '6.12.117': '11' } }, '6.12.117')).to.include('at lines 11-12').and.include('not 11');
    expect(citationProblem(SRC, cite, '7.3.0-rc7')).to.equal(`${FILE}: the citation of iommufd_vfio_map_dma() gives no lines for kernel 7.3.0-rc7`);
  });

  it('a function not found: says so, naming the file and the function', () => {
    expect(citationProblem(SRC, { file: FILE, function: 'iommufd_vfio_set_iommu', lines: { '6.12.117': '1' }, excerpt: 'return rc;' }, '6.12.117')).to.equal(`${FILE}: function iommufd_vfio_set_iommu() is not defined in the file`);
    expect(() => findFunctionBody(SRC, 'not a name')).to.throw(RangeError);
  });

  it('cachedKernelTrees finds the extracted trees by the release their Makefile gives', () => {
    const root = mkdtempSync(join(tmpdir(), 'audit-src-'));
    try {
      const make = (name: string, version: string, extracted = true) => {
        mkdirSync(join(root, name));
        writeFileSync(join(root, name, 'Makefile'), version);
        if (extracted) writeFileSync(join(root, name, '.extracted'), '');
      };
      make('debian-6.12.117-1', 'VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\n');
      make('debian-7.3_rc7-1', 'VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 0\nEXTRAVERSION = -rc7\n');
      make('.extract-half', 'VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 13\nEXTRAVERSION =\n', false);
      expect([...cachedKernelTrees(root)]).to.deep.equal([['6.12.117', join(root, 'debian-6.12.117-1')], ['7.3.0-rc7', join(root, 'debian-7.3_rc7-1')]]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('checkCitation reads the file from the tree, and names a file the tree lacks', () => {
    const tree = mkdtempSync(join(tmpdir(), 'audit-tree-'));
    try {
      mkdirSync(join(tree, 'drivers/iommu/iommufd'), { recursive: true });
      writeFileSync(join(tree, FILE), SRC);
      expect(checkCitation(tree, { file: FILE, function: 'iommufd_vfio_unmap_dma', lines: { '6.12.117': '23' }, excerpt: 'return -EOPNOTSUPP;' }, '6.12.117')).to.equal(null);
      expect(checkCitation(tree, { file: 'drivers/vfio/container.c', function: 'f', lines: { '6.12.117': '1' }, excerpt: 'x' }, '6.12.117')).to.include('drivers/vfio/container.c: not in the kernel tree');
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
