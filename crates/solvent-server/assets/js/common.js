// What every page shares: the API key, authenticated reads, the WebSocket stream, formatting.
// Money arrives as decimal strings; it is turned into numbers only to be shown or drawn, and the
// exact string stays on the element (data-value) for anyone who needs it.

const KEY = 'solvent.api_key';

export function storedKey() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
}

function forgetKey() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || 'http_error';
    this.field = error.field || null;
  }
}

async function request(key, path, options = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method: options.method || (options.body !== undefined ? 'POST' : 'GET'),
    headers,
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// Asks for a key until one works; resolves with the key's description (GET /v1/key).
function askForKey(message) {
  const dialog = document.getElementById('key-dialog');
  const form = document.getElementById('key-form');
  const input = document.getElementById('key-input');
  const remember = document.getElementById('key-remember');
  const error = document.getElementById('key-error');
  error.textContent = message || '';
  return new Promise((resolve) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      const key = input.value.trim();
      try {
        const who = await request(key, '/v1/key');
        forgetKey();
        (remember.checked ? localStorage : sessionStorage).setItem(KEY, key);
        input.value = '';
        dialog.close();
        resolve(who);
      } catch (problem) {
        error.textContent = problem.status === 401 ? 'That key is not valid.' : problem.message;
      }
    };
    // The pages need a key: Escape does not dismiss the prompt.
    dialog.oncancel = (event) => event.preventDefault();
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

let who = null;

// The caller's key description, asking for a key once if none is stored.
export async function signIn() {
  const key = storedKey();
  if (key) {
    try {
      who = await request(key, '/v1/key');
    } catch (problem) {
      forgetKey();
      who = await askForKey(problem.status === 401 ? 'The stored key is no longer valid.' : problem.message);
    }
  } else {
    who = await askForKey();
  }
  document.getElementById('scope').textContent = `key: ${who.scope}`;
  document.getElementById('change-key').onclick = () => { forgetKey(); location.reload(); };
  return who;
}

export function api(path, options) {
  return request(storedKey(), path, options);
}

// The WebSocket stream: subscribes to `channels`, resumes after a reconnect with the last
// sequence number seen, and calls onMessage(message) for each live message and
// onSnapshot(channel, data) for each snapshot.
export class Stream {
  constructor(channels, { onMessage, onSnapshot, onState } = {}) {
    this.channels = channels;
    this.onMessage = onMessage || (() => {});
    this.onSnapshot = onSnapshot || (() => {});
    this.onState = onState || setLive;
    this.last = null;
    this.retry = 500;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/v1/ws?api_key=${encodeURIComponent(storedKey())}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.retry = 500;
      const request = { op: 'subscribe', args: this.channels };
      if (this.last !== null) request.since = this.last;
      socket.send(JSON.stringify(request));
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.op === 'subscribed') {
        this.onState('live');
        for (const [channel, data] of Object.entries(message.snapshots || {})) this.onSnapshot(channel, data);
        if (this.last === null) this.last = message.next_seq - 1;
        return;
      }
      if (message.op === 'error') {
        this.onState(`stream: ${message.code}`);
        return;
      }
      if (message.op) return;
      this.last = message.seq;
      this.onMessage(message);
    };
    socket.onclose = () => {
      this.onState('reconnecting');
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    };
  }
}

export function setLive(text) {
  const live = document.getElementById('live');
  if (live) live.textContent = text;
}

export function notice(text) {
  const element = document.getElementById('notice');
  element.textContent = text;
  element.hidden = !text;
}

// ---- formatting --------------------------------------------------------------------------

const money2 = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function money(value) {
  if (value === null || value === undefined || value === '') return '—';
  const number = Number(value);
  return Number.isFinite(number) ? money2.format(number) : String(value);
}

export function price(value) {
  if (value === null || value === undefined) return '—';
  const number = Number(value);
  if (!Number.isFinite(number)) return String(value);
  const digits = Math.abs(number) >= 1000 ? 2 : Math.abs(number) >= 1 ? 4 : 6;
  return number.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function health(value) {
  if (value === null || value === undefined) return '—';
  return Number(value).toFixed(3);
}

export function percent(value, digits = 1) {
  if (value === null || value === undefined) return '—';
  return `${Number(value).toFixed(digits)}%`;
}

export function when(ts) {
  if (!ts) return '';
  return String(ts).replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, 'Z');
}

export function stateLabel(state) {
  return String(state || '').replace(/_/g, ' ');
}

export function badge(state) {
  const span = document.createElement('span');
  span.className = `badge s-${state}`;
  span.textContent = stateLabel(state);
  return span;
}

// A table cell with the display text and the exact value kept on it.
export function cell(text, { value, numeric = false, className } = {}) {
  const td = document.createElement('td');
  td.textContent = text;
  if (value !== undefined && value !== null) td.dataset.value = String(value);
  if (numeric) td.classList.add('num');
  if (className) td.classList.add(className);
  return td;
}

export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (name === 'class') element.className = value;
    else if (name === 'text') element.textContent = value;
    else if (name.startsWith('data-')) element.setAttribute(name, value);
    else element.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// ---- charts ------------------------------------------------------------------------------

// A uPlot chart in `container`, sized to it; `series` are [{label, stroke, dash}].
export function lineChart(container, { series, xTime = false, xLabel, yLabel }) {
  const uPlot = globalThis.uPlot;
  const width = Math.max(300, container.clientWidth - 2);
  const options = {
    width,
    height: 220,
    // A single instant (or value) on x still gets a readable range.
    scales: { x: { time: xTime, range: (u, min, max) => (min === max ? [min - (xTime ? 3600 : 1), max + (xTime ? 3600 : 1)] : [min, max]) } },
    axes: [{ label: xLabel, stroke: '#1f2328' }, { label: yLabel, stroke: '#1f2328', size: 70 }],
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, dash: s.dash, points: { show: false } }))],
    legend: { show: true },
  };
  const empty = [[], ...series.map(() => [])];
  const chart = new uPlot(options, empty, container);
  return chart;
}
