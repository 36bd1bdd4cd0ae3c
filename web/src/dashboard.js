// The analyst dashboard: one question at a time (metric, subject, states, range, comparison),
// answered by the gateway; every answer says how old its data is.
import './style.css';
import {
  CATEGORIES, CATEGORY_LABELS, Client, categoryLabel, escapeHtml, formatAge, formatGrowth, formatTimestamp,
  dropKeyFromUrl, forgetKeys, formatValue, missingText, quiet, signIn, storeKey, storedKey, valueOrWhy,
} from './api.js';
import {
  PERIODS, changesPath, comparisonShift, defaultFrom, growthByStatePath, growthPath, parseStates,
  periodStartOf, readState, shiftDate, stateToSearch, timeseriesPath, topPath,
} from './state.js';
import { merchantCombobox } from './combobox.js';

const $ = (id) => document.getElementById(id);
const METRIC_LABELS = {
  spend: 'net spend', gross: 'gross sales', refunds: 'refunds', transactions: 'transactions',
  customers: 'customers', avg_ticket: 'average ticket', spend_per_customer: 'spend per customer',
  transactions_per_customer: 'purchases per customer',
};
const PERIOD_LABELS = {
  wow: 'Week-over-week', mom: 'Month-over-month', yoy: 'Year-over-year', month: 'Month-to-date',
  quarter: 'Quarter-to-date',
};
const PERIOD_SHORT = { wow: 'WoW', mom: 'MoM (28 d)', yoy: 'YoY', month: 'Month to date', quarter: 'Quarter to date' };
const MAP_STATES = [
  'AL', 'AK', 'AZ', 'AR', 'CA', 'CO', 'CT', 'DE', 'DC', 'FL', 'GA', 'HI', 'ID', 'IL', 'IN', 'IA',
  'KS', 'KY', 'LA', 'ME', 'MD', 'MA', 'MI', 'MN', 'MS', 'MO', 'MT', 'NE', 'NV', 'NH', 'NJ', 'NM',
  'NY', 'NC', 'ND', 'OH', 'OK', 'OR', 'PA', 'RI', 'SC', 'SD', 'TN', 'TX', 'UT', 'VT', 'VA', 'WA',
  'WV', 'WI', 'WY',
];

let state = readState();
let client;
let chart = null;
let chartModule = null;
let map = null;
let loadSeq = 0;
let controller = null;
let firstPaintDone = false;
const freshness = { asOf: null, fetchedAt: 0, ageAtFetch: null, cache: null, cacheAge: 0 };
const mapCache = new Map(); // /v1/growth/states URL -> answer (cleared on Refresh)
let subjectInfo = null; // the answer's subject (merchant name, category)

// signedInMs: when the sign-in form was submitted (null when the tab was signed in already),
// so that a first paint can be timed from it.
window.__altdata = { firstMeaningfulPaintMs: null, signedInMs: null, loads: 0, ready: false, mapReady: 0 };

// ---------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------

async function start() {
  fillCategories(CATEGORIES.map((c) => ({ category: c, label: categoryLabel(c) })));
  writeControls();
  wireControls();
  dropKeyFromUrl();
  let key = storedKey('analyst') || storedKey('admin');
  if (!key) {
    key = await signIn('analyst');
    storeKey('analyst', key);
    window.__altdata.signedInMs = Math.round(performance.now());
  }
  client = makeClient(key);
  syncUrl(true);
  // The chart library is the largest module: start loading it now, in parallel with the data.
  const chartLoading = import('./chart.js').then((m) => (chartModule = m));
  await load({ chartLoading });
  client.get('/v1/categories').then(({ body }) => {
    for (const { category, label } of body.categories) CATEGORY_LABELS[category] = label;
    fillCategories(body.categories);
  }).catch(() => {});
  setInterval(renderFreshness, 5000);
}

