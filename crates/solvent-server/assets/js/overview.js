// The overview: every account ranked by health in a virtualised table (only the rows in sight
// are in the document, so 10,000+ accounts sort, filter and scroll at once), counts per state,
// totals, the insurance fund over time, the feeds of margin calls and liquidations, and index
// prices. Live over the WebSocket: account figures, states, the fund, the feeds and prices.

import {
  signIn, api, Stream, notice, money, price, health, when, badge, cell, el, lineChart, stateLabel,
} from './common.js';

const STATES = ['healthy', 'margin_call', 'reduce_only', 'liquidating', 'bankrupt'];
const RANK = Object.fromEntries(STATES.map((state, index) => [state, index]));
const PAGE = 10000;
const OVERSCAN = 8;

const rows = new Map();
let ordered = [];
let rowHeight = 30;
const page = { search: '', state: '', sort: 'health' };

const who = await signIn();
if (!who.can_read_book) {
  notice(`This key (${who.scope}) sees its own account only.`);
  location.replace(`/accounts/${encodeURIComponent(who.account)}`);
  await new Promise(() => {}); // nothing more on this page for this key
}

const scroller = document.getElementById('accounts-scroll');
const body = document.querySelector('#accounts tbody');

function compare(a, b) {
  switch (page.sort) {
    case 'account':
      return a.account < b.account ? -1 : a.account > b.account ? 1 : 0;
    case 'equity':
    case 'initial_margin':
    case 'maintenance_margin': {
      const x = a[page.sort] === null ? -Infinity : Number(a[page.sort]);
      const y = b[page.sort] === null ? -Infinity : Number(b[page.sort]);
      return y - x || (a.account < b.account ? -1 : 1);
    }
    default: {
      // As the API ranks: the most dangerous state first, then the lowest health, then by id.
      const byState = RANK[b.state] - RANK[a.state];
      if (byState) return byState;
      const x = a.health; const y = b.health;
      if (x !== null && y !== null && x !== y) return x - y;
      if (x === null && y !== null) return 1;
      if (x !== null && y === null) return -1;
      return a.account < b.account ? -1 : a.account > b.account ? 1 : 0;
    }
  }
}

function reorder() {
  const needle = page.search.toLowerCase();
  ordered = [];
  for (const row of rows.values()) {
    if (page.state && row.state !== page.state) continue;
    if (needle && !row.account.toLowerCase().includes(needle)) continue;
    ordered.push(row);
  }
  ordered.sort(compare);
  document.getElementById('shown').textContent = `${ordered.length.toLocaleString('en-US')} of ${rows.size.toLocaleString('en-US')} accounts`;
  renderRows();
}

function rowElement(row) {
  const tr = document.createElement('tr');
  tr.dataset.account = row.account;
  const link = el('a', { href: `/accounts/${encodeURIComponent(row.account)}` }, row.account);
  const first = document.createElement('td');
  first.append(link);
  const state = document.createElement('td');
  state.append(badge(row.state));
  state.dataset.value = row.state;
  tr.append(
    first,
    state,
    cell(health(row.health), { value: row.health, numeric: true }),
    cell(money(row.equity), { value: row.equity, numeric: true }),
    cell(money(row.initial_margin), { value: row.initial_margin, numeric: true }),
    cell(money(row.maintenance_margin), { value: row.maintenance_margin, numeric: true }),
    cell(row.mode || ''),
    cell(row.positions ?? '', { numeric: true }),
  );
  return tr;
}

function spacer(height) {
  const tr = document.createElement('tr');
  tr.className = 'spacer';
  tr.setAttribute('aria-hidden', 'true');
  const td = document.createElement('td');
  td.colSpan = 8;
  tr.style.height = `${height}px`;
  tr.append(td);
  return tr;
}

function renderRows() {
  const head = scroller.querySelector('thead').offsetHeight;
  const top = Math.max(0, scroller.scrollTop - head);
  const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
  const count = Math.ceil(scroller.clientHeight / rowHeight) + 2 * OVERSCAN;
  const last = Math.min(ordered.length, first + count);
  const fragment = document.createDocumentFragment();
  if (first > 0) fragment.append(spacer(first * rowHeight));
  for (let index = first; index < last; index += 1) fragment.append(rowElement(ordered[index]));
  if (last < ordered.length) fragment.append(spacer((ordered.length - last) * rowHeight));
  body.replaceChildren(fragment);
}

let scheduled = false;
scroller.addEventListener('scroll', () => {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => { scheduled = false; renderRows(); });
});

function renderCounts(counts) {
  const list = document.getElementById('counts');
  list.replaceChildren(...STATES.map((state) => {
    const button = el('button', { type: 'button', 'aria-pressed': String(page.state === state), 'data-state': state },
      badge(state), el('span', { class: 'count', 'data-value': counts[state] || 0 }, (counts[state] || 0).toLocaleString('en-US')));
    button.setAttribute('aria-label', `${stateLabel(state)}: ${counts[state] || 0} accounts; show only these`);
    button.onclick = () => {
      page.state = page.state === state ? '' : state;
      document.getElementById('state-filter').value = page.state;
      renderCounts(counts);
      reorder();
    };
    return el('li', {}, button);
  }));
}

