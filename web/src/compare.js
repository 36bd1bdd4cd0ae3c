// The compare view: up to five brands or categories on one chart, in their unit or indexed to
// 100 at their first period with data, with the filters every subject shares in plain sight.
// The URL is the view: ?s=brand:<id>,category:<name>&metric=…&state=…&granularity=…&from=…&to=…&mode=…
import './style.css';
import {
  CATEGORIES, Client, categoryLabel, dropKeyFromUrl, escapeHtml, forgetKeys, formatValue, missingText,
  quiet, signIn, storeKey, storedKey,
} from './api.js';
import { GRANULARITIES, METRICS, defaultFrom, parseStates, yesterday } from './state.js';
import { merchantCombobox } from './combobox.js';
import { COMPARE_COLOURS, CompareChart } from './chart.js';

const $ = (id) => document.getElementById(id);
const MAX_SUBJECTS = 5;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

let client;
let chart = null;
let controller = null;
let seq = 0;
let view = readView();
const names = new Map(); // subject key -> name shown (a brand's merchant name)

window.__altdataCompare = { loads: 0 };

/** The view from the URL. */
function readView(search = location.search) {
  const p = new URLSearchParams(search);
  const pick = (name, allowed, fallback) => (allowed.includes(p.get(name)) ? p.get(name) : fallback);
  const subjects = (p.get('s') || 'category:coffee_shop')
    .split(',')
    .map((s) => s.split(':'))
    .filter(([kind, id]) => (kind === 'brand' && /^[A-Za-z0-9_.-]{1,64}$/.test(id || '')) || (kind === 'category' && CATEGORIES.includes(id)))
    .slice(0, MAX_SUBJECTS)
    .map(([kind, id]) => ({ kind, id }));
  const to = DATE.test(p.get('to') || '') ? p.get('to') : yesterday();
  const granularity = pick('granularity', GRANULARITIES, 'week');
  let from = DATE.test(p.get('from') || '') ? p.get('from') : defaultFrom(granularity, to);
  if (from > to) from = defaultFrom(granularity, to);
  return {
    subjects,
    metric: pick('metric', METRICS, 'spend'),
    mode: pick('mode', ['absolute', 'index'], 'absolute'),
    states: p.has('state') ? parseStates(p.get('state')).states : [],
    granularity,
    from,
    to,
  };
}

function search(v) {
  const p = new URLSearchParams();
  p.set('s', v.subjects.map((s) => `${s.kind}:${s.id}`).join(','));
  p.set('metric', v.metric);
  p.set('mode', v.mode);
  p.set('state', v.states.join(','));
  p.set('granularity', v.granularity);
  p.set('from', v.from);
  p.set('to', v.to);
  return '?' + p.toString().replace(/%2C/g, ',').replace(/%3A/g, ':');
}

const keyOf = (s) => `${s.kind}:${s.id}`;
const nameOf = (s) => names.get(keyOf(s)) ?? (s.kind === 'category' ? categoryLabel(s.id) : s.id);

function seriesPath(subject) {
  const p = new URLSearchParams();
  p.set(subject.kind, subject.id);
  p.set('metric', view.metric);
  if (view.states.length) p.set('state', view.states.join(','));
  p.set('granularity', view.granularity);
  p.set('from', view.from);
  p.set('to', view.to);
  return '/v1/timeseries?' + p.toString().replace(/%2C/g, ',');
}

function update(changes) {
  view = { ...view, ...changes };
  if (view.from > view.to) view.from = defaultFrom(view.granularity, view.to);
  writeControls();
  history.pushState(null, '', location.pathname + search(view));
  load();
}

function writeControls() {
  $('metric').value = view.metric;
  $('mode').value = view.mode;
  $('states').value = view.states.join(', ');
  $('granularity').value = view.granularity;
  $('from').value = view.from;
  $('to').value = view.to;
  const full = view.subjects.length >= MAX_SUBJECTS;
  $('merchant-search').disabled = full;
  $('add-category-button').disabled = full;
  $('add-help').textContent = full ? 'Five subjects at most: remove one to add another.' : `Up to five subjects (${view.subjects.length} now).`;
  $('subjects').replaceChildren(
    ...view.subjects.map((s, i) => {
      const li = document.createElement('li');
      li.style.setProperty('--chip', COMPARE_COLOURS[i]);
      li.dataset.subject = keyOf(s);
      const label = Object.assign(document.createElement('span'), { textContent: `${nameOf(s)} (${s.kind})` });
      const remove = Object.assign(document.createElement('button'), { type: 'button', className: 'small secondary', textContent: 'Remove' });
      remove.setAttribute('aria-label', `Remove ${nameOf(s)}`);
      remove.addEventListener('click', () => update({ subjects: view.subjects.filter((x) => keyOf(x) !== keyOf(s)) }));
      li.append(label, remove);
      return li;
    }),
  );
  // The filters every subject shares, said once and always visible.
  const where = view.states.length ? `states ${view.states.join(', ')}` : 'every state';
  $('filters').textContent = `Every subject: ${$('metric').selectedOptions[0].textContent.toLowerCase()}, ${where}, by ${view.granularity}, ${view.from} – ${view.to}${view.mode === 'index' ? ', indexed to 100 at its first whole period with data' : ''}.`;
}

function add(subject) {
  if (view.subjects.length >= MAX_SUBJECTS || view.subjects.some((s) => keyOf(s) === keyOf(subject))) return;
  update({ subjects: [...view.subjects, subject] });
}

