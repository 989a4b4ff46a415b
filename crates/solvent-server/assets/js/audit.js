// The audit page: the durable journal in pages with filters (account, event type, effect type,
// sequence range), every event with the effects it caused, journaled with it; every effect names
// and links to the event that caused it (`#event-SEQ`), and `?seq=N` opens the journal at event
// N. Pages are keyed by sequence number: the server says where to continue (`next`).

import { signIn, api, notice, when, el, money, setLive } from './common.js';

const who = await signIn();
setLive('');
const form = document.getElementById('audit-form');
const accountInput = document.getElementById('audit-account');
const typeInput = document.getElementById('audit-type');
const effectInput = document.getElementById('audit-effect');
const afterInput = document.getElementById('audit-after');
const toInput = document.getElementById('audit-to');
const tbody = document.querySelector('#journal tbody');
const more = document.getElementById('audit-more');
const status = document.getElementById('audit-status');

const params = new URLSearchParams(location.search);
if (who.account) {
  accountInput.value = who.account;
  accountInput.readOnly = true;
}
if (params.get('account')) accountInput.value = params.get('account');
if (params.get('type')) typeInput.value = params.get('type');
if (params.get('effect_type')) effectInput.value = params.get('effect_type');
if (params.get('to_seq')) toInput.value = params.get('to_seq');
const focus = params.get('seq');
if (focus) afterInput.value = String(Math.max(0, Number(focus) - 1));

function details(event) {
  const { type, ...fields } = event;
  return Object.entries(fields)
    .filter(([, value]) => value !== null && typeof value !== 'object')
    .map(([name, value]) => `${name} ${value}`)
    .join(', ');
}

function effectText(effect) {
  const parts = [effect.type.replace(/_/g, ' ')];
  for (const name of ['account', 'counterparty', 'instrument', 'state', 'to', 'asset']) {
    if (effect[name] !== undefined && typeof effect[name] !== 'object') parts.push(`${name} ${effect[name]}`);
  }
  for (const name of ['equity', 'amount', 'balance', 'change', 'deposit', 'deficit']) {
    if (effect[name] !== undefined) parts.push(`${name} ${money(effect[name])}`);
  }
  if (effect.health !== undefined && effect.health !== null) parts.push(`health ${Number(effect.health).toFixed(3)}`);
  if (effect.size !== undefined) parts.push(`size ${effect.size}`);
  if (effect.reason !== undefined) parts.push(`(${typeof effect.reason === 'string' ? effect.reason.replace(/_/g, ' ') : JSON.stringify(effect.reason)})`);
  return parts.join(' ');
}

function row(entry) {
  const tr = el('tr', { id: `event-${entry.seq}`, 'data-seq': entry.seq, 'data-type': entry.event.type });
  const effects = el('ol', { class: 'effects' }, ...entry.effects.map((effect, index) => el('li', { 'data-type': effect.type },
    el('a', { href: `#event-${effect.seq}`, 'data-caused-by': effect.seq, 'aria-label': `effect ${index + 1}, caused by event ${effect.seq}` }, `#${effect.seq}`),
    ' ', effectText(effect))));
  tr.append(
    el('th', { scope: 'row' }, el('a', { href: `/audit?seq=${entry.seq}#event-${entry.seq}` }, `#${entry.seq}`)),
    el('td', {}, when(entry.ts)),
    el('td', {}, entry.event.type.replace(/_/g, ' ')),
    el('td', {}, details(entry.event)),
    el('td', {}, entry.effects.length ? effects
      : el('span', { class: 'muted' }, entry.effects_pending ? 'not written yet' : 'none')),
  );
  return tr;
}

// Where "Older events" continues: the oldest entry examined so far (null: the journal's start).
let olderFrom = null;

function describe(answer, shown) {
  const beyond = answer.next === null ? 'no more match beyond this page' : 'more match beyond this page';
  return `${shown} events shown, each with its effects; ${beyond}; latest event ${answer.seq ?? '—'}.`;
}

function query(extra) {
  const search = new URLSearchParams({ limit: '100', ...extra });
  if (accountInput.value.trim()) search.set('account', accountInput.value.trim());
  if (typeInput.value) search.set('type', typeInput.value);
  if (effectInput.value) search.set('effect_type', effectInput.value);
  if (toInput.value.trim()) search.set('to_seq', toInput.value.trim());
  return `/v1/journal?${search}`;
}

async function load() {
  const after = afterInput.value.trim();
  try {
    const answer = await api(query(after ? { after } : {}));
    tbody.replaceChildren(...answer.events.map(row));
    // Paging back from a forward page starts before its first event; from a backward page,
    // where the server stopped examining.
    olderFrom = after ? (answer.events.length ? answer.events[0].seq : null) : answer.next;
    more.hidden = olderFrom === null || olderFrom <= 1;
    status.textContent = describe(answer, answer.events.length);
    document.body.dataset.ready = 'true';
    if (focus) {
      const target = document.getElementById(`event-${focus}`);
      if (target) target.scrollIntoView({ block: 'center' });
    }
  } catch (problem) {
    notice(problem.message);
  }
}

more.addEventListener('click', async () => {
  if (olderFrom === null) return;
  try {
    const answer = await api(query({ before: String(olderFrom) }));
    tbody.prepend(...answer.events.map(row));
    olderFrom = answer.next;
    more.hidden = olderFrom === null || olderFrom <= 1;
    status.textContent = describe(answer, tbody.rows.length);
  } catch (problem) {
    notice(problem.message);
  }
});

form.addEventListener('submit', (event) => { event.preventDefault(); load(); });
await load();