function countsFromRows() {
  const counts = {};
  for (const row of rows.values()) counts[row.state] = (counts[row.state] || 0) + 1;
  return counts;
}

function renderTotals(totals) {
  const tbody = document.querySelector('#totals tbody');
  tbody.replaceChildren(...Object.entries(totals).map(([asset, sums]) => {
    const tr = el('tr', { 'data-asset': asset });
    tr.append(
      el('th', { scope: 'row' }, asset),
      cell(money(sums.equity), { value: sums.equity, numeric: true }),
      cell(money(sums.initial_margin), { value: sums.initial_margin, numeric: true }),
      cell(money(sums.maintenance_margin), { value: sums.maintenance_margin, numeric: true }),
    );
    return tr;
  }));
}

// The first page (the most dangerous accounts, the counts and totals of the whole book) is shown
// at once; the whole book follows for sorting, filtering and searching in the browser.
const FIRST = 200;

function show(answer, fresh) {
  rows.clear();
  for (const [id, row] of fresh) rows.set(id, row);
  renderCounts(answer.counts);
  renderTotals(answer.totals);
  reorder();
  document.body.dataset.seq = answer.seq ?? '';
}

async function loadAccounts() {
  const first = await api(`/v1/accounts?limit=${FIRST}`);
  if (rows.size === 0) {
    show(first, new Map(first.accounts.map((row) => [row.account, row])));
    if (!document.body.dataset.firstRenderMs) {
      document.body.dataset.firstRenderMs = String(Math.round(performance.now()));
    }
  }
  let offset = 0;
  let answer = first;
  const fresh = new Map();
  if (first.total > first.accounts.length) {
    do {
      answer = await api(`/v1/accounts?limit=${PAGE}&offset=${offset}`);
      for (const row of answer.accounts) fresh.set(row.account, row);
      offset += answer.accounts.length;
    } while (offset < answer.total && answer.accounts.length > 0);
  } else {
    for (const row of first.accounts) fresh.set(row.account, row);
  }
  show(answer, fresh);
  document.body.dataset.loadedMs = String(Math.round(performance.now()));
}

// Totals come from the API (exact decimal sums); refreshed at most once a second while
// accounts change.
let totalsDirty = false;
let totalsBusy = false;
setInterval(async () => {
  if (!totalsDirty || totalsBusy) return;
  totalsDirty = false;
  totalsBusy = true;
  try {
    const answer = await api('/v1/accounts?limit=1');
    renderTotals(answer.totals);
    if (answer.total !== rows.size) loadAccounts();
  } catch (problem) {
    notice(problem.message);
  } finally {
    totalsBusy = false;
  }
}, 1000);

let reorderPending = false;
function accountChanged() {
  totalsDirty = true;
  if (reorderPending) return;
  reorderPending = true;
  setTimeout(() => {
    reorderPending = false;
    renderCounts(countsFromRows());
    reorder();
  }, 100);
}

function onHealth(data) {
  let row = rows.get(data.account);
  if (!row) {
    row = { account: data.account, state: 'healthy', health: null, equity: null, initial_margin: null, maintenance_margin: null, mode: '', positions: null };
    rows.set(data.account, row);
  }
  if (data.type === 'account_updated') {
    row.health = data.health;
    row.state = data.state;
    row.equity = data.equity;
    row.initial_margin = data.initial_margin;
    row.maintenance_margin = data.maintenance_margin;
  } else if (data.type === 'state_changed') {
    row.state = data.to;
  }
  accountChanged();
}

// ---- feeds ----

function accountLink(id) {
  return el('a', { href: `/accounts/${encodeURIComponent(id)}` }, id);
}

function eventLink(seq) {
  return el('a', { href: `/audit?seq=${seq}#event-${seq}`, 'aria-label': `event ${seq} in the journal` }, `#${seq}`);
}

function feedItem(data) {
  const li = el('li', { 'data-seq': data.seq, 'data-type': data.type });
  li.append(el('span', { class: 'when' }, when(data.ts)), eventLink(data.seq), ' ');
  switch (data.type) {
    case 'margin_call':
      li.append(accountLink(data.account), ` health ${health(data.health)}: deposit ${money(data.deposit)} ${data.asset}`);
      break;
    case 'liquidation':
      li.append(accountLink(data.account), ` ${data.instrument} ${data.size} at ${price(data.price)} (${String(data.reason).replace(/_/g, ' ')})`);
      break;
    case 'liquidation_deferred':
      li.append(accountLink(data.account), ` deferred: ${String(data.reason).replace(/_/g, ' ')}`);
      break;
    case 'adl':
      li.append(accountLink(data.account), ' deleveraged ', accountLink(data.counterparty), ` ${data.instrument} ${data.size} at ${price(data.price)}`);
      break;
    case 'deficit_beyond_fund':
      li.append(accountLink(data.account), ` deficit ${money(data.deficit)} ${data.asset} beyond the fund`);
      break;
    default:
      li.append(data.type);
  }
  return li;
}