function makeClient(key) {
  return new Client(key, {
    onFreshness: ({ asOf }) => {
      if (!freshness.asOf || asOf > freshness.asOf) freshness.asOf = asOf;
    },
    onUnauthorized: async (message) => {
      if (document.getElementById('key-dialog').open) return;
      storeKey('analyst', null);
      const key = await signIn('analyst', `The key was refused: ${message}. Sign in with another.`);
      storeKey('analyst', key);
      client.key = key;
      load();
    },
  });
}

// ---------------------------------------------------------------------------------------
// Controls <-> state <-> URL
// ---------------------------------------------------------------------------------------

function fillCategories(categories) {
  const select = $('category');
  const current = state.category;
  select.replaceChildren(
    ...categories.map(({ category, label }) => new Option(label, category, false, category === current)),
  );
}

function writeControls() {
  $('metric').value = state.metric;
  $('scope').value = state.scope;
  $('category').value = state.category;
  $('states').value = state.states.join(', ');
  $('granularity').value = state.granularity;
  $('from').value = state.from;
  $('to').value = state.to;
  $('period').value = state.period;
  $('as-of-date').value = state.asOf;
  $('map-mode').value = state.map;
  $('top-by').value = state.top;
  $('top-direction').value = state.topDirection;
  $('top-floor').value = String(state.minSpend);
  $('show-comparison').checked = state.comparison;
  showScopeFields();
}

function showScopeFields() {
  for (const el of document.querySelectorAll('[data-scope]')) {
    el.hidden = !el.dataset.scope.split(' ').includes(state.scope);
  }
  $('merchant-search-label').textContent = state.scope === 'brand' ? 'Brand (search merchants)' : 'Merchant';
  const help = $('merchant-help');
  if (state.scope === 'merchant') {
    help.textContent = state.merchant
      ? `Selected: ${subjectInfo?.merchant_name ?? '#' + state.merchant}`
      : 'Type to search, then pick one';
  } else if (state.scope === 'brand') {
    help.textContent = state.brand ? `Selected: ${subjectInfo?.merchant_name ?? state.brand}` : 'Type to search, then pick one';
  }
}

function syncUrl(replace = true) {
  const search = stateToSearch(state);
  if (search !== location.search) {
    const url = location.pathname + search + location.hash;
    if (replace) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
  }
}

function update(changes, { reload = true } = {}) {
  state = { ...state, ...changes };
  if (state.from > state.to) state.from = defaultFrom(state.granularity, state.to);
  writeControls();
  syncUrl(false);
  if (reload) load();
}