function wire() {
  $('controls').addEventListener('submit', (e) => e.preventDefault());
  $('metric').addEventListener('change', (e) => update({ metric: e.target.value }));
  $('mode').addEventListener('change', (e) => update({ mode: e.target.value }));
  $('granularity').addEventListener('change', (e) => update({ granularity: e.target.value, from: defaultFrom(e.target.value, view.to) }));
  $('from').addEventListener('change', (e) => e.target.value && update({ from: e.target.value }));
  $('to').addEventListener('change', (e) => e.target.value && update({ to: e.target.value }));
  $('states').addEventListener('change', (e) => {
    const { states, bad } = parseStates(e.target.value);
    $('states-help').textContent = bad.length ? `Not a US state: ${bad.join(', ')}` : 'the same for every subject';
    if (!bad.length) update({ states });
  });
  $('add-category').replaceChildren(...CATEGORIES.map((c) => new Option(categoryLabel(c), c)));
  $('add-category-button').addEventListener('click', () => add({ kind: 'category', id: $('add-category').value }));
  $('compare-error').querySelector('[data-retry]').addEventListener('click', () => load());
  $('sign-out').addEventListener('click', async (event) => {
    event.preventDefault();
    forgetKeys();
    client.key = await signIn('analyst', 'Signed out. Sign in with an API key (analyst or admin).');
    storeKey('analyst', client.key);
    load();
  });
  window.addEventListener('popstate', () => {
    view = readView();
    writeControls();
    load();
  });
  merchantCombobox({
    input: $('merchant-search'),
    list: $('merchant-options'),
    client: () => client,
    onError: (error) => ($('add-help').textContent = error.message),
    onChoose: (merchant) => {
      if (!merchant.brand_id) {
        $('add-help').textContent = `${merchant.name} has no brand id: pick another`;
        return;
      }
      names.set(`brand:${merchant.brand_id}`, merchant.name);
      add({ kind: 'brand', id: merchant.brand_id });
    },
  });
}

/**
 * Indexed to 100 at the first whole period with data (a partial one would make a poor base);
 * a period without data stays a gap.
 */
function indexed(points) {
  const first = points.find((p) => p.value && !p.partial) ?? points.find((p) => p.value);
  const base = first?.value;
  return points.map((p) => (p.value == null || !base ? null : Math.round((p.value / base) * 1000) / 10));
}

async function load() {
  const mine = ++seq;
  controller?.abort();
  controller = new AbortController();
  $('compare-card').setAttribute('aria-busy', 'true');
  $('compare-error').hidden = true;
  const requests = view.subjects.map((s) => quiet(client.get(seriesPath(s), { signal: controller.signal })));
  try {
    const answers = (await Promise.all(requests)).map((r) => r.body);
    if (mine !== seq) return;
    render(answers);
  } catch (error) {
    if (error.name === 'AbortError' || mine !== seq) return;
    $('compare-error').querySelector('[data-message]').textContent = `Could not load: ${error.message}`;
    $('compare-error').hidden = false;
  } finally {
    if (mine === seq) $('compare-card').setAttribute('aria-busy', 'false');
  }
}

function render(answers) {
  answers.forEach((a, i) => {
    if (a.subject.merchant_name) names.set(keyOf(view.subjects[i]), a.subject.merchant_name);
  });
  writeControls();
  const starts = answers[0]?.points.map((p) => p.period_start) ?? [];
  const unit = view.mode === 'index' ? 'index' : answers[0]?.unit ?? 'usd';
  const series = answers.map((a, i) => {
    const values = view.mode === 'index' ? indexed(a.points) : a.points.map((p) => p.value);
    return { label: nameOf(view.subjects[i]), values, answer: a };
  });
  $('compare-title').textContent = view.subjects.length ? `Compare: ${series.map((s) => s.label).join(' vs ')}` : 'Compare: add a brand or a category';
  const panel = answers[0]?.panel;
  $('compare-note').textContent = panel?.first_day ? `Data from ${panel.first_day} to ${panel.last_day}; gaps are periods without data.` : '';
  chart ||= new CompareChart($('chart'));
  chart.renderMany({ starts, series, unit });
  const head = document.createElement('tr');
  head.innerHTML = `<th scope="col">Period</th>${series.map((s) => `<th scope="col" class="num">${escapeHtml(s.label)}</th>`).join('')}`;
  $('compare-head').replaceChildren(head);
  $('compare-rows').replaceChildren(
    ...starts.map((start, row) => {
      const tr = document.createElement('tr');
      const cells = series.map((s) => {
        const point = s.answer.points[row];
        const v = s.values[row];
        const text = v == null ? missingText(point?.reason, s.answer.k_anonymity) || '—' : unit === 'index' ? v.toFixed(1) : formatValue(v, unit);
        return `<td class="num">${escapeHtml(text)}</td>`;
      });
      tr.innerHTML = `<td>${start}</td>${cells.join('')}`;
      return tr;
    }),
  );
  window.__altdataCompare.loads += 1;
  document.body.dataset.loaded = String(window.__altdataCompare.loads);
}

async function start() {
  dropKeyFromUrl();
  wire();
  writeControls();
  let key = storedKey('analyst') || storedKey('admin');
  if (!key) {
    key = await signIn('analyst');
    storeKey('analyst', key);
  }
  client = new Client(key, {
    onUnauthorized: async (message) => {
      if ($('key-dialog').open) return;
      storeKey('analyst', null);
      client.key = await signIn('analyst', `The key was refused: ${message}. Sign in with another.`);
      storeKey('analyst', client.key);
      load();
    },
  });
  history.replaceState(null, '', location.pathname + search(view));
  await load();
}

start().catch((error) => {
  $('compare-error').querySelector('[data-message]').textContent = String(error.message || error);
  $('compare-error').hidden = false;
});
