// One account: figures, the margin waterfall, positions, the attribution of the requirement,
// liquidation prices against the mark, health over time, the stress curve, the risk matrix
// (portfolio mode), a what-if form and the allocation suggestion. Live on `account.{id}`.

import {
  signIn, api, Stream, notice, money, price, health, percent, when, badge, cell, el, lineChart,
} from './common.js';

const id = document.getElementById('account-id').dataset.account;
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

await signIn();

let report = null;
let allocation = null;

function figure(list, label, value, { format = money, name } = {}) {
  list.append(el('dt', {}, label), el('dd', { 'data-name': name, 'data-value': value ?? '' }, format(value)));
}

function renderSummary() {
  const list = document.getElementById('summary');
  list.replaceChildren();
  figure(list, 'Mode', report.mode, { format: String, name: 'mode' });
  figure(list, 'Settlement asset', report.settlement_asset, { format: String, name: 'settlement_asset' });
  figure(list, 'Equity', report.equity, { name: 'equity' });
  figure(list, 'Initial margin', report.initial_margin, { name: 'initial_margin' });
  figure(list, 'Maintenance margin', report.maintenance_margin, { name: 'maintenance_margin' });
  figure(list, 'Available', report.available, { name: 'available' });
  figure(list, 'Withdrawable', report.withdrawable, { name: 'withdrawable' });
  figure(list, 'Health', report.health, { format: health, name: 'health' });
  figure(list, 'As of', report.timestamp, { format: when, name: 'timestamp' });
  document.getElementById('account-state').replaceWith(Object.assign(badge(report.state), { id: 'account-state' }));
}