function pushFeed(id, data) {
  const list = document.getElementById(id);
  list.prepend(feedItem(data));
  while (list.children.length > 200) list.lastChild.remove();
}

function fillFeed(id, recent) {
  const list = document.getElementById(id);
  list.replaceChildren(...recent.slice().reverse().slice(0, 200).map((message) => feedItem(message.data)));
}

// ---- prices ----

const index = {};
function renderPrices() {
  const list = document.getElementById('prices');
  list.replaceChildren(...Object.keys(index).sort().flatMap((name) => [
    el('dt', {}, name),
    el('dd', { 'data-name': name, 'data-value': index[name] }, price(index[name])),
  ]));
}

// ---- insurance fund ----

const fund = { balances: {}, points: {}, asset: null, chart: null };
let latest = 0;

function renderFund() {
  const list = document.getElementById('fund-balances');
  list.replaceChildren(...Object.keys(fund.balances).sort().flatMap((asset) => [
    el('dt', {}, asset),
    el('dd', { 'data-asset': asset, 'data-value': fund.balances[asset] }, money(fund.balances[asset])),
  ]));
  if (!fund.asset) {
    const assets = Object.keys(fund.points);
    fund.asset = assets.includes('USDT') ? 'USDT' : assets[0];
  }
  // The balance holds until now: the last point is repeated at the latest time seen.
  const points = (fund.points[fund.asset] || []).slice();
  if (points.length && latest > points[points.length - 1][0]) points.push([latest, points[points.length - 1][1]]);
  if (fund.chart) fund.chart.setData([points.map((p) => p[0]), points.map((p) => p[1])]);
}

function addFundPoint(data) {
  if (data.type !== 'insurance_fund_changed') return;
  const seconds = data.ts ? Date.parse(data.ts) / 1000 : Date.now() / 1000;
  (fund.points[data.asset] ||= []).push([seconds, Number(data.balance)]);
  fund.balances[data.asset] = data.balance;
}

async function loadFund() {
  const [answer, now] = await Promise.all([api('/v1/insurance-fund?limit=10000'), api('/v1/prices')]);
  latest = Date.parse(now.timestamp) / 1000 || latest;
  Object.assign(index, now.index);
  renderPrices();
  fund.points = {};
  for (const change of answer.changes) addFundPoint(change.data);
  fund.balances = { ...answer.balances };
  const container = document.getElementById('fund-chart');
  if (!fund.chart) {
    fund.asset = null;
    renderFund();
    fund.chart = lineChart(container, {
      series: [{ label: `${fund.asset || ''} balance`, stroke: '#0550ae' }],
      xTime: true,
      yLabel: fund.asset || '',
    });
  }
  renderFund();
}

// ---- controls ----

document.getElementById('search').addEventListener('input', (event) => { page.search = event.target.value.trim(); reorder(); });
document.getElementById('state-filter').addEventListener('change', (event) => {
  page.state = event.target.value;
  renderCounts(countsFromRows());
  reorder();
});
document.getElementById('sort').addEventListener('change', (event) => { page.sort = event.target.value; reorder(); });

// ---- start ----

try {
  await Promise.all([loadAccounts(), loadFund()]);
  document.body.dataset.ready = 'true';
} catch (problem) {
  notice(problem.message);
}
const measured = body.querySelector('tr:not(.spacer)');
if (measured && measured.offsetHeight) { rowHeight = measured.offsetHeight; renderRows(); }

new Stream(['health', 'margin_calls', 'liquidations', 'insurance_fund', 'prices'], {
  onSnapshot(channel, data) {
    if (channel === 'prices') {
      Object.assign(index, data.index || {});
      renderPrices();
    } else if (channel === 'margin_calls') {
      fillFeed('margin-calls', data.recent || []);
    } else if (channel === 'liquidations') {
      fillFeed('liquidations', data.recent || []);
    } else if (channel === 'insurance_fund') {
      Object.assign(fund.balances, data.balances || {});
      renderFund();
    }
  },
  onMessage({ channel, data }) {
    switch (channel) {
      case 'health': onHealth(data); break;
      case 'margin_calls': pushFeed('margin-calls', data); break;
      case 'liquidations': pushFeed('liquidations', data); break;
      case 'insurance_fund': addFundPoint(data); renderFund(); break;
      case 'prices':
        if (data.type === 'index_price') { index[data.name] = data.price; renderPrices(); }
        if (data.ts) { latest = Math.max(latest, Date.parse(data.ts) / 1000); renderFund(); }
        break;
      default: break;
    }
    document.body.dataset.lastFeedSeq = String(data.seq ?? '');
  },
});
