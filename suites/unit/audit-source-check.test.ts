// lib/audit/source-check.ts: a known difference's excerpt must be inside the
// body of the function it cites, in the kernel tree in use.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCitation, citationProblem, findFunctionBody } from '../../lib/audit/source-check.ts';

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

  it('a body that contains the excerpt (whitespace-normalised, pieces in order): no problem', () => {
    const excerpt = 'if (map.argsz < minsz || map.flags & ~supported_flags)\n    return -EINVAL;\n...\niommu_prot |= IOMMU_READ;';
    expect(citationProblem(SRC, { file: FILE, function: 'iommufd_vfio_map_dma', lines: '11-12', excerpt })).to.equal(null);
  });

  it('a body that does not contain it: names the file, the function and the excerpt', () => {
    // The excerpt is in the file, but in iommufd_vfio_unmap_dma.
    const p = citationProblem(SRC, { file: FILE, function: 'iommufd_vfio_map_dma', excerpt: 'if (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) return -EOPNOTSUPP;' });
    expect(p).to.include(FILE).and.include('iommufd_vfio_map_dma()').and.include('unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL').and.include('outside that function');
    // Pieces out of order.
    expect(citationProblem(SRC, { file: FILE, function: 'iommufd_vfio_map_dma', excerpt: 'iommu_prot |= IOMMU_READ;\n...\nreturn -EINVAL;' })).to.include('in this order');
    // Lines outside the function.
    expect(citationProblem(SRC, { file: FILE, function: 'iommufd_vfio_map_dma', lines: '20-21', excerpt: 'return -EINVAL;' })).to.include('outside iommufd_vfio_map_dma()');
  });

  it('a function not found: says so, naming the file and the function', () => {
    expect(citationProblem(SRC, { file: FILE, function: 'iommufd_vfio_set_iommu', excerpt: 'return rc;' })).to.equal(`${FILE}: function iommufd_vfio_set_iommu() is not defined in the file`);
    expect(() => findFunctionBody(SRC, 'not a name')).to.throw(RangeError);
  });

  it('checkCitation reads the file from the tree, and names a file the tree lacks', () => {
    const tree = mkdtempSync(join(tmpdir(), 'audit-tree-'));
    try {
      mkdirSync(join(tree, 'drivers/iommu/iommufd'), { recursive: true });
      writeFileSync(join(tree, FILE), SRC);
      expect(checkCitation(tree, { file: FILE, function: 'iommufd_vfio_unmap_dma', excerpt: 'return -EOPNOTSUPP;' })).to.equal(null);
      expect(checkCitation(tree, { file: 'drivers/vfio/container.c', function: 'f', excerpt: 'x' })).to.include('drivers/vfio/container.c: not in the kernel tree');
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