// Collateral -> equity -> IM and MM -> available, withdrawable and buffer, as bars on one scale.
function renderWaterfall() {
  const steps = [
    ['collateral_value', 'Collateral value', report.collateral_value],
    ['unrealized_pnl', '+ unrealised P&L', report.unrealized_pnl],
    ['option_value', '+ option value', report.option_value],
    ['equity', '= Equity', report.equity],
    ['initial_margin', 'Initial margin', report.initial_margin],
    ['maintenance_margin', 'Maintenance margin', report.maintenance_margin],
    ['available', 'Available (equity - IM)', report.available],
    ['withdrawable', 'Withdrawable', report.withdrawable],
    ['buffer', 'Buffer kept', allocation ? allocation.buffer : null],
  ];
  const numbers = steps.map(([, , value]) => Number(value ?? 0));
  const scale = Math.max(1, ...numbers.map(Math.abs));
  const width = 640; const label = 190; const valueWidth = 120; const bar = 20; const gap = 6;
  const span = width - label - valueWidth;
  const zero = label + (numbers.some((n) => n < 0) ? span / 2 : 0);
  const unit = (numbers.some((n) => n < 0) ? span / 2 : span) / scale;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${steps.length * (bar + gap)}`, role: 'img', 'aria-label': 'Margin waterfall' });
  steps.forEach(([name, text, value], index) => {
    const y = index * (bar + gap);
    const number = Number(value ?? 0);
    const group = svg('g', { 'data-name': name, 'data-value': value ?? '' });
    const colour = name === 'equity' ? '#0550ae' : name.endsWith('margin') ? '#a40e26' : number < 0 ? '#8a2d00' : '#116329';
    group.append(
      svg('text', { x: 0, y: y + 15 }, text),
      svg('rect', { x: number < 0 ? zero + number * unit : zero, y, width: Math.max(1, Math.abs(number) * unit), height: bar, fill: colour }),
      svg('text', { x: width - 4, y: y + 15, 'text-anchor': 'end' }, value === null ? '—' : money(value)),
    );
    chart.append(group);
  });
  document.getElementById('waterfall').replaceChildren(chart);
}

function renderPositions() {
  const tbody = document.querySelector('#positions tbody');
  tbody.replaceChildren(...report.positions.map((position) => {
    const tr = el('tr', { 'data-instrument': position.instrument });
    tr.append(
      el('th', { scope: 'row' }, position.instrument + (position.isolated ? ' (isolated)' : '')),
      cell(position.size, { value: position.size, numeric: true }),
      cell(price(position.mark_price), { value: position.mark_price, numeric: true }),
      cell(money(position.value), { value: position.value, numeric: true }),
      cell(money(position.upnl), { value: position.upnl, numeric: true }),
      cell(money(position.initial_margin), { value: position.initial_margin, numeric: true }),
      cell(money(position.maintenance_margin), { value: position.maintenance_margin, numeric: true }),
      // An option's liquidation level is its underlying's index, not a premium.
      cell(price(position.liquidation_price) + (position.liquidation_price_of === 'index' && position.liquidation_price !== null ? ' (index)' : ''), { value: position.liquidation_price, numeric: true }),
      cell(percent(position.distance_to_liquidation_pct), { value: position.distance_to_liquidation_pct, numeric: true }),
    );
    return tr;
  }));
  if (report.positions.length === 0) {
    tbody.append(el('tr', {}, el('td', { colspan: 9 }, 'No open positions.')));
  }
}

// Each position's (or collateral's) part of the requirement, from the report's components.
function renderAttribution() {
  const parts = new Map();
  for (const component of report.components) {
    const [kind, ...rest] = component.name.split(':');
    if (kind !== 'initial_margin' && kind !== 'maintenance_margin' && kind !== 'borrow_initial_margin' && kind !== 'borrow_maintenance_margin') continue;
    const key = (kind.startsWith('borrow') ? 'borrow ' : '') + rest.join(':');
    const part = parts.get(key) || { im: 0, mm: 0, imText: '0', mmText: '0' };
    if (kind.endsWith('initial_margin')) { part.im += Number(component.amount); part.imText = component.amount; }
    else { part.mm += Number(component.amount); part.mmText = component.amount; }
    parts.set(key, part);
  }
  const total = Number(report.initial_margin) || 1;
  const table = el('table', { id: 'attribution-table' });
  table.append(el('caption', { class: 'sr' }, 'Initial and maintenance margin by position'));
  table.append(el('thead', {}, el('tr', {},
    el('th', { scope: 'col' }, 'Position'), el('th', { scope: 'col', class: 'num' }, 'Initial margin'),
    el('th', { scope: 'col', class: 'num' }, 'Maintenance margin'), el('th', { scope: 'col' }, 'Share of IM'))));
  const tbody = el('tbody');
  for (const [key, part] of parts) {
    const share = (part.im / total) * 100;
    const bar = el('div', { style: `height:10px;background:#a40e26;width:${Math.max(0, Math.min(100, Math.abs(share)))}%`, 'aria-hidden': 'true' });
    tbody.append(el('tr', { 'data-part': key },
      el('th', { scope: 'row' }, key),
      cell(money(part.imText), { value: part.imText, numeric: true }),
      cell(money(part.mmText), { value: part.mmText, numeric: true }),
      el('td', {}, `${share.toFixed(1)}%`, bar)));
  }
  table.append(tbody);
  document.getElementById('attribution').replaceChildren(parts.size ? table : el('p', {}, 'No requirement.'));
}

// One axis per position: the mark and the liquidation price on it.
function renderLiquidationAxes() {
  const container = document.getElementById('liq-axes');
  // The mark and the level share an axis only where the level is the instrument's own price
  // (an option's is its underlying's index).
  const marked = report.positions.filter((position) => position.liquidation_price !== null && position.liquidation_price_of !== 'index');
  if (marked.length === 0) {
    container.replaceChildren(el('p', {}, 'No liquidation price: no position can be liquidated by its own price move.'));
    return;
  }
  container.replaceChildren(...marked.map((position) => {
    const mark = Number(position.mark_price);
    const liq = Number(position.liquidation_price);
    const low = Math.min(mark, liq) * 0.9;
    const high = Math.max(mark, liq) * 1.1;
    const x = (value) => 20 + ((value - low) / (high - low || 1)) * 560;
    const label = (value) => Math.min(520, Math.max(80, x(value)));
    const chart = svg('svg', {
      viewBox: '0 0 600 84', role: 'img', 'data-instrument': position.instrument,
      'aria-label': `${position.instrument}: mark ${price(mark)}, liquidation at ${price(liq)}`,
    });
    chart.append(
      svg('text', { x: 0, y: 12, 'font-weight': '600' }, position.instrument),
      svg('line', { x1: 20, x2: 580, y1: 50, y2: 50, stroke: '#57606a' }),
      svg('line', { x1: x(mark), x2: x(mark), y1: 38, y2: 62, stroke: '#0550ae', 'stroke-width': 3 }),
      svg('text', { x: label(mark), y: 78, 'text-anchor': 'middle' }, `mark ${price(mark)}`),
      svg('line', { x1: x(liq), x2: x(liq), y1: 38, y2: 62, stroke: '#a40e26', 'stroke-width': 3 }),
      svg('text', { x: label(liq), y: 32, 'text-anchor': 'middle', fill: '#a40e26' }, `liquidation ${price(liq)}`),
    );
    return chart;
  }));
}

