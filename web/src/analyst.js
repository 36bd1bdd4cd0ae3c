// The analyst page (analyst.html): a company's sales on its own fiscal calendar
// (/v1/tickers/{symbol}/sales), growth raw or per active card of the panel
// (/v1/growth?normalize=panel), and the customers two groups share (/v1/overlap). Every number
// is the API's, formatted; each section downloads its answer as CSV. A page of its own, so the
// dashboard's modules stay as they are.
import './style.css';
import {
  CATEGORIES, Client, categoryLabel, dropKeyFromUrl, escapeHtml, forgetKeys, formatGrowth,
  formatValue, signIn, storeKey, storedKey,
} from './api.js';

const $ = (id) => document.getElementById(id);

let client;

/** What the browser tests wait on: the answers each section last rendered. */
window.__altdataAnalyst = { company: null, panel: null, overlap: null };

function isoDaysAgo(days) {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

function showError(error) {
  const box = $('error');
  box.textContent = error ? String(error.message || error) : '';
  box.hidden = !error;
}

/** Runs a section's request, shows its error instead of an answer. */
async function guarded(task) {
  try {
    showError(null);
    await task();
  } catch (error) {
    showError(error);
  }
}

function companyPath() {
  const symbol = encodeURIComponent($('ticker').value);
  const params = new URLSearchParams({ period: $('fiscal-period').value, as_of: $('company-as-of').value });
  return `/v1/tickers/${symbol}/sales?${params}`;
}

function days(period) {
  return Math.round((Date.parse(period.to) - Date.parse(period.from)) / 86_400_000) + 1;
}

function periodRow(period, kind) {
  const label = kind === 'to_date' ? `${period.label} to date` : period.label;
  return `<tr data-kind="${kind}"><th scope="row">${escapeHtml(label)}</th><td>${days(period)}</td>` +
    `<td data-field="sales">${formatValue(period.sales, 'usd')}</td>` +
    `<td>${escapeHtml(period.previous_label)} (${escapeHtml(period.previous_from)} – ${escapeHtml(period.previous_to)})</td>` +
    `<td data-field="previous_sales">${formatValue(period.previous_sales, 'usd')}</td>` +
    `<td data-field="yoy_growth">${formatGrowth(period.yoy_growth)}</td></tr>`;
}

async function showCompany() {
  const { body } = await client.get(companyPath());
  const company = body.company;
  const brands = company.brands.map((b) => b.name).join(', ');
  $('company-note').textContent = `${company.name} (${company.exchange}:${company.symbol}): ` +
    `${brands}. Fiscal year ends in month ${company.fiscal_year_end_month}` +
    (company.quarter_weeks ? `, 52/53 weeks, quarters of ${company.quarter_weeks} weeks.` : '.') +
    (company.calendar_source === 'unverified'
      ? ' The fiscal calendar is not yet confirmed by an SEC filing: check the latest 10-K.'
      : ` Fiscal calendar checked against ${company.calendar_source}.`) +
    ' Sales are net spend at released cells (at least k customers).';
  $('company-table').tBodies[0].innerHTML =
    body.periods.map((p) => periodRow(p, 'complete')).join('') + periodRow(body.to_date, 'to_date');
  window.__altdataAnalyst.company = body;
}

function panelPath() {
  const params = new URLSearchParams({ category: $('panel-category').value, period: 'wow', as_of: $('panel-as-of').value });
  if ($('per-card').checked) params.set('normalize', 'panel');
  return `/v1/growth?${params}`;
}

function values(list, pairs) {
  list.innerHTML = pairs
    .map(([name, text, field]) => `<dt>${escapeHtml(name)}</dt><dd data-field="${field}">${escapeHtml(text)}</dd>`)
    .join('');
}

async function showPanel() {
  const { body } = await client.get(panelPath());
  const perCard = body.query.normalize === 'panel';
  const unit = perCard ? 'usd per active card' : 'usd';
  const pairs = [
    [`Current week (${unit})`, formatValue(body.current, 'usd'), 'current'],
    [`Previous week (${unit})`, formatValue(body.previous, 'usd'), 'previous'],
    ['Growth', formatGrowth(body.growth), 'growth'],
  ];
  if (perCard) {
    pairs.push(
      ['Raw spend, current', formatValue(body.raw_current, 'usd'), 'raw_current'],
      ['Raw spend, previous', formatValue(body.raw_previous, 'usd'), 'raw_previous'],
      ['Active cards, current', formatValue(body.panel_current, 'count'), 'panel_current'],
      ['Active cards, previous', formatValue(body.panel_previous, 'count'), 'panel_previous'],
    );
  }
  values($('panel-values'), pairs);
  window.__altdataAnalyst.panel = body;
}

function overlapPath() {
  const params = new URLSearchParams({
    a: $('overlap-a').value.trim(), b: $('overlap-b').value.trim(),
    from: $('overlap-from').value, to: $('overlap-to').value,
  });
  return `/v1/overlap?${params}`;
}

function share(value, error) {
  if (value == null) return '—';
  return `${(value * 100).toFixed(1)}% ± ${(error * 100).toFixed(1)}`;
}

async function showOverlap() {
  const { body } = await client.get(overlapPath());
  const count = (v) => formatValue(v, 'count');
  values($('overlap-values'), [
    [`Customers of ${body.a.merchant_name || body.a.category}`, count(body.customers_a), 'customers_a'],
    [`Customers of ${body.b.merchant_name || body.b.category}`, count(body.customers_b), 'customers_b'],
    ['Customers of both', body.customers_both == null ? '—' : `${count(body.customers_both)} ± ${count(body.customers_both_error)}`, 'customers_both'],
    ['Share of A also at B', share(body.share_of_a_in_b, body.share_of_a_in_b_error), 'share_of_a_in_b'],
    ['Share of B also at A', share(body.share_of_b_in_a, body.share_of_b_in_a_error), 'share_of_b_in_a'],
  ]);
  $('overlap-note').textContent = [body.suppression, body.error_note].filter(Boolean).join(' ');
  window.__altdataAnalyst.overlap = body;
}

function onSubmit(id, show) {
  $(id).addEventListener('submit', (event) => {
    event.preventDefault();
    guarded(show);
  });
}

async function start() {
  dropKeyFromUrl();
  let key = storedKey('analyst');
  if (!key) {
    key = await signIn('analyst');
    storeKey('analyst', key);
  }
  client = new Client(key, {
    onUnauthorized: async (message) => {
      forgetKeys();
      client.key = await signIn('analyst', message);
      storeKey('analyst', client.key);
    },
  });
  $('sign-out').addEventListener('click', (event) => {
    event.preventDefault();
    forgetKeys();
    location.reload();
  });
  const yesterday = isoDaysAgo(1);
  for (const id of ['company-as-of', 'panel-as-of', 'overlap-to']) $(id).value = yesterday;
  $('overlap-from').value = isoDaysAgo(28);
  $('panel-category').replaceChildren(...CATEGORIES.map((c) => new Option(categoryLabel(c), c)));
  onSubmit('company-form', showCompany);
  onSubmit('panel-form', showPanel);
  onSubmit('overlap-form', showOverlap);
  $('per-card').addEventListener('change', () => guarded(showPanel));
  $('company-csv').addEventListener('click', () => guarded(() => client.download(companyPath(), 'company.csv')));
  $('panel-csv').addEventListener('click', () => guarded(() => client.download(panelPath(), 'growth.csv')));
  $('overlap-csv').addEventListener('click', () => guarded(() => client.download(overlapPath(), 'overlap.csv')));
  await guarded(async () => {
    const { body } = await client.get('/v1/tickers');
    $('ticker').replaceChildren(
      ...body.tickers.map((t) => new Option(`${t.symbol} — ${t.name}`, t.symbol)),
    );
  });
  await Promise.all([guarded(showCompany), guarded(showPanel), guarded(showOverlap)]);
}

start();
