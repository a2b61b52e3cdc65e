// audit.html: one self-contained page (inline CSS and JS, nothing fetched):
// the matrix as one table, differing cells marked by class, colour and a
// marker readable without colour, each difference linked to its explanation
// (with the kernel source), filters by area and "differences only".
// Everything from the raw files or the known-differences table is escaped.
import { appliesToKernel, kernelCitations, knownDifferenceAnchor, type KnownDifference } from './known-differences.ts';
import { areasOf, auditPlatforms, cellSummary, comparisonLink, markedComparisons, showPointValue, showValue, type Audit, type AuditRow, type Comparison } from './report.ts';
import { BACKEND_IDS, type BackendId, type Observation, type Step } from './types.ts';
import { MARKERS } from './render-markdown.ts';
import { auditKernels, switchSummaries } from './switches.ts';
import { hostHtml } from './render-host.ts';

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** An id/href fragment: only characters that need no escaping anywhere. */
export function htmlId(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function scenarioAnchor(id: string): string {
  return htmlId(`s-${id}`);
}

const CSS = `
:root { --explained: #fff1c2; --explained-edge: #b58900; --bad: #ffd6d6; --bad-edge: #c00; --model: #7a3db8; --na: #777; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 1.4em; } h2 { margin-top: 2em; } h3 { font-size: 1.05em; }
.verdict { font-weight: bold; padding: .4em .8em; display: inline-block; border: 2px solid; }
.verdict.pass { color: #064; border-color: #064; } .verdict.fail { color: var(--bad-edge); border-color: var(--bad-edge); }
table { border-collapse: collapse; } th, td { border: 1px solid #bbb; padding: .3em .5em; vertical-align: top; text-align: left; }
#matrix thead th { position: sticky; top: 0; background: #eee; }
.sid code { font-weight: bold; } .title { color: #333; max-width: 32em; }
.setup, .platform, .not-compared { font-size: .8em; color: #555; max-width: 36em; }
.cell .errno { font-family: ui-monospace, monospace; font-weight: bold; }
.cell .out { font-family: ui-monospace, monospace; font-size: .85em; display: block; word-break: break-all; max-width: 28em; }
.cell.differs.explained { background: var(--explained); outline: 2px solid var(--explained-edge); outline-offset: -2px; }
.cell.differs.failing { background: var(--bad); outline: 3px solid var(--bad-edge); outline-offset: -3px; }
.marker { font-weight: bold; margin-right: .2em; }
.cell .why { display: block; font-size: .85em; }
.cell.status-not-applicable, .cell.status-unavailable, .cell.status-skipped, .cell.status-missing { color: var(--na); font-style: italic; }
.cell.status-missing, .cell.status-unavailable { background: repeating-linear-gradient(45deg, #fff, #fff 6px, #f0f0f0 6px, #f0f0f0 12px); }
.model { font-size: .8em; color: #064; } .model.mismatch { color: var(--model); font-weight: bold; }
.cell.model-mismatch { box-shadow: inset 0 0 0 3px var(--model); }
details { font-size: .8em; } details ol { padding-left: 1.4em; margin: .2em 0; } details li { font-family: ui-monospace, monospace; }
#filters { margin: 1em 0; display: flex; gap: 1.5em; align-items: center; }
article { border: 1px solid #ccc; padding: .5em 1em; margin: 1em 0; }
article.failing { border: 2px solid var(--bad-edge); }
article pre { background: #f6f6f6; padding: .5em; overflow-x: auto; }
:target { scroll-margin-top: 3em; } article:target, tr:target td { box-shadow: 0 0 0 3px #36c; }
.legend > span { margin-right: 1.5em; }
.cell .reason { display: block; font-size: .85em; max-width: 28em; }
`;

// Filters: rows hide by area and by "differences only"; the count says how many show.
const SCRIPT = `
(function () {
  var area = document.getElementById('filter-area');
  var diff = document.getElementById('filter-diff');
  var count = document.getElementById('shown-count');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#matrix tbody tr.scenario'));
  function apply() {
    var shown = 0;
    rows.forEach(function (tr) {
      var show = (!area.value || tr.getAttribute('data-area') === area.value) && (!diff.checked || tr.getAttribute('data-differs') === 'true');
      tr.hidden = !show;
      if (show) shown++;
    });
    count.textContent = shown + ' of ' + rows.length + ' scenarios shown';
  }
  area.addEventListener('change', apply);
  diff.addEventListener('change', apply);
  // Following a link to a hidden row shows it again.
  window.addEventListener('hashchange', function () {
    var t = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (t && t.hidden) { area.value = ''; diff.checked = false; apply(); t.scrollIntoView(); }
  });
  apply();
  document.body.setAttribute('data-ready', 'true');
})();
`;

function stepsList(o: Observation, label: string): string {
  const li = (s: Step) =>
    `<li>${escapeHtml(s.op)}${s.in ? `(${Object.entries(s.in).map(([k, v]) => `${escapeHtml(k)}=${escapeHtml(showValue(v))}`).join(', ')})` : ''}: ${escapeHtml(s.errno)}${Object.entries(s.out ?? {})
      .map(([k, v]) => ` ${escapeHtml(k)}=${escapeHtml(showValue(v))}`)
      .join('')}${s.normalised ? ` <i>(normalised: ${Object.entries(s.normalised).map(([k, v]) => `${escapeHtml(k)}=${escapeHtml(showValue(v))}`).join(', ')})</i>` : ''}</li>`;
  return `<div>${escapeHtml(label)}</div><ol start="0">${o.steps.map(li).join('')}</ol>`;
}

/** A section of cells by scenario and mode, each with its lines (the model's mismatches, or the bits it cannot tell); '' when none. */
function cellListSection(id: string, title: string, entries: readonly { scenario: string; backend: BackendId; detail: string[] }[]): string {
  if (entries.length === 0) return '';
  const items = entries.map((m) => `<li><a href="#${scenarioAnchor(m.scenario)}"><code>${escapeHtml(m.scenario)}</code></a> on ${m.backend}<ul>${m.detail.map((d) => `<li>${escapeHtml(d)}</li>`).join('')}</ul></li>`);
  return `<section id="${id}"><h2>${title}</h2><ul>${items.join('')}</ul></section>`;
}

function cellHtml(row: AuditRow, b: BackendId): string {
  const c = row.cells[b];
  if (c.status !== 'ran') {
    return `<td class="cell status-${c.status}" data-backend="${b}"><span class="errno">${escapeHtml(c.status)}</span><span class="reason">${escapeHtml(c.reason)}</span></td>`;
  }
  const marked = markedComparisons(row, b);
  const failing = marked.some((m) => m.state !== 'explained');
  const classes = ['cell', 'status-ran'];
  if (marked.length > 0) classes.push('differs', failing ? 'failing' : 'explained');
  if (c.modelMismatch.length > 0) classes.push('model-mismatch');
  const { errno, out } = cellSummary(c);
  const links = marked
    .map((m) => {
      const other = m.between[0] === b ? m.between[1] : m.between[0];
      const bad = m.state !== 'explained';
      const text = bad ? `${m.state.toUpperCase()} vs ${other}` : `differs from ${other}: explained`;
      return `<a class="why" data-state="${m.state}" href="#${htmlId(comparisonLink(m))}"><span class="marker" aria-hidden="true">${bad ? MARKERS.unexplained : MARKERS.explained}</span>${escapeHtml(text)}</a>`;
    })
    .join('');
  const model =
    c.modelMismatch.length > 0
      ? `<div class="model mismatch"><span class="marker">${MARKERS.modelMismatch}</span>model differs: ${escapeHtml(c.modelMismatch[0]!)}${c.modelMismatch.length > 1 ? ` (+${c.modelMismatch.length - 1} more)` : ''}</div>`
      : c.modelUnchecked
        ? `<div class="model">model ✓ but for <a href="#model-unchecked">bits it cannot tell</a></div>`
        : '<div class="model">model ✓</div>';
  const notCompared = row.comparisons
    .filter((m) => m.between.includes(b) && m.state === 'not-compared' && row.platformDependent && m.normalised)
    .map((m) => `<div class="not-compared">not compared with ${m.between[0] === b ? m.between[1] : m.between[0]}: platform-dependent</div>`)
    .join('');
  const details = `<details><summary>steps</summary>${stepsList(c.kernel, 'kernel')}${'steps' in c.model ? stepsList(c.model, 'model') : `<div>model threw: ${escapeHtml(c.model.error)}</div>`}</details>`;
  return `<td class="${classes.join(' ')}" data-backend="${b}"><span class="errno">${escapeHtml(errno)}</span>${out.map((o) => `<span class="out">${escapeHtml(o)}</span>`).join('')}${links}${notCompared}${model}${details}</td>`;
}

function pointsTable(cmp: Comparison): string {
  if (cmp.points.length === 0) return '';
  const [a, b] = cmp.between;
  return `<table class="points"><thead><tr><th>step</th><th>field</th><th>${a}</th><th>${b}</th></tr></thead><tbody>${cmp.points
    .map((p) => `<tr><td>${escapeHtml(p.op)}</td><td>${escapeHtml(p.field)}</td><td>${escapeHtml(showPointValue(p, 0))}</td><td>${escapeHtml(showPointValue(p, 1))}</td></tr>`)
    .join('')}</tbody></table>`;
}

function knownArticle(a: Audit, k: KnownDifference): string {
  const row = a.rows.find((r) => r.id === k.scenario);
  const cmp = row?.comparisons.find((x) => x.between[0] === k.between[0] && x.between[1] === k.between[1]);
  const state = cmp ? cmp.state : 'not in this audit';
  const kernel = auditKernels(a)[0];
  const cites = kernel === undefined ? [] : kernelCitations(k, kernel);
  const sources =
    kernel === undefined
      ? '<p class="source">No kernel ran: no citation shown.</p>'
      : cites.length === 0
        ? `<p class="source">No citation of kernel ${escapeHtml(kernel)}'s tree${appliesToKernel(k, a.behaviour) ? ' (a problem of this audit)' : `: the entry is for kernels where ${escapeHtml(JSON.stringify(k.when ?? {}))}`}.</p>`
        : cites
            .map(
              (s) =>
                `<div class="source"><a class="cite" href="${escapeHtml(s.url)}"><code class="file">${escapeHtml(s.file)}</code>:<span class="lines">${escapeHtml(s.lines)}</span></a>, <code class="function">${escapeHtml(s.function)}()</code> (${escapeHtml(kernel!)})<pre>${escapeHtml(s.excerpt)}</pre></div>`,
            )
            .join('');
  return `<article class="explanation${cmp && cmp.state !== 'explained' && cmp.state !== 'not-compared' ? ' failing' : ''}" id="${htmlId(knownDifferenceAnchor(k))}">
<h3><a href="#${scenarioAnchor(k.scenario)}"><code>${escapeHtml(k.scenario)}</code></a>: ${k.between.join(' vs ')}</h3>
<p class="summary"><b>${escapeHtml(k.summary)}</b></p>
<p class="state">Status: ${escapeHtml(state)}</p>
${cmp ? pointsTable(cmp) : ''}
<p class="text">${escapeHtml(k.explanation)}</p>
<h4>Kernel source</h4>${sources}
</article>`;
}

function failingArticle(row: AuditRow, cmp: Comparison): string {
  const what =
    cmp.state === 'unexplained'
      ? 'The backends differ and fixtures/audit/known-differences.json does not list it.'
      : cmp.state === 'changed'
        ? 'The backends differ, but not the way the listed entry says.'
        : 'Listed, but the difference no longer shows: the kernel changed.';
  return `<article class="failing state-${cmp.state}" id="${htmlId(comparisonLink(cmp))}">
<h3>${escapeHtml(cmp.state.toUpperCase())}: <a href="#${scenarioAnchor(row.id)}"><code>${escapeHtml(row.id)}</code></a>, ${cmp.between.join(' vs ')}</h3>
<p>${escapeHtml(what)}${cmp.known ? ` Listed: <a href="#${htmlId(knownDifferenceAnchor(cmp.known))}">${escapeHtml(cmp.known.summary)}</a>.` : ''}</p>
${cmp.detail?.length ? `<ul>${cmp.detail.map((d) => `<li>${escapeHtml(d)}</li>`).join('')}</ul>` : ''}
${pointsTable(cmp)}
</article>`;
}

/** The top of the page, for a VMM author (lib/audit/switches.ts). */
function switchSection(a: Audit): string {
  const kernels = auditKernels(a);
  const platforms = auditPlatforms(a);
  const on = [...(kernels.length > 0 ? [`kernel ${kernels.join(', ')}`] : []), ...(platforms.length > 0 ? [`platform: ${platforms.join(', ')}`] : [])];
  const parts = [`<section id="switch"><h2>What changes when you switch${on.length > 0 ? ` (${escapeHtml(on.join('; '))})` : ''}</h2>`];
  for (const { sw, compared, changes } of switchSummaries(a)) {
    parts.push(`<h3>${escapeHtml(sw.title)}</h3><p>${escapeHtml(sw.note)}</p><p>${changes.length} of ${compared} compared scenarios give a different result.</p>`);
    if (changes.length === 0) continue;
    const rows = changes.map(({ row, cmp, sides }) => {
      const show = (xs: string[]) => `<span class="errno">${escapeHtml(xs[0]!)}</span>${xs.slice(1).map((x) => `<span class="out">${escapeHtml(x)}</span>`).join('')}`;
      const why = cmp.known
        ? `<a href="#${htmlId(knownDifferenceAnchor(cmp.known))}">${escapeHtml(cmp.known.summary)}</a>`
        : `<span class="marker">${MARKERS.unexplained}</span><a href="#${htmlId(comparisonLink(cmp))}">${escapeHtml(cmp.state)}</a>`;
      return `<tr><td><a href="#${scenarioAnchor(row.id)}"><code>${escapeHtml(row.id)}</code></a></td><td class="cell">${show(sides[0])}</td><td class="cell">${show(sides[1])}</td><td>${why}</td></tr>`;
    });
    parts.push(`<table class="switch"><thead><tr><th>scenario</th><th>${sw.between[0]}</th><th>${sw.between[1]}</th><th>what changes</th></tr></thead><tbody>${rows.join('')}</tbody></table>`);
  }
  parts.push('</section>');
  return parts.join('\n');
}

export function renderHtml(a: Audit): string {
  const v = a.verdict;
  const c = v.comparisons;
  const rows = a.rows
    .map((row) => {
      const differs = row.comparisons.some((x) => x.points.length > 0 || x.state === 'stale');
      return `<tr class="scenario" id="${scenarioAnchor(row.id)}" data-scenario="${escapeHtml(row.id)}" data-area="${escapeHtml(row.area)}" data-differs="${differs}">` +
        `<td class="sid"><code>${escapeHtml(row.id)}</code><div class="title">${escapeHtml(row.title)}</div>` +
        `${row.setup ? `<div class="setup">setup: ${escapeHtml(row.setup)}</div>` : ''}` +
        `${row.platformDependent ? `<div class="platform">platform-dependent (type1 and compat-mock not compared): ${escapeHtml(row.platformDependent)}</div>` : ''}</td><td class="area">${escapeHtml(row.area)}</td>` +
        `${BACKEND_IDS.map((b) => cellHtml(row, b)).join('')}</tr>`;
    })
    .join('\n');
  const failing = a.rows.flatMap((row) => row.comparisons.filter((x) => ['unexplained', 'changed', 'stale'].includes(x.state)).map((x) => failingArticle(row, x)));
  const backends = BACKEND_IDS.map((b) => {
    const s = a.backends[b];
    const pf = a.profiles[s.profile].platform;
    return `<tr><td>${b}</td><td>${s.profile}${pf ? ` (${escapeHtml(pf)})` : ''}</td><td class="state-${s.state}">${escapeHtml(s.state)}${s.reason ? `: ${escapeHtml(s.reason)}` : ''}</td><td>${escapeHtml(a.profiles[s.profile].kernel ?? 'n/a')}</td></tr>`;
  }).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iommufd VFIO compat audit</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>iommufd VFIO audit: real type1, iommufd compat and native iommufd</h1>
<p class="verdict ${v.ok ? 'pass' : 'fail'}" id="verdict">Verdict: ${v.ok ? 'PASS' : 'FAIL'}: ${v.scenarios} scenarios; differences ${c.explained} explained, ${c.unexplained} unexplained, ${c.changed} changed, ${c.stale} stale; ${v.modelMismatches.length} model mismatch(es); ${v.problems.length} problem(s)</p>
<p>Generated ${escapeHtml(a.generated)}.</p>
${a.host ? hostHtml(a.host, escapeHtml) : ''}
<table class="backends"><thead><tr><th>backend</th><th>profile</th><th>state</th><th>kernel</th></tr></thead><tbody>${backends}</tbody></table>
<p class="legend"><span><span class="marker">${MARKERS.explained}</span> differs from the other backend of a compared pair; a known difference explains it</span><span><span class="marker">${MARKERS.unexplained}</span> unexplained, changed or stale difference (fails the audit)</span><span><span class="marker">${MARKERS.modelMismatch}</span> the model's prediction differs from the kernel (fails the audit)</span></p>
<div id="filters">
<label>Area <select id="filter-area"><option value="">all</option>${areasOf(a).map((x) => `<option value="${escapeHtml(x)}">${escapeHtml(x)}</option>`).join('')}</select></label>
<label><input type="checkbox" id="filter-diff"> differences only</label>
<span id="shown-count"></span>
</div>
</header>
<main>
${switchSection(a)}
<h2>All scenarios</h2>
<table id="matrix">
<thead><tr><th>scenario</th><th>area</th>${BACKEND_IDS.map((b) => `<th>${b}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
${failing.length > 0 ? `<section id="failing"><h2>Differences that fail the audit</h2>\n${failing.join('\n')}</section>` : ''}
<section id="explanations"><h2>Known differences and their explanations</h2>
${a.known.length === 0 ? '<p>None listed.</p>' : a.known.map((k) => knownArticle(a, k)).join('\n')}
</section>
${cellListSection('model-mismatches', 'Model mismatches (model bugs: they always fail the audit)', v.modelMismatches)}
${cellListSection('model-unchecked', 'Checked without bits the model cannot tell', v.modelUnchecked ?? [])}
${v.problems.length > 0 ? `<section id="problems"><h2>Problems</h2><ul>${v.problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul></section>` : ''}
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