async function loadReport() {
  report = await api(`/v1/accounts/${encodeURIComponent(id)}`);
  renderSummary();
  renderWaterfall();
  renderPositions();
  renderAttribution();
  renderLiquidationAxes();
  if (healthChart) drawHealth();
  document.body.dataset.ready = 'true';
}

async function loadAllocation() {
  allocation = await api('/v1/allocate', { body: { account: id } });
  const container = document.getElementById('allocation');
  const trades = document.getElementById('whatif-trades');
  if (report && report.positions.length) trades.placeholder = `${report.positions[0].instrument}:1`;
  const list = el('dl', { class: 'figures' });
  figure(list, 'Excess over IM', allocation.excess, { name: 'excess' });
  figure(list, 'Withdrawable', allocation.withdrawable, { name: 'withdrawable' });
  figure(list, 'Buffer', allocation.buffer, { name: 'buffer' });
  figure(list, 'Buffer policy', allocation.buffer_detail, { format: String, name: 'buffer_detail' });
  const moves = allocation.moves.length
    ? el('ul', {}, ...allocation.moves.map((move) => el('li', {}, JSON.stringify(move))))
    : el('p', {}, 'No reallocation suggested.');
  container.replaceChildren(list, moves);
  renderWaterfall();
}

// ---- health over time ----

const healthPoints = [];
let healthChart = null;

function drawHealth() {
  // The health holds until the report's time: the current figure closes the line.
  const points = healthPoints.slice();
  if (report && report.health !== null && report.timestamp) points.push([Date.parse(report.timestamp) / 1000, report.health]);
  points.sort((a, b) => a[0] - b[0]);
  healthChart.setData([points.map((p) => p[0]), points.map((p) => p[1])]);
}

async function loadHistory() {
  const answer = await api(`/v1/accounts/${encodeURIComponent(id)}/history?limit=2000`);
  healthPoints.length = 0;
  for (const point of answer.points) {
    if (point.health !== null && point.ts) healthPoints.push([Date.parse(point.ts) / 1000, point.health]);
  }
  healthChart = lineChart(document.getElementById('health-chart'), {
    series: [{ label: 'health', stroke: '#0550ae' }], xTime: true, yLabel: 'health',
  });
  drawHealth();
}

// ---- stress curve: P&L against a joint move, with the IM and MM lines ----

async function loadStress() {
  const answer = await api('/v1/stress', { body: { account: id, scenarios: 'curve' } });
  const equity = Number(answer.base.equity);
  const moves = []; const pnl = []; const im = []; const mm = [];
  for (const row of answer.scenarios) {
    const move = row.price_moves.length ? row.price_moves[0][1] : 0;
    moves.push(move * 100);
    pnl.push(Number(row.pnl));
    im.push(Number(row.initial_margin) - equity);
    mm.push(Number(row.maintenance_margin) - equity);
  }
  const chart = lineChart(document.getElementById('stress-chart'), {
    series: [
      { label: `P&L (${answer.settlement_asset})`, stroke: '#0550ae' },
      { label: 'IM line', stroke: '#6c4400', dash: [6, 4] },
      { label: 'MM line', stroke: '#a40e26', dash: [2, 3] },
    ],
    xLabel: 'joint move (%)',
  });
  chart.setData([moves, pnl, im, mm]);
  document.getElementById('stress-chart').dataset.points = String(moves.length);
}

// ---- risk matrix (portfolio mode) ----

