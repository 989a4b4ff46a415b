// Stress and cascade: shock the whole book (one underlying, or several jointly) and watch the
// cascade's rounds: prices, accounts liquidated, liquidated notional and the insurance fund's
// path. It runs on a copy of the engine; the live book does not change.

import { signIn, api, notice, money, price, el, cell, lineChart, setLive } from './common.js';

const who = await signIn();
setLive('');
if (!who.can_read_book) {
  notice(`A key scoped ${who.scope} cannot shock the whole book.`);
  await new Promise(() => {}); // nothing more on this page for this key
}

const prices = await api('/v1/prices');
const inputs = document.getElementById('shock-inputs');
for (const name of Object.keys(prices.index).sort()) {
  const id = `shock-${name}`;
  inputs.append(
    el('label', { for: id }, `${name} (index ${price(prices.index[name])})`),
    el('input', { id, type: 'number', step: '0.5', min: '-99', max: '1000', value: name === 'BTC' ? '-20' : '0', 'data-underlying': name }),
  );
}
document.body.dataset.ready = 'true';

let volumeChart = null;
let fundChart = null;

function render(report, final) {
  const totals = report.totals;
  const list = document.getElementById('cascade-totals');
  list.replaceChildren();
  if (final) {
    const add = (label, value, format = money, name) => list.append(el('dt', {}, label), el('dd', { 'data-name': name, 'data-value': value }, format(value)));
    add('Rounds', totals.rounds, String, 'rounds');
    add('Stopped because', totals.stopped.replace(/_/g, ' '), String, 'stopped');
    add('Accounts liquidated', totals.accounts_liquidated, String, 'accounts_liquidated');
    add('Liquidated notional (USD)', totals.volume_usd, money, 'volume_usd');
    add('Auto-deleveraged (USD)', totals.adl_volume_usd, money, 'adl_volume_usd');
    add('Insurance fund before (USD)', totals.insurance_fund_start_usd, money, 'insurance_fund_start_usd');
    add('Insurance fund lowest (USD)', totals.insurance_fund_min_usd, money, 'insurance_fund_min_usd');
    add('Fund needed to avoid ADL (USD)', totals.insurance_fund_needed_usd, money, 'insurance_fund_needed_usd');
  }

  const tbody = document.querySelector('#rounds-table tbody');
  tbody.replaceChildren(...report.rounds.map((round) => {
    const tr = el('tr', { 'data-round': round.round });
    tr.append(
      el('th', { scope: 'row' }, String(round.round)),
      cell(Object.entries(round.prices).map(([name, value]) => `${name} ${price(value)}`).join(', ')),
      cell(String(round.accounts_liquidated), { value: round.accounts_liquidated, numeric: true }),
      cell(money(round.volume_usd), { value: round.volume_usd, numeric: true }),
      cell(money(round.adl_volume_usd), { value: round.adl_volume_usd, numeric: true }),
      cell(money(round.insurance_fund_usd), { value: round.insurance_fund_usd, numeric: true }),
    );
    return tr;
  }));

  const x = report.rounds.map((round) => round.round);
  if (!volumeChart) {
    volumeChart = lineChart(document.getElementById('volume-chart'), {
      series: [{ label: 'liquidated (USD)', stroke: '#a40e26' }, { label: 'ADL (USD)', stroke: '#6c4400', dash: [6, 4] }],
      xLabel: 'round',
    });
    fundChart = lineChart(document.getElementById('fund-path-chart'), {
      series: [{ label: 'insurance fund (USD)', stroke: '#0550ae' }],
      xLabel: 'round',
    });
  }
  volumeChart.setData([x, report.rounds.map((r) => Number(r.volume_usd)), report.rounds.map((r) => Number(r.adl_volume_usd))]);
  fundChart.setData([x, report.rounds.map((r) => Number(r.insurance_fund_usd))]);
}

document.getElementById('cascade-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const shocks = {};
  for (const input of inputs.querySelectorAll('input[data-underlying]')) {
    const percent = Number(input.value);
    if (input.value !== '' && percent !== 0) shocks[input.dataset.underlying] = String(percent / 100);
  }
  const status = document.getElementById('cascade-status');
  if (Object.keys(shocks).length === 0) {
    status.textContent = 'Give at least one underlying a move.';
    return;
  }
  status.textContent = 'Running the cascade on a copy of the book…';
  document.body.dataset.cascade = 'running';
  const started = performance.now();
  try {
    const report = await api('/v1/cascade', {
      body: {
        shocks,
        impact: Number(document.getElementById('impact').value),
        max_rounds: Number(document.getElementById('rounds').value),
      },
    });
    // The rounds appear one after another (two seconds at most), then the totals.
    const pause = Math.min(300, 2000 / Math.max(1, report.rounds.length));
    for (let shown = 1; shown < report.rounds.length; shown += 1) {
      render({ ...report, rounds: report.rounds.slice(0, shown) }, false);
      status.textContent = `Round ${shown - 1} of ${report.rounds.length - 1}…`;
      await new Promise((resolve) => { setTimeout(resolve, pause); });
    }
    render(report, true);
    status.textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s: ${report.totals.rounds} rounds over ${report.accounts.toLocaleString('en-US')} accounts.`;
    document.body.dataset.cascade = 'done';
  } catch (problem) {
    status.textContent = `${problem.field ? `${problem.field}: ` : ''}${problem.message}`;
    document.body.dataset.cascade = 'failed';
  }
});