function wireControls() {
  $('controls').addEventListener('submit', (e) => e.preventDefault());
  $('metric').addEventListener('change', (e) => update({ metric: e.target.value }));
  $('scope').addEventListener('change', (e) => {
    const scope = e.target.value;
    const ready = scope === 'all' || scope === 'category' || (scope === 'merchant' && state.merchant) || (scope === 'brand' && state.brand);
    update({ scope }, { reload: ready });
    if (!ready) $('merchant-search').focus();
  });
  $('category').addEventListener('change', (e) => update({ category: e.target.value, scope: 'category' }));
  $('granularity').addEventListener('change', (e) => {
    update({ granularity: e.target.value, from: defaultFrom(e.target.value, state.to) });
  });
  $('from').addEventListener('change', (e) => e.target.value && update({ from: e.target.value }));
  $('to').addEventListener('change', (e) => e.target.value && update({ to: e.target.value }));
  $('period').addEventListener('change', (e) => update({ period: e.target.value }));
  $('as-of-date').addEventListener('change', (e) => e.target.value && update({ asOf: e.target.value }));
  $('map-mode').addEventListener('change', (e) => {
    update({ map: e.target.value }, { reload: false });
    renderMap();
  });
  const reloadTop = (changes) => {
    update(changes, { reload: false });
    loadTop(false, loadSeq);
  };
  $('top-by').addEventListener('change', (e) => reloadTop({ top: e.target.value }));
  $('top-direction').addEventListener('change', (e) => reloadTop({ topDirection: e.target.value }));
  $('top-floor').addEventListener('change', (e) => {
    const dollars = Number(e.target.value);
    const valid = Number.isInteger(dollars) && dollars >= 0 && dollars <= 1e9;
    $('top-floor-help').textContent = valid ? floorText() : 'A whole number of dollars, 0 or more';
    if (valid) reloadTop({ minSpend: dollars });
  });
  for (const retry of document.querySelectorAll('[data-retry]')) {
    retry.addEventListener('click', () => load({ fresh: true }));
  }
  $('show-comparison').addEventListener('change', (e) => update({ comparison: e.target.checked }));
  const statesInput = $('states');
  const applyStates = () => {
    const { states, bad } = parseStates(statesInput.value);
    statesInput.setCustomValidity(bad.length ? `Not a US state: ${bad.join(', ')}` : '');
    $('states-help').textContent = bad.length ? `Not a US state: ${bad.join(', ')}` : 'or click the map';
    if (!bad.length && states.join() !== state.states.join()) update({ states });
  };
  statesInput.addEventListener('change', applyStates);
  statesInput.addEventListener('keydown', (e) => e.key === 'Enter' && applyStates());
  $('refresh').addEventListener('click', () => {
    mapCache.clear();
    load({ fresh: true });
  });
  $('share').addEventListener('click', async () => {
    const button = $('share');
    try {
      await navigator.clipboard.writeText(location.href);
      button.textContent = 'Link copied';
    } catch {
      button.textContent = 'Copy the address bar';
    }
    setTimeout(() => (button.textContent = 'Copy link'), 2000);
  });
  $('sign-out').addEventListener('click', async (event) => {
    event.preventDefault();
    forgetKeys();
    client.key = null;
    const key = await signIn('analyst', 'Signed out. Sign in with an API key (analyst or admin).');
    storeKey('analyst', key);
    client.key = key;
    load({ fresh: true });
  });
  $('csv-series').addEventListener('click', () => client.download(timeseriesPath(state), `timeseries-${slug()}.csv`).catch((e) => cardError('chart', e)));
  $('csv-top').addEventListener('click', () => client.download(topPath(state, topCategory()), `top-${topSlug()}.csv`).catch((e) => cardError('top', e)));
  window.addEventListener('popstate', () => {
    state = readState();
    writeControls();
    load();
  });
  wireMerchantSearch();
}

/** The top-movers file is named for what it ranks, not for the view's metric. */
function topSlug() {
  const by = state.top === 'growth' ? `growth-${state.topDirection === 'up' ? 'gainers' : 'decliners'}` : `spend-${state.topDirection === 'up' ? 'largest' : 'smallest'}`;
  return [by, topCategory() || 'all', state.states.join('-') || 'US', state.period, state.asOf].join('_');
}

function floorText() {
  return `Only merchants with at least ${formatValue(state.minSpend, 'usd')} of net spend ${state.top === 'growth' ? 'in the previous period' : 'in the current period'}`;
}

function slug() {
  const subject = state.scope === 'category' ? state.category : state.scope === 'merchant' ? `merchant-${state.merchant}` : state.scope === 'brand' ? `brand-${state.brand}` : 'all';
  return [state.metric, subject, state.states.join('-') || 'US', state.from, state.to].join('_');
}