async function loadMatrix() {
  if (report.mode !== 'portfolio') return;
  const matrices = await api(`/v1/accounts/${encodeURIComponent(id)}/risk-matrix`);
  document.getElementById('matrix-section').hidden = false;
  const container = document.getElementById('matrix');
  container.replaceChildren(...matrices.map((matrix) => {
    const all = matrix.rows.flatMap((row) => row.pnl).concat(matrix.total);
    const scale = Math.max(1, ...all.map(Math.abs));
    const shade = (value) => {
      const strength = Math.min(1, Math.abs(value) / scale);
      // Light enough for dark text at any strength (contrast above 4.5:1).
      const light = Math.round(96 - strength * 28);
      return value < 0 ? `hsl(355 80% ${light}%)` : `hsl(140 60% ${light}%)`;
    };
    const heatCell = (value) => {
      const td = el('td', { 'data-value': value, style: `background:${shade(value)};color:#1f2328` }, money(value));
      return td;
    };
    const table = el('table', { class: 'heat', 'data-underlying': matrix.underlying });
    table.append(el('caption', {}, `${matrix.underlying}: P&L of each exposure in each scenario`));
    table.append(el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Exposure'),
      ...matrix.scenarios.map((name) => el('th', { scope: 'col' }, name)))));
    const tbody = el('tbody');
    for (const row of matrix.rows) {
      tbody.append(el('tr', {}, el('th', { scope: 'row' }, `${row.instrument} (${row.exposure})`), ...row.pnl.map(heatCell)));
    }
    tbody.append(el('tr', {}, el('th', { scope: 'row' }, 'Total'), ...matrix.total.map(heatCell)));
    table.append(tbody);
    return el('div', { class: 'scroller', style: 'height:auto;overflow-x:auto', tabindex: '0', role: 'region', 'aria-label': `${matrix.underlying} risk matrix, scrollable` }, table);
  }));
}

// ---- what-if ----

document.getElementById('whatif-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const trades = document.getElementById('whatif-trades').value.split('\n').map((line) => line.trim()).filter(Boolean);
  const result = document.getElementById('whatif-result');
  result.replaceChildren(el('p', {}, 'Checking…'));
  try {
    const answer = await api('/v1/whatif', { body: { account: id, trades } });
    const rows = [
      ['equity', 'Equity', money], ['initial_margin', 'Initial margin', money],
      ['maintenance_margin', 'Maintenance margin', money], ['available', 'Available', money],
      ['health', 'Health', health], ['state', 'State', String],
    ];
    const table = el('table', { id: 'whatif-table' });
    table.append(el('caption', { class: 'sr' }, 'Before and after the trades'));
    table.append(el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Figure'), el('th', { scope: 'col', class: 'num' }, 'Before'), el('th', { scope: 'col', class: 'num' }, 'After'))));
    table.append(el('tbody', {}, ...rows.map(([name, label, format]) => el('tr', { 'data-name': name },
      el('th', { scope: 'row' }, label),
      cell(format(answer.before[name]), { value: answer.before[name], numeric: true }),
      cell(format(answer.after[name]), { value: answer.after[name], numeric: true })))));
    const verdict = answer.accepted
      ? el('p', { class: 'accepted', id: 'whatif-verdict', 'data-accepted': 'true' }, `Accepted. ${answer.reason}`)
      : el('p', { class: 'refused', id: 'whatif-verdict', 'data-accepted': 'false', 'data-refusal': answer.refusal }, `Refused (${answer.refusal}). ${answer.reason}`);
    result.replaceChildren(verdict, table);
  } catch (problem) {
    result.replaceChildren(el('p', { class: 'refused', id: 'whatif-verdict', 'data-error': problem.code }, `${problem.field ? `${problem.field}: ` : ''}${problem.message}`));
  }
});

// ---- start ----

try {
  await loadReport();
} catch (problem) {
  notice(problem.message);
  document.body.dataset.ready = 'refused';
  await new Promise(() => {}); // nothing more to show
}
await Promise.allSettled([loadAllocation(), loadHistory(), loadStress(), loadMatrix()]).then((outcomes) => {
  const failed = outcomes.filter((outcome) => outcome.status === 'rejected');
  if (failed.length) notice(failed.map((outcome) => outcome.reason.message).join('; '));
});
document.body.dataset.complete = 'true';

let reloadPending = false;
new Stream([`account.${id}`], {
  onMessage({ data }) {
    if (data.type === 'account_updated' && data.health !== null && data.ts) {
      healthPoints.push([Date.parse(data.ts) / 1000, data.health]);
      if (healthChart) drawHealth();
    }
    if (reloadPending) return;
    reloadPending = true;
    setTimeout(async () => {
      reloadPending = false;
      try { await loadReport(); await loadAllocation(); } catch (problem) { notice(problem.message); }
    }, 500);
  },
});