// Merchant / brand search.
function wireMerchantSearch() {
  merchantCombobox({
    input: $('merchant-search'),
    list: $('merchant-options'),
    client: () => client,
    onError: (error) => ($('merchant-help').textContent = error.message),
    onChoose: (merchant) => {
      if (state.scope === 'brand') {
        if (!merchant.brand_id) {
          $('merchant-help').textContent = `${merchant.name} has no brand id; pick another or use Merchant`;
          return;
        }
        subjectInfo = { merchant_name: merchant.name, category: merchant.category };
        update({ brand: merchant.brand_id, merchant: null });
      } else {
        subjectInfo = { merchant_name: merchant.name, category: merchant.category };
        update({ merchant: merchant.id, brand: null, scope: 'merchant' });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------
// Loading and rendering
// ---------------------------------------------------------------------------------------

function showError(error) {
  const box = $('error');
  if (!error) {
    box.hidden = true;
    return;
  }
  box.textContent = error.message || String(error);
  box.hidden = false;
}

/**
 * A card's state: loading (aria-busy), an error beside its content with a Retry button, or
 * shown. `error` null clears the error.
 */
function cardError(card, error) {
  const box = $(`${card}-error`);
  if (!box) return showError(error);
  box.querySelector('[data-message]').textContent = error ? `Could not load: ${error.message || error}` : '';
  box.hidden = !error;
  if (error) $(`${card}-card`).setAttribute('aria-busy', 'false');
}

function cardsBusy() {
  for (const card of ['headline', 'chart', 'top']) {
    cardError(card, null);
    $(`${card}-card`).setAttribute('aria-busy', 'true');
  }
}

function subjectText() {
  if (state.scope === 'category') return categoryLabel(state.category).toLowerCase();
  if (state.scope === 'merchant') return subjectInfo?.merchant_name ?? `merchant #${state.merchant}`;
  if (state.scope === 'brand') return subjectInfo?.merchant_name ?? `brand ${state.brand}`;
  return 'all merchants';
}

function whereText() {
  return state.states.length ? `in ${state.states.join(', ')}` : 'in the US';
}

function topCategory() {
  if (state.scope === 'category') return state.category;
  if (state.scope === 'all') return null;
  return subjectInfo?.category ?? null;
}

/** Loads every answer of the view; `fresh` bypasses the gateway's cache. */
async function load({ fresh = false, chartLoading = null } = {}) {
  if (state.scope === 'merchant' && !state.merchant) return;
  if (state.scope === 'brand' && !state.brand) return;
  const seq = ++loadSeq;
  window.__altdata.seq = seq;
  controller?.abort();
  controller = new AbortController();
  const signal = controller.signal;
  const options = { fresh, signal };
  showError(null);
  document.body.classList.add('loading');
  $('refresh').disabled = true;
  $('refresh').textContent = 'Refreshing…';
  const shift = comparisonShift(state);
  cardsBusy();
  // Every request is marked handled at once: an answer nobody waits for any more (a newer
  // load, an earlier failure) must not surface as an unhandled rejection.
  const seriesRequest = quiet(client.get(timeseriesPath(state), options));
  const previousRequest = state.comparison
    ? quiet(client.get(timeseriesPath(state, shiftDate(state.from, shift), shiftDate(state.to, shift)), options))
    : Promise.resolve(null);
  const growthRequests = PERIODS.map((p) => quiet(client.get(growthPath(state, p), options)));
  // Restated points are marked; without changes (or without an answer) nothing is.
  const changesRequest = client.get(changesPath(state), { signal }).then(({ body }) => body.changes).catch(() => []);
  const freshnessRequest = quiet(client.get('/v1/freshness', { signal }));
  // Top movers need the subject's category: known now unless the subject is a merchant/brand.
  const knownCategory = state.scope === 'category' || state.scope === 'all';
  let topPromise = knownCategory ? loadTop(fresh, seq) : null;
  try {
    const headline = (async () => {
      const selected = await growthRequests[PERIODS.indexOf(state.period)];
      if (seq !== loadSeq) return;
      subjectInfo = selected.body.subject;
      renderHeadline(selected.body);
      markFirstPaint();
      const growths = await Promise.all(growthRequests);
      if (seq !== loadSeq) return;
      renderGrowthTable(growths.map((g) => g.body));
    })().catch((error) => seq === loadSeq && error.name !== 'AbortError' && cardError('headline', error));
    const chartDone = (async () => {
      const [series, previous, , changes] = await Promise.all([seriesRequest, previousRequest, chartLoading, changesRequest]);
      if (seq !== loadSeq) return;
      renderSeries(series, previous?.body ?? null, restatedPeriods(changes));
      renderFreshness(series.cache, series.age);
    })().catch((error) => seq === loadSeq && error.name !== 'AbortError' && cardError('chart', error));
    freshnessRequest.then(({ body }) => {
      freshness.ageAtFetch = body.age_seconds;
      freshness.fetchedAt = performance.now();
      freshness.lastDay = body.last_transaction_day;
      if (body.as_of && (!freshness.asOf || body.as_of > freshness.asOf)) freshness.asOf = body.as_of;
      const shards = body.shards.filter((s) => s.last_commit_at);
      $('freshness-detail').textContent = `${shards.length} of ${body.shards.length} shards have committed; newest commit ${formatTimestamp(body.as_of)}`;
      renderFreshness();
    }).catch(() => {});
    await headline;
    topPromise ||= loadTop(fresh, seq);
    await Promise.all([chartDone, topPromise]);
    if (seq !== loadSeq) return;
    window.__altdata.loads += 1;
    window.__altdata.ready = true;
    document.body.dataset.loaded = String(window.__altdata.loads);
    loadMap(fresh, seq).catch((error) => {
      $('map-caption').textContent = `The map could not load (${error.message || error}).`;
    });
  } catch (error) {
    if (error.name === 'AbortError') return;
    if (seq === loadSeq) showError(error);
  } finally {
    if (seq === loadSeq) {
      document.body.classList.remove('loading');
      $('refresh').disabled = false;
      $('refresh').textContent = 'Refresh';
    }
  }
}

function markFirstPaint() {
  if (firstPaintDone) return;
  firstPaintDone = true;
  // The number is in the DOM now; the frame after next is when it has been painted.
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      performance.mark('altdata:first-meaningful-paint');
      window.__altdata.firstMeaningfulPaintMs = Math.round(performance.now());
    }),
  );
}

function renderHeadline(g) {
  const metric = METRIC_LABELS[state.metric];
  $('headline-title').textContent = `${PERIOD_LABELS[state.period]} growth in ${metric}: ${subjectText()} ${whereText()}`;
  const growth = $('headline-growth');
  growth.textContent = g.growth == null ? 'n/a' : formatGrowth(g.growth);
  growth.dataset.growth = g.growth ?? '';
  growth.className = 'growth ' + (g.growth == null ? '' : g.growth >= 0 ? 'up' : 'down');
  $('current-label').textContent = `${g.current_period.from} – ${g.current_period.to}`;
  $('previous-label').textContent = `${g.previous_period.from} – ${g.previous_period.to}`;
  const k = g.k_anonymity;
  $('headline-current').textContent = valueOrWhy(g.current, g.current_reason, g.unit, k) + (g.current_partial ? ' (partial: not every day has data)' : '');
  $('headline-previous').textContent = valueOrWhy(g.previous, g.previous_reason, g.unit, k) + (g.previous_partial ? ' (partial: not every day has data)' : '');
  $('headline-current').dataset.value = g.current ?? '';
  $('headline-previous').dataset.value = g.previous ?? '';
  const why = g.growth == null ? `Growth n/a: ${missingText(g.growth_reason, k)}.` : '';
  const panel = g.panel?.first_day ? ` Data from ${g.panel.first_day} to ${g.panel.last_day}.` : '';
  $('headline-note').textContent = [why + (why ? panel : ''), g.suppression ? withheldNote(g) : ''].filter(Boolean).join(' ');
  $('headline-attributed').textContent = attributedText(g.attributed_share);
  $('headline-attributed').dataset.value = g.attributed_share ?? '';
  $('headline-card').setAttribute('aria-busy', 'false');
  showScopeFields();
}

 /** The withheld cells in an analyst's words. */
function withheldNote(answer) {
  return `Some figures leave out shops with fewer than ${answer.k_anonymity} customers on a day (withheld for privacy).`;
}

/** "72% at named brands": how much of a category figure is attributed to a known brand. */
function attributedText(share) {
  if (share == null) return '';
  return `${(share * 100).toFixed(share >= 0.995 ? 1 : 0)}% at named brands; the rest at shops whose brand is not known, counted by category`;
}

function renderGrowthTable(answers) {
  $('growth-rows').replaceChildren(
    ...answers.map((g) => {
      const tr = document.createElement('tr');
      const period = g.query.period;
      if (period === state.period) tr.className = 'current';
      tr.dataset.period = period;
      tr.innerHTML =
        `<th scope="row">${PERIOD_SHORT[period]}</th>` +
        `<td class="num" title="${g.current_period.from} – ${g.current_period.to}">${escapeHtml(valueOrWhy(g.current, g.current_reason, g.unit, g.k_anonymity))}</td>` +
        `<td class="num" title="${g.previous_period.from} – ${g.previous_period.to}">${escapeHtml(valueOrWhy(g.previous, g.previous_reason, g.unit, g.k_anonymity))}</td>` +
        `<td class="num growth-cell ${g.growth == null ? '' : g.growth >= 0 ? 'up' : 'down'}" title="${escapeHtml(missingText(g.growth_reason, g.k_anonymity))}">${formatGrowth(g.growth)}</td>` +
        `<td class="num">${g.attributed_share == null ? '—' : `${Math.round(g.attributed_share * 100)}%`}</td>`;
      return tr;
    }),
  );
}

/** Changes by the period they fall in: summed net-spend delta and the files behind them. */
function restatedPeriods(changes) {
  const byPeriod = new Map();
  for (const c of changes || []) {
    const start = periodStartOf(c.day, state.granularity);
    const entry = byPeriod.get(start) || { delta: 0, withheld: false, files: new Set(), causes: new Set() };
    if (c.withheld) entry.withheld = true;
    else entry.delta += c.delta_spend;
    if (c.file) entry.files.add(c.file);
    entry.causes.add(c.cause);
    byPeriod.set(start, entry);
  }
  return byPeriod;
}

/** "restated +$0.75 (d-corrected.csv)" for a period with changes. */
function restatedText(entry) {
  if (!entry) return '';
  const delta = entry.withheld ? 'amount withheld' : `${entry.delta >= 0 ? '+' : '−'}${formatValue(Math.abs(entry.delta), 'usd')}`;
  const why = entry.files.size ? [...entry.files].join(', ') : [...entry.causes].join(', ');
  return `restated ${delta} (${why})`;
}

function renderSeries({ body, cache, age }, previous, restated = new Map()) {
  const additive = ['spend', 'gross', 'refunds', 'transactions'].includes(state.metric);
  const values = body.points.map((p) => p.value).filter((v) => v != null);
  const total = values.reduce((a, b) => a + b, 0);
  $('range-summary-label').textContent = additive ? `Total over range` : `Latest ${state.granularity}`;
  const shown = additive ? total : values.at(-1) ?? null;
  $('range-total').textContent = formatValue(values.length ? shown : null, body.unit);
  $('range-total').dataset.value = values.length ? String(shown) : '';
  const partial = body.points.filter((p) => p.partial).length;
  const missing = body.points.filter((p) => p.value == null && p.reason !== 'withheld').length;
  $('series-note').textContent = [
    `${body.points.length} ${state.granularity}s, ${body.query.from} – ${body.query.to}`,
    body.panel?.first_day ? `data from ${body.panel.first_day} to ${body.panel.last_day}` : 'no data delivered yet',
    missing ? `${missing} without data (gaps)` : '',
    partial ? `${partial} partial (hollow points: not every day counted)` : '',
    body.attributed_share == null ? '' : `${Math.round(body.attributed_share * 100)}% at named brands`,
    body.suppression ? withheldNote(body) : '',
  ].filter(Boolean).join(' · ');
  $('chart-title').textContent = `${categoryLabelMetric()} by ${state.granularity}: ${subjectText()} ${whereText()}`;
  const shift = comparisonShift(state);
  const shiftText = shift.months ? `${shift.months} month${shift.months > 1 ? 's' : ''}` : `${shift.days} days`;
  if (!chart) chart = new chartModule.SeriesChart($('chart'));
  const previousPoints = previous ? body.points.map((_, i) => previous.points[i] ?? null) : null;
  chart.render({
    points: body.points,
    previous: previousPoints,
    restated: body.points.map((p) => restatedText(restated.get(p.period_start)) || null),
    unit: body.unit,
    granularity: state.granularity,
    panelStart: body.panel?.first_day ?? null,
    label: `${METRIC_LABELS[state.metric]}`,
    previousLabel: `${shiftText} earlier`,
  });
  $('chart').setAttribute('aria-label', `Chart of ${METRIC_LABELS[state.metric]} by ${state.granularity}; the data table below holds the same numbers`);
  $('series-rows').replaceChildren(
    ...body.points.map((p, i) => {
      const tr = document.createElement('tr');
      const prev = previousPoints?.[i];
      const change = restated.get(p.period_start);
      if (change) tr.dataset.restated = 'true';
      if (p.partial) tr.dataset.partial = 'true';
      const counted = p.partial ? ` (partial: ${p.counted.from} – ${p.counted.to}${p.clipped ? ', clipped to the range' : ''})` : '';
      tr.innerHTML = `<td>${p.period_start}${escapeHtml(counted)}</td><td class="num">${escapeHtml(valueOrWhy(p.value, p.reason, body.unit, body.k_anonymity))}</td><td class="num">${prev ? escapeHtml(valueOrWhy(prev.value, prev.reason, body.unit, previous.k_anonymity)) : '—'}</td><td class="num">${p.attributed_share == null ? '—' : `${Math.round(p.attributed_share * 100)}%`}</td><td>${escapeHtml(restatedText(change))}</td>`;
      return tr;
    }),
  );
  freshness.cache = cache;
  freshness.cacheAge = age;
  $('chart-card').setAttribute('aria-busy', 'false');
}

function categoryLabelMetric() {
  const m = METRIC_LABELS[state.metric];
  return m.charAt(0).toUpperCase() + m.slice(1);
}

async function loadTop(fresh, seq) {
  const category = topCategory();
  const path = topPath(state, category);
  const ranking = state.top === 'growth' ? (state.topDirection === 'up' ? 'Top gainers' : 'Top decliners') : (state.topDirection === 'up' ? 'Largest' : 'Smallest');
  $('top-title').textContent = `${ranking}${category ? ' in ' + categoryLabel(category).toLowerCase() : ''} ${whereText()} (${PERIOD_SHORT[state.period]})`;
  $('top-floor-help').textContent = floorText();
  $('top-card').setAttribute('aria-busy', 'true');
  try {
    const { body } = await client.get(path, { fresh });
    if (seq !== loadSeq) return;
    cardError('top', null);
    $('top-rows').replaceChildren(
      ...body.merchants.map((m) => {
        const tr = document.createElement('tr');
        tr.innerHTML =
          `<td>${m.rank}</td>` +
          `<td><a href="${stateToSearch({ ...state, scope: 'merchant', merchant: m.merchant_id })}" data-merchant="${m.merchant_id}">${escapeHtml(m.name)}</a></td>` +
          `<td class="num">${formatValue(m.current_spend, 'usd')}</td>` +
          `<td class="num">${formatValue(m.previous_spend, 'usd')}</td>` +
          `<td class="num growth-cell ${m.growth == null ? '' : m.growth >= 0 ? 'up' : 'down'}">${formatGrowth(m.growth)}</td>`;
        tr.querySelector('a').addEventListener('click', (e) => {
          e.preventDefault();
          subjectInfo = { merchant_name: m.name, category: m.category };
          update({ scope: 'merchant', merchant: m.merchant_id, brand: null });
        });
        return tr;
      }),
    );
    $('top-card').setAttribute('aria-busy', 'false');
    $('top-note').textContent = body.merchants.length
      ? `${body.current_period.from} – ${body.current_period.to} vs ${body.previous_period.from} – ${body.previous_period.to}. ${body.suppression ?? ''}`
      : body.growth_reason
        ? `No growth to rank: ${missingText(body.growth_reason)}.`
        : `No merchant to rank above the size floor. ${body.suppression ?? ''}`;
  } catch (error) {
    if (error.name !== 'AbortError' && seq === loadSeq) cardError('top', error);
  }
}

// The map asks /v1/growth/states once (every state's growth in one answer), after everything
// else has rendered; answers are remembered until Refresh.
let mapValues = new Map();
async function loadMap(fresh, seq) {
  const [{ createMap }] = await Promise.all([import('./map.js')]);
  if (!map) {
    map = createMap($('map'), $('map-legend'), {
      onToggle: (code) => {
        const states = state.states.includes(code) ? state.states.filter((s) => s !== code) : [...state.states, code].sort();
        update({ states });
        requestAnimationFrame(() => document.querySelector(`#map [data-state="${code}"]`)?.focus());
      },
    });
  }
  const values = new Map();
  mapValues = values;
  renderMap();
  const path = growthByStatePath(state, state.period);
  let answer = mapCache.get(path);
  let failure = null;
  if (!answer) {
    try {
      answer = (await client.get(path, { fresh })).body;
      mapCache.set(path, answer);
    } catch (error) {
      failure = error;
    }
  }
  if (seq !== loadSeq) return;
  if (answer) {
    const listed = new Map(answer.states.map((s) => [s.state, s]));
    for (const code of MAP_STATES) {
      const s = listed.get(code);
      // A state not listed had no activity in either period: what /v1/growth?state= says
      // for it (zero, no growth; no average ticket without sales).
      values.set(code, s
        ? { growth: s.growth, current: s.current, suppressed: s.current_suppressed, unit: answer.unit, why: missingText(s.growth_reason, answer.k_anonymity) }
        : { growth: null, current: state.metric === 'avg_ticket' ? null : 0, suppressed: false, unit: answer.unit });
    }
  } else {
    for (const code of MAP_STATES) values.set(code, { error: true, growth: null, current: null });
  }
  renderMap();
  const what = state.map === 'growth' ? `${PERIOD_SHORT[state.period]} growth of ${METRIC_LABELS[state.metric]}` : `${METRIC_LABELS[state.metric]}, current period`;
  const problem = failure ? `The map has no answer (${failure.message || failure}). ` : '';
  $('map-caption').textContent = `${what} for ${subjectText()}. ${problem}Click a state (or focus it and press Enter) to filter by it.`;
  window.__altdata.mapReady = seq;
  document.body.dataset.mapReady = String(seq);
}

function renderMap() {
  if (!map) return;
  const unit = ['transactions', 'customers', 'transactions_per_customer'].includes(state.metric) ? 'count' : 'usd';
  map.update({ values: mapValues, mode: state.map, selected: state.states, unit });
}

function renderFreshness(cache, cacheAge) {
  if (cache !== undefined) {
    freshness.cache = cache;
    freshness.cacheAge = cacheAge;
  }
  const asOf = freshness.asOf;
  $('as-of').textContent = formatTimestamp(asOf);
  if (asOf) $('as-of').setAttribute('datetime', asOf);
  const age = freshness.ageAtFetch != null
    ? freshness.ageAtFetch + (performance.now() - freshness.fetchedAt) / 1000
    : asOf ? (Date.now() - Date.parse(asOf)) / 1000 : null;
  $('as-of-age').textContent = asOf ? `(${formatAge(age)})` : '';
  $('last-day').textContent = freshness.lastDay ?? 'no data yet';
  const box = $('freshness');
  box.classList.toggle('stale', age != null && age > 3600);
  box.classList.toggle('fresh', age != null && age <= 3600);
  $('cache-status').textContent = freshness.cache
    ? `· cache ${freshness.cache}${freshness.cache === 'hit' ? `, computed ${formatAge(freshness.cacheAge)}` : ''}`
    : '';
}

start().catch(showError);
