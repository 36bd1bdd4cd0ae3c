// Browser tests of the dashboard and the review tool (node:test + playwright-core driving
// Debian's headless Chromium). Run by scripts/test-browser.sh, which starts a private gateway
// and passes:
//   ALTDATA_BASE_URL, ALTDATA_ANALYST_KEY, ALTDATA_ADMIN_KEY, ALTDATA_TEST_RESULTS,
//   ALTDATA_CHROMIUM (default /usr/bin/chromium).
// Every wait is a condition with a deadline; there is no fixed sleep.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.ALTDATA_BASE_URL;
const ANALYST = process.env.ALTDATA_ANALYST_KEY;
const ADMIN = process.env.ALTDATA_ADMIN_KEY;
const RESULTS = process.env.ALTDATA_TEST_RESULTS || join(process.cwd(), 'test-results');
const CHROMIUM = process.env.ALTDATA_CHROMIUM || '/usr/bin/chromium';
if (!BASE || !ANALYST || !ADMIN) {
  throw new Error('set ALTDATA_BASE_URL, ALTDATA_ANALYST_KEY and ALTDATA_ADMIN_KEY (scripts/test-browser.sh does)');
}
mkdirSync(RESULTS, { recursive: true });

// --- the dashboard's formatting rules, restated (the rendered text must equal them) -----
const usd0 = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });
const usd2 = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
function money(value, unit = 'usd') {
  if (value == null) return '—';
  if (unit === 'usd') return Math.abs(value) < 1000 ? usd2.format(value) : usd0.format(value);
  return int.format(value);
}
function growthText(growth) {
  if (growth == null) return 'n/a';
  const pct = growth * 100;
  const text = Math.abs(pct).toFixed(1);
  if (text === '0.0') return '0.0%';
  return (pct > 0 ? '+' : '−') + text + '%';
}
// Why a value is missing, in the dashboard's words (api.js `missingText`).
const MISSING = {
  before_panel_start: 'no data: before the panel starts',
  after_last_delivery: 'no data yet: after the last delivered day',
  nothing_delivered: 'no data delivered yet',
  no_sales: 'no sales',
  no_customers: 'no customers',
  partial_period: 'not comparable: a period is only partly covered by the data',
  zero_base: 'no growth: nothing in the previous period',
};
function missing(reason, k) {
  return reason === 'withheld' ? `withheld: fewer than ${k} customers` : MISSING[reason];
}
/** A value as the dashboard shows it: the number, or why there is none. */
function shownValue(value, reason, k, unit = 'usd') {
  return value == null ? missing(reason, k) || '—' : money(value, unit);
}
const PARTIAL = ' (partial: not every day has data)';
function yesterday() {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}
function daysBefore(iso, days) {
  const d = new Date(iso + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

async function api(path, key = ANALYST, { fresh = true } = {}) {
  const response = await fetch(BASE + path, {
    headers: { Authorization: `Bearer ${key}`, ...(fresh ? { 'Cache-Control': 'no-cache' } : {}) },
  });
  assert.equal(response.status, 200, `${path}: ${response.status} ${await response.clone().text()}`);
  return { body: await response.json(), headers: response.headers };
}

/** Polls `check` (returning a truthy value when done) until `ms` pass. */
async function until(what, check, ms = 20_000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Where a page's first meaningful paint went: document, scripts, first API answer. */
async function timings(page) {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const api = performance.getEntriesByType('resource').filter((r) => r.name.includes('/v1/growth'));
    const first = api.length ? Math.min(...api.map((r) => r.startTime)) : NaN;
    const answered = api.length ? Math.min(...api.map((r) => r.responseEnd)) : NaN;
    return `(document ${Math.round(nav.responseEnd)} ms, DOMContentLoaded ${Math.round(nav.domContentLoadedEventEnd)} ms, ` +
      `first /v1/growth sent ${Math.round(first)} ms, answered ${Math.round(answered)} ms)`;
  });
}

let context;
let userDataDir;
const AS_OF = yesterday();
const FROM = daysBefore(AS_OF, 27);

before(async () => {
  userDataDir = mkdtempSync(join(tmpdir(), 'altdata-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
    ],
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  });
  context.setDefaultTimeout(20_000);
});

after(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

/** Fills in the sign-in form that a new tab shows, with `key`. */
async function signIn(page, key) {
  await page.waitForFunction(() => document.getElementById('key-dialog')?.open);
  await page.fill('#key-input', key);
  await page.click('#sign-in');
  await page.waitForFunction(() => !document.getElementById('key-dialog').open);
}

/** Signs in if the page asks (its first load in a tab); the form opens before `load`. */
async function signInIfAsked(page, key) {
  if (await page.evaluate(() => document.getElementById('key-dialog')?.open)) await signIn(page, key);
}

/** The headers every page is served with (docs/PRIVACY.md, "Keys and pages"). */
function assertPageHeaders(response) {
  const headers = response.headers();
  const policy = headers['content-security-policy'] || '';
  for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) {
    assert.ok(policy.includes(directive), `CSP has ${directive}: ${policy}`);
  }
  assert.ok(!policy.includes('unsafe-inline'), policy);
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['referrer-policy'], 'no-referrer');
}

// axe-core, evaluated in the page through the DevTools protocol (the pages' content security
// policy refuses injected script tags, rightly).
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's WCAG 2 A and AA rules find nothing on the page as it is now. */
async function assertAccessible(page, what) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations.map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], `axe-core on ${what}`);
}

/** Console errors, page errors and unhandled promise rejections, as they happen. */
function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
  page.addInitScript(() => {
    window.addEventListener('unhandledrejection', (event) => {
      console.error(`unhandled rejection: ${event.reason?.name ?? ''} ${event.reason?.message ?? event.reason}`);
    });
  });
  return errors;
}

const CANONICAL = `/?metric=spend&category=coffee_shop&state=CA&granularity=week&period=wow&as_of=${AS_OF}&to=${AS_OF}&from=${FROM}`;

describe('sign-in', () => {
  test('a key in the URL does not authenticate and leaves the address bar at once', async () => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    const apiRequests = [];
    page.on('request', (r) => r.url().includes('/v1/') && apiRequests.push(r.url()));
    assertPageHeaders(await page.goto(`${BASE}/?key=${ANALYST}&metric=spend&category=coffee_shop`));
    await page.waitForFunction(() => document.getElementById('key-dialog')?.open);
    assert.ok(!page.url().includes('key='), `the key left the URL: ${page.url()}`);
    assert.ok(!page.url().includes(ANALYST), page.url());
    assert.ok(page.url().includes('category=coffee_shop'), `the rest of the view stays: ${page.url()}`);
    assert.deepEqual(apiRequests, [], 'nothing was asked of the API before signing in');
    const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
    assert.ok(!stored.includes(ANALYST), 'the key from the URL was not kept');
    // No history entry holds the key: the one before is the new tab's blank page, and the
    // page's own entry was replaced.
    await page.goBack();
    assert.equal(page.url(), 'about:blank');
    await page.goForward();
    assert.ok(!page.url().includes('key='), `history kept the key: ${page.url()}`);
    await page.waitForFunction(() => document.getElementById('key-dialog')?.open);

    // Signing in through the form works; signing out forgets the key and asks again.
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.ready);
    assert.ok(apiRequests.length > 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('altdata.apiKey')), ANALYST);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing outlives the tab');
    await page.click('#sign-out');
    await page.waitForFunction(() => document.getElementById('key-dialog')?.open);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'signed out: no key kept');
    assert.match(await page.textContent('#key-dialog [data-note]'), /Signed out/);
    // A wrong key is refused and the form asks again (at once: too fast to see it closed).
    await page.fill('#key-input', 'adx_' + '0'.repeat(32));
    await page.click('#sign-in');
    await page.waitForFunction(() =>
      document.getElementById('key-dialog')?.open && /refused/.test(document.querySelector('#key-dialog [data-note]').textContent));
    await signIn(page, ANALYST);
    await page.waitForFunction(() => !document.getElementById('key-dialog').open && window.__altdata?.ready);
    // The wrong key's refusals are the only errors the console saw (no CSP violation).
    assert.ok(errors.every((e) => /401|invalid API key/.test(e)), JSON.stringify(errors));
    await page.close();
  });

  test('no site can frame the pages', async () => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.setContent(`<iframe id="f" src="${BASE}/review.html" width="400" height="300"></iframe>`);
    await until('the frame to settle', async () => {
      const frame = page.frames().find((f) => f !== page.mainFrame());
      return frame && frame.url() !== 'about:blank';
    });
    const frame = page.frames().find((f) => f !== page.mainFrame());
    const framedTitle = await frame.evaluate(() => document.title).catch(() => '');
    assert.ok(!/review queue/i.test(framedTitle), `the review tool rendered in a frame: ${framedTitle}`);
    assert.ok(errors.some((e) => /frame-ancestors|X-Frame-Options|refused to connect/i.test(e)), JSON.stringify(errors));
    await page.close();
  });
});

describe('dashboard', () => {
  test('answers the canonical question (WoW spend growth, coffee shops, CA) with the API’s numbers', async () => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    assertPageHeaders(await page.goto(`${BASE}${CANONICAL}`));
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.ready && window.__altdata.firstMeaningfulPaintMs != null);
    const coldPaint = await page.evaluate(() => window.__altdata.firstMeaningfulPaintMs - window.__altdata.signedInMs);
    console.log(`# first meaningful paint after signing in, cold gateway cache: ${coldPaint} ms ${await timings(page)}`);

    const { body: growth, headers } = await api(`/v1/growth?metric=spend&category=coffee_shop&state=CA&period=wow&as_of=${AS_OF}`);
    assert.equal(await page.textContent('#headline-growth'), growthText(growth.growth));
    const k = growth.k_anonymity;
    assert.equal(await page.textContent('#headline-current'), shownValue(growth.current, growth.current_reason, k) + (growth.current_partial ? PARTIAL : ''));
    assert.equal(await page.textContent('#headline-previous'), shownValue(growth.previous, growth.previous_reason, k) + (growth.previous_partial ? PARTIAL : ''));
    assert.match(await page.textContent('#headline-title'), /Week-over-week growth in net spend: coffee shops in CA/);
    // Beside the category figure: how much of it is at named brands (the API's own share).
    assert.equal(await page.getAttribute('#headline-attributed', 'data-value'), String(growth.attributed_share ?? ''));
    assert.ok(growth.attributed_share > 0 && growth.attributed_share < 1, `coffee shops include unnamed cafes: ${growth.attributed_share}`);
    assert.match(await page.textContent('#headline-attributed'), /% at named brands/);
    assert.equal(await page.textContent('#current-label'), `${growth.current_period.from} – ${growth.current_period.to}`);
    console.log(`# canonical answer: ${growthText(growth.growth)} (${money(growth.current)} vs ${money(growth.previous)})`);

    // The growth table: trailing WoW, MoM, YoY and calendar month and quarter to date. With
    // 21 days of data, a year back is no data (never $0), and so is its growth.
    for (const period of ['wow', 'mom', 'yoy', 'month', 'quarter']) {
      const { body } = await api(`/v1/growth?metric=spend&category=coffee_shop&state=CA&period=${period}&as_of=${AS_OF}`);
      const cells = await page.$$eval(`#growth-rows tr[data-period="${period}"] td`, (tds) => tds.map((td) => td.textContent));
      const named = body.attributed_share == null ? '—' : `${Math.round(body.attributed_share * 100)}%`;
      const k = body.k_anonymity;
      assert.deepEqual(cells, [shownValue(body.current, body.current_reason, k), shownValue(body.previous, body.previous_reason, k), growthText(body.growth), named], period);
      if (period === 'yoy') {
        assert.equal(body.previous, null);
        assert.equal(cells[1], 'no data: before the panel starts');
        assert.equal(cells[2], 'n/a');
      }
    }

    // The series' total equals the API's.
    const { body: series } = await api(`/v1/timeseries?metric=spend&category=coffee_shop&state=CA&granularity=week&from=${FROM}&to=${AS_OF}`);
    const total = series.points.reduce((a, p) => a + (p.value ?? 0), 0);
    assert.equal(await page.textContent('#range-total'), money(total));
    assert.equal(await page.locator('#series-rows tr').count(), series.points.length);

    // Top movers: same merchants in the same order, above the default size floor ($100).
    const { body: top } = await api(`/v1/top?category=coffee_shop&state=CA&by=growth&direction=up&min_spend=100&period=wow&as_of=${AS_OF}&limit=10`);
    const names = await page.$$eval('#top-rows tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
    assert.ok(top.merchants.length > 0, 'some coffee shop is above the floor');
    assert.deepEqual(names, top.merchants.map((m) => m.name));

    // The data's age is visible and is the API's as-of time.
    const asOfHeader = headers.get('x-data-as-of');
    assert.ok(asOfHeader, 'the API answers with X-Data-As-Of');
    const shown = await page.getAttribute('#as-of', 'datetime');
    assert.ok(shown && Date.parse(shown) >= Date.parse(asOfHeader) - 1000, `as-of shown ${shown} vs ${asOfHeader}`);
    assert.match(await page.textContent('#as-of-age'), /ago|just now/);

    // The map: every state drawn, coloured once its answer is in.
    await page.waitForFunction(() => window.__altdata.mapReady > 0, null, { timeout: 30_000 });
    assert.equal(await page.locator('#map path.state').count(), 51);
    const caFill = await page.$eval('#map path[data-state="CA"]', (p) => p.style.fill);
    assert.ok(caFill && caFill !== 'rgb(228, 228, 228)', `CA is coloured (${caFill})`);
    assert.equal(await page.getAttribute('#map path[data-state="CA"]', 'aria-pressed'), 'true');

    await page.screenshot({ path: join(RESULTS, 'dashboard-1280x800-screenshot.png') });
    await assertAccessible(page, 'the dashboard');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('first meaningful paint is under 1 s', async () => {
    // A view nobody asked for yet (the gateway computes every answer), in a warm browser and
    // a tab that is signed in already.
    const page = await context.newPage();
    await page.goto(`${BASE}${CANONICAL}`);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.ready);
    await page.goto(`${BASE}/?metric=spend&category=grocery&state=TX&granularity=week&period=wow&as_of=${AS_OF}&to=${AS_OF}&from=${FROM}`);
    await page.waitForFunction(() => window.__altdata?.firstMeaningfulPaintMs != null);
    const uncached = await page.evaluate(() => window.__altdata.firstMeaningfulPaintMs);
    console.log(`# first meaningful paint, warm browser, answers computed by the gateway: ${uncached} ms ${await timings(page)}`);
    await page.waitForFunction(() => window.__altdata?.ready);
    await page.reload();
    await page.waitForFunction(() => window.__altdata?.firstMeaningfulPaintMs != null);
    const cached = await page.evaluate(() => window.__altdata.firstMeaningfulPaintMs);
    console.log(`# first meaningful paint, warm browser, answers from the gateway's cache: ${cached} ms ${await timings(page)}`);
    // The reload was answered from the gateway's cache, and the page says so.
    await page.waitForFunction(() => window.__altdata?.ready);
    assert.match(await page.textContent('#cache-status'), /cache hit/);
    await page.close();
    assert.ok(uncached < 1000, `first meaningful paint ${uncached} ms should be under 1 s`);
  });

  test('the URL holds the whole view; Refresh bypasses the cache; CSV downloads', async () => {
    const page = await context.newPage();
    await page.goto(`${BASE}/?metric=transactions&scope=all&state=NY,TX&granularity=day&period=mom&as_of=${AS_OF}&to=${AS_OF}&from=${daysBefore(AS_OF, 13)}&map=value&top=spend`);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.ready);
    assert.equal(await page.inputValue('#metric'), 'transactions');
    assert.equal(await page.inputValue('#scope'), 'all');
    assert.equal(await page.inputValue('#states'), 'NY, TX');
    assert.equal(await page.inputValue('#granularity'), 'day');
    assert.equal(await page.inputValue('#period'), 'mom');
    assert.equal(await page.inputValue('#map-mode'), 'value');
    assert.equal(await page.locator('#series-rows tr').count(), 14);
    const { body } = await api(`/v1/growth?metric=transactions&state=NY,TX&period=mom&as_of=${AS_OF}`);
    assert.equal(await page.textContent('#headline-growth'), growthText(body.growth));

    // Changing a control rewrites the URL.
    await page.selectOption('#granularity', 'week');
    await until('granularity=week in the URL', () => page.url().includes('granularity=week'));

    // Ordinary loads use the gateway's cache; Refresh bypasses it (Cache-Control: no-cache).
    const seen = [];
    // Late responses (the map's, the next test's) may arrive after this page is gone: the
    // listener is removed below and never lets a closed page's error escape.
    const onResponse = async (r) => {
      if (!/\/v1\/(timeseries|growth|top)/.test(r.url())) return;
      try {
        const sentHeaders = await r.request().allHeaders();
        seen.push({ url: r.url(), sent: sentHeaders['cache-control'] || '', xcache: r.headers()['x-cache'] });
      } catch {
        // the page or browser closed meanwhile
      }
    };
    page.on('response', onResponse);
    await page.waitForFunction(() => window.__altdata.loads >= 2 && !document.body.classList.contains('loading'));
    await page.reload();
    await page.waitForFunction(() => window.__altdata?.ready);
    await until('the reload\'s answers', () => seen.length >= 6);
    assert.ok(seen.every((s) => !s.sent.includes('no-cache')), `ordinary requests do not bypass the cache: ${JSON.stringify(seen.slice(0, 3))}`);
    assert.ok(seen.some((s) => s.xcache === 'hit'), `a reload is answered from the cache: ${seen.map((s) => s.xcache)}`);
    // Let the reload's map requests finish, so that only the Refresh's requests are seen.
    await page.waitForFunction(() => window.__altdata.mapReady === window.__altdata.seq, null, { timeout: 30_000 });
    const loads = await page.evaluate(() => window.__altdata.loads);
    seen.length = 0;
    await page.click('#refresh');
    await page.waitForFunction((n) => window.__altdata.loads > n, loads);
    await until('the refresh\'s answers', () => seen.length >= 6);
    assert.ok(seen.every((s) => s.sent.includes('no-cache') && s.xcache === 'bypass'), `Refresh bypasses the cache: ${JSON.stringify(seen.slice(0, 3))}`);
    page.off('response', onResponse);

    // CSV download of the series.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv-series')]);
    const stream = await download.createReadStream();
    let csv = '';
    for await (const chunk of stream) csv += chunk;
    assert.match(csv.split('\n')[0], /^period_start,metric,value,suppressed/);
    assert.match(download.suggestedFilename(), /\.csv$/);
    await page.close();
  });

  test('is usable by keyboard: labelled controls, map states toggle with Enter and Space', async () => {
    const page = await context.newPage();
    await page.goto(`${BASE}${CANONICAL}`);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.mapReady > 0, null, { timeout: 30_000 });
    const unlabelled = await page.$$eval('#controls input, #controls select, main select, main input', (els) =>
      els.filter((el) => !el.hidden && el.offsetParent !== null && !el.labels?.length && !el.getAttribute('aria-label')).map((el) => el.id),
    );
    assert.deepEqual(unlabelled, []);
    // The first Tab reaches the skip link, then the navigation and the controls in order.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
    // Keyboard on the map.
    await page.focus('#map path[data-state="NY"]');
    await page.keyboard.press('Enter');
    await until('NY in the filter', () => page.url().includes('state=CA,NY'));
    await page.waitForFunction(() => document.querySelector('#map path[data-state="NY"]')?.getAttribute('aria-pressed') === 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset?.state), 'NY', 'focus stays on the state');
    await page.keyboard.press(' ');
    await until('NY out of the filter', () => /state=CA(&|$)/.test(page.url()));
    // The view the toggle asked for has drawn its map (nothing left to move the focus).
    await page.waitForFunction(() => window.__altdata.mapReady === window.__altdata.seq, null, { timeout: 30_000 });
    // Metric chosen from the keyboard.
    await page.focus('#metric');
    await page.keyboard.press('ArrowDown'); // spend -> gross
    await until('metric=gross in the URL', () => page.url().includes('metric=gross'));
    await page.close();
  });

  test('no invented zeros: gaps before the data, the panel start marked, partial periods flagged and explained', async () => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    const from = daysBefore(AS_OF, 55);
    const view = `/?metric=spend&category=coffee_shop&state=CA&granularity=week&period=yoy&as_of=${AS_OF}&to=${AS_OF}&from=${from}`;
    await page.goto(BASE + view);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.ready);
    const { body: series } = await api(`/v1/timeseries?metric=spend&category=coffee_shop&state=CA&granularity=week&from=${from}&to=${AS_OF}`);
    const gaps = series.points.filter((p) => p.value == null);
    assert.ok(gaps.length >= 3, `weeks before the 21 days of data have no value: ${JSON.stringify(series.points.map((p) => p.value))}`);
    assert.ok(gaps.every((p) => p.reason === 'before_panel_start'), JSON.stringify(gaps));
    const rows = await page.$$eval('#series-rows tr', (trs) => trs.map((tr) => ({ value: tr.children[1].textContent, partial: tr.dataset.partial === 'true' })));
    assert.equal(rows.length, series.points.length);
    series.points.forEach((p, i) => {
      assert.equal(rows[i].value, shownValue(p.value, p.reason, series.k_anonymity), p.period_start);
      assert.equal(rows[i].partial, p.partial, p.period_start);
    });
    // The chart knows where the panel starts and draws it; the note counts gaps and partial weeks.
    assert.equal(await page.getAttribute('#chart', 'data-panel-start'), series.panel.first_day);
    assert.ok(series.points.some((p) => p.partial), 'the week the data starts in is partial');
    assert.match(await page.textContent('#series-note'), new RegExp(`data from ${series.panel.first_day}.*${gaps.length} without data.*partial`));
    // Year over year with 21 days of history: no growth, and the reason, never "$0.00".
    assert.equal(await page.textContent('#headline-growth'), 'n/a');
    assert.match(await page.textContent('#headline-previous'), /^no data: before the panel starts/);
    assert.match(await page.textContent('#headline-note'), /Growth n\/a: no data: before the panel starts/);
    // The data's age: the last transaction day beside the last aggregation.
    const { body: fresh } = await api('/v1/freshness');
    await until('the last transaction day', async () => (await page.textContent('#last-day')) === fresh.last_transaction_day);
    await page.screenshot({ path: join(RESULTS, 'dashboard-gaps-1280x800-screenshot.png') });
    await assertAccessible(page, 'the dashboard with gaps');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(RESULTS, 'dashboard-gaps-narrow-390x844-screenshot.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('quick control changes leave no unhandled rejection and no console error', async () => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${BASE}${CANONICAL}`);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.ready);
    for (const metric of ['gross', 'transactions', 'spend_per_customer', 'transactions_per_customer', 'avg_ticket', 'spend']) {
      await page.selectOption('#metric', metric);
    }
    await page.selectOption('#granularity', 'quarter');
    await page.selectOption('#period', 'month');
    await until('the last view loaded', () => page.evaluate(() => window.__altdata.ready && !document.body.classList.contains('loading') && location.search.includes('period=month')));
    await page.waitForFunction(() => window.__altdata.mapReady === window.__altdata.seq, null, { timeout: 30_000 });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('top movers go up or down above a size floor that is shown; the CSV says what it ranks', async () => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${BASE}/?metric=spend&scope=all&state=&granularity=week&period=wow&as_of=${AS_OF}&to=${AS_OF}&from=${FROM}&top=growth&dir=down&floor=500`);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.ready);
    const { body: top } = await api(`/v1/top?by=growth&direction=down&min_spend=500&period=wow&as_of=${AS_OF}&limit=10`);
    assert.ok(top.merchants.length > 0, 'some merchant declined');
    const names = await page.$$eval('#top-rows tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(names, top.merchants.map((m) => m.name));
    assert.ok(top.merchants.every((m) => m.previous_spend >= 500), 'the floor holds');
    assert.match(await page.textContent('#top-title'), /^Top decliners/);
    assert.match(await page.textContent('#top-floor-help'), /at least \$500\.00 of net spend in the previous period/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv-top')]);
    assert.match(download.suggestedFilename(), /^top-growth-decliners_all_US_wow_/);
    let csv = '';
    for await (const chunk of await download.createReadStream()) csv += chunk;
    const [header, first] = csv.split('\n');
    assert.match(header, /,by,direction,min_spend,unit,subject,period_from,period_to,as_of_data$/);
    assert.match(first, new RegExp(`,growth,down,500,usd,all,${top.current_period.from},${top.current_period.to},`));
    // Changing the floor re-ranks at once and the URL keeps it.
    await page.fill('#top-floor', '0');
    await page.dispatchEvent('#top-floor', 'change');
    await until('floor=0 in the URL', () => page.url().includes('floor=0'));
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a card that fails says so beside it and retries', async () => {
    const page = await context.newPage();
    await page.goto(`${BASE}${CANONICAL}`);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.ready);
    // The gateway refuses the top movers (a 503, as when PostgreSQL is away): only that card
    // says so, with its Retry; the others keep their answers.
    const isTop = (url) => url.pathname === '/v1/top';
    await page.route(isTop, (route) => route.fulfill({ status: 503, contentType: 'application/json', headers: { 'retry-after': '1' }, body: '{"error":{"code":"unavailable","message":"the database is unavailable"}}' }));
    await page.click('#refresh');
    await page.waitForFunction(() => !document.getElementById('top-error').hidden, null, { timeout: 30_000 });
    assert.match(await page.textContent('#top-error'), /Could not load: the database is unavailable/);
    assert.equal(await page.getAttribute('#top-card', 'aria-busy'), 'false');
    assert.ok(await page.isHidden('#error'), 'no page-level error');
    assert.ok(await page.isHidden('#headline-error'));
    await page.unroute(isTop);
    await page.click('#top-error [data-retry]');
    await page.waitForFunction(() => document.getElementById('top-error').hidden && document.getElementById('top-card').getAttribute('aria-busy') === 'false');
    const { body: top } = await api(`/v1/top?category=coffee_shop&state=CA&by=growth&direction=up&min_spend=100&period=wow&as_of=${AS_OF}&limit=10`);
    assert.equal(await page.locator('#top-rows tr').count(), top.merchants.length);
    await page.close();
  });

  test('a skip link passes the map', async () => {
    const page = await context.newPage();
    await page.goto(`${BASE}${CANONICAL}`);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.mapReady > 0, null, { timeout: 30_000 });
    await page.focus('#map-mode');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip the map');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'chart-card');
    await page.close();
  });

  test('fits a narrow (390 px) screen', async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}${CANONICAL}`);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdata?.mapReady > 0, null, { timeout: 30_000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no horizontal scrolling (overflow ${overflow}px)`);
    await page.screenshot({ path: join(RESULTS, 'dashboard-narrow-390x844-screenshot.png'), fullPage: true });
    await page.close();
  });
});

describe('compare', () => {
  test('up to five subjects on one chart, in their unit or indexed to 100, with the shared filters shown and names, not ids', async () => {
    const page = await context.newPage();
    const errors = watchErrors(page);
    const query = `s=category:coffee_shop,category:fast_food&metric=spend&granularity=week&from=${FROM}&to=${AS_OF}&state=CA`;
    await page.goto(`${BASE}/compare.html?${query}&mode=absolute`);
    await signIn(page, ANALYST);
    await page.waitForFunction(() => window.__altdataCompare?.loads > 0);
    const heads = await page.$$eval('#compare-head th', (ths) => ths.map((th) => th.textContent));
    assert.deepEqual(heads, ['Period', 'Coffee shops', 'Fast food']);
    assert.match(await page.textContent('#filters'), /Every subject: net spend, states CA, by week/);
    const answers = [];
    for (const category of ['coffee_shop', 'fast_food']) {
      answers.push((await api(`/v1/timeseries?category=${category}&metric=spend&state=CA&granularity=week&from=${FROM}&to=${AS_OF}`)).body);
    }
    const rows = await page.$$eval('#compare-rows tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    assert.equal(rows.length, answers[0].points.length);
    rows.forEach((row, i) => {
      assert.equal(row[1], shownValue(answers[0].points[i].value, answers[0].points[i].reason, answers[0].k_anonymity));
      assert.equal(row[2], shownValue(answers[1].points[i].value, answers[1].points[i].reason, answers[1].k_anonymity));
    });
    // Indexed: each subject's first whole period with data is 100, gaps stay gaps.
    await page.selectOption('#mode', 'index');
    await page.waitForFunction(() => window.__altdataCompare.loads > 1 && location.search.includes('mode=index'));
    const indexedRows = await page.$$eval('#compare-rows tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    for (const column of [1, 2]) {
      const points = answers[column - 1].points;
      const base = points.findIndex((p) => p.value && !p.partial);
      assert.ok(base >= 0, 'a whole week with data');
      assert.equal(indexedRows[base][column], '100.0', `column ${column}`);
      points.forEach((p, row) => {
        if (p.value == null) assert.doesNotMatch(indexedRows[row][column], /^\d/, 'a gap stays a gap');
        else assert.equal(indexedRows[row][column], (Math.round((p.value / points[base].value) * 1000) / 10).toFixed(1));
      });
    }
    // A brand is added by its name and shown by its name.
    const { body: merchants } = await api('/v1/merchants?category=coffee_shop&limit=50');
    const brand = merchants.merchants.find((m) => m.brand_id);
    assert.ok(brand, 'a coffee brand in the catalogue');
    await page.fill('#merchant-search', brand.name);
    await page.click(`#merchant-options li[data-merchant="${brand.id}"]`);
    await page.waitForFunction((id) => document.querySelector(`#subjects li[data-subject="brand:${id}"]`), brand.brand_id);
    assert.match(await page.textContent(`#subjects li[data-subject="brand:${brand.brand_id}"] span`), new RegExp(`^${brand.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(brand\\)$`));
    await page.waitForFunction(() => document.querySelectorAll('#compare-head th').length === 4);
    await page.screenshot({ path: join(RESULTS, 'compare-1280x800-screenshot.png') });
    await assertAccessible(page, 'the compare view');
    // The chart follows its container's width (a ResizeObserver): no horizontal scrolling once
    // it has.
    await page.setViewportSize({ width: 390, height: 844 });
    await until('the page to fit 390 px', () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth <= 1), 5_000);
    await page.screenshot({ path: join(RESULTS, 'compare-narrow-390x844-screenshot.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });
});

describe('review tool', () => {
  // Shared by the three steps below (node:test runs them in order).
  const shared = {};

  test('assigns a group; the attributed share rises; Refresh shows the dashboard’s new numbers', async () => {
    const review = await context.newPage();
    const errors = watchErrors(review);
    shared.review = review;
    shared.errors = errors;
    assertPageHeaders(await review.goto(`${BASE}/review.html`));
    await signIn(review, ADMIN);
    await review.waitForFunction(() => window.__altdataReview?.loads > 0);
    await review.waitForFunction(() => document.getElementById('attributed-share').dataset.value !== '');
    const shareBefore = Number(await review.getAttribute('#attributed-share', 'data-value'));
    assert.ok(Number(await review.getAttribute('#mapped-share', 'data-value')) >= shareBefore, 'mapped spend includes the attributed');
    const { body: queue } = await api('/v1/admin/review?limit=50', ADMIN);
    assert.ok(queue.groups.length > 0, 'the generated data leaves descriptors to review');
    assert.equal(await review.locator('#groups article.group').count(), Math.min(25, queue.groups.length));
    const first = await review.getAttribute('#groups article.group >> nth=0', 'data-descriptor');
    assert.equal(first, queue.groups[0].normalized_descriptor, 'ranked by spend at stake');
    // A group not counted in its suggestion's category yet (held only, or counted in another
    // category), so that assigning it moves that category's total by its net spend.
    const group = queue.groups.slice(0, 25).find((g) => Array.isArray(g.candidates) && g.candidates.length && g.net_spend > 0 && g.counted_category !== g.candidates[0].category);
    assert.ok(group, 'some group not counted in its suggestion\'s category has a suggestion');
    const candidate = group.candidates[0];
    shared.group = group;
    await review.screenshot({ path: join(RESULTS, 'review-1280x800-screenshot.png') });

    // The dashboard for the suggested merchant's category, every state, by month (whole
    // range), and the same data by week: cached now and not refreshed later, so that only the
    // server-side invalidation can make it change. Both baselines are loaded with Refresh, so
    // they are the truth and are what the cache holds.
    const dashboard = await context.newPage();
    shared.dashboard = dashboard;
    const view = `/?metric=spend&category=${candidate.category}&state=&granularity=month&period=wow&as_of=${AS_OF}&to=${AS_OF}&from=${daysBefore(AS_OF, 40)}`;
    const freshTotal = async (path) => {
      await dashboard.goto(BASE + path);
      await signInIfAsked(dashboard, ANALYST);
      await dashboard.waitForFunction(() => window.__altdata?.ready);
      const loads = await dashboard.evaluate(() => window.__altdata.loads);
      await dashboard.click('#refresh');
      await dashboard.waitForFunction((n) => window.__altdata.loads > n, loads);
      return Number(await dashboard.getAttribute('#range-total', 'data-value'));
    };
    shared.weekly = view.replace('granularity=month', 'granularity=week');
    shared.weeklyBefore = await freshTotal(shared.weekly);
    const totalBefore = await freshTotal(view);

    // Assign from the UI: the group's first suggestion.
    const card = review.locator(`#groups article.group[data-descriptor="${group.normalized_descriptor}"]`);
    await card.scrollIntoViewIfNeeded();
    await card.locator('[data-assign="0"]').click();
    const assigned = await until('the assign answer', () => review.evaluate(() => window.__altdataReview.lastAssign));
    shared.assigned = assigned;
    assert.equal(assigned.merchant_id, candidate.merchant_id);
    assert.ok(assigned.descriptors[0].audit_id > 0);
    await until('the attributed share to rise', async () => Number(await review.getAttribute('#attributed-share', 'data-value')) > shareBefore);
    await until('the group to leave the queue', async () => (await card.count()) === 0);
    shared.shareAfter = Number(await review.getAttribute('#attributed-share', 'data-value'));
    console.log(`# attributed share ${(shareBefore * 100).toFixed(3)}% -> ${(shared.shareAfter * 100).toFixed(3)}% after assigning ${group.normalized_descriptor} (${assigned.transactions} txns, $${assigned.net_spend}) to ${candidate.name}`);
    await review.waitForFunction(() => !document.getElementById('toast').hidden);
    await review.screenshot({ path: join(RESULTS, 'review-after-assign-screenshot.png') });

    // Refresh (Cache-Control: no-cache) shows the new numbers at once.
    const loadsBefore = await dashboard.evaluate(() => window.__altdata.loads);
    await dashboard.click('#refresh');
    await dashboard.waitForFunction((n) => window.__altdata.loads > n, loadsBefore);
    shared.refreshed = Number(await dashboard.getAttribute('#range-total', 'data-value'));
    console.log(`# dashboard total for ${candidate.category} after Refresh: ${money(totalBefore)} -> ${money(shared.refreshed)}`);
    assert.ok(Math.abs(shared.refreshed - totalBefore - assigned.net_spend) < 0.011, `the total moved by the assigned net spend (${shared.refreshed - totalBefore} vs ${assigned.net_spend})`);
    const { body: series } = await api(`/v1/timeseries?metric=spend&category=${candidate.category}&granularity=month&from=${daysBefore(AS_OF, 40)}&to=${AS_OF}`);
    assert.equal(await dashboard.textContent('#range-total'), money(series.points.reduce((a, p) => a + (p.value ?? 0), 0)));
  });

  test('a cached dashboard view reflects the assignment within seconds (server-side invalidation)', async () => {
    assert.ok(shared.assigned, 'needs the assignment of the previous test');
    // A plain load (the gateway's cache allowed) of a view cached before the assignment: it
    // changes only once the invalidation (review outbox -> aggregator relay -> <PREFIX>_CACHE
    // -> the gateway's invalidator) has bumped the category's generation.
    const plain = await context.newPage();
    const started = Date.now();
    try {
      const total = await until('a cached answer to reflect the assignment (is the aggregator relaying the outbox to <PREFIX>_CACHE?)', async () => {
        await plain.goto(BASE + shared.weekly);
        await signInIfAsked(plain, ANALYST);
        await plain.waitForFunction(() => window.__altdata?.ready);
        const value = Number(await plain.getAttribute('#range-total', 'data-value'));
        return Math.abs(value - shared.weeklyBefore) > 0.001 ? value : null;
      }, 20_000, 250);
      console.log(`# the cached dashboard view reflected the assignment after ${Date.now() - started} ms`);
      assert.ok(Math.abs(total - shared.refreshed) < 0.011, `the weekly view (${total}) agrees with the refreshed monthly one (${shared.refreshed})`);
    } finally {
      await plain.close();
    }
  });

  test('undo from the recent decisions puts the group back', async () => {
    const { review, group, assigned, errors } = shared;
    assert.ok(assigned, 'needs the assignment of the first test');
    await review.click(`#audit button[data-undo="${assigned.descriptors[0].audit_id}"]`);
    await until('the group to be back in the queue', async () => (await review.locator(`#groups article.group[data-descriptor="${group.normalized_descriptor}"]`).count()) === 1);
    await until('the attributed share to fall back', async () => Number(await review.getAttribute('#attributed-share', 'data-value')) < shared.shareAfter);
    assert.deepEqual(errors, []);
    await shared.dashboard.close();
    await review.close();
  });

  test('assigns several groups to a new merchant and ignores one', async () => {
    const review = await context.newPage();
    await review.goto(`${BASE}/review.html`);
    await signIn(review, ADMIN);
    await review.waitForFunction(() => window.__altdataReview?.loads > 0);
    const descriptors = await review.$$eval('#groups article.group', (cards) => cards.map((c) => c.dataset.descriptor).filter(Boolean).slice(-3));
    assert.equal(descriptors.length, 3);
    for (const d of descriptors.slice(0, 2)) {
      await review.check(`#groups article.group[data-descriptor="${d}"] input[type="checkbox"]`);
    }
    await review.check('input[name="target"][value="new"]');
    await review.fill('#new-name', `Browser Test Merchant ${Date.now()}`);
    await review.selectOption('#new-category', 'restaurant');
    await review.click('#assign-selected');
    const answer = await until('the assign answer', async () => {
      const a = await review.evaluate(() => window.__altdataReview.lastAssign);
      return a && a.merchant_created ? a : null;
    });
    assert.equal(answer.descriptors.length, 2);
    assert.equal(answer.category, 'restaurant');
    await until('both groups out of the queue', async () =>
      (await review.$$eval('#groups article.group', (cards) => cards.map((c) => c.dataset.descriptor))).every((d) => !descriptors.slice(0, 2).includes(d)),
    );
    const last = descriptors[2];
    await review.click(`#groups article.group[data-descriptor="${last}"] [data-action="ignore"]`);
    await review.click('#confirm-yes');
    await until('the ignored group out of the queue', async () => (await review.locator(`#groups article.group[data-descriptor="${last}"]`).count()) === 0);
    await review.setViewportSize({ width: 390, height: 844 });
    await review.evaluate(() => window.scrollTo(0, 0));
    await review.screenshot({ path: join(RESULTS, 'review-narrow-390x844-screenshot.png') });
    await review.close();
  });

  test('assigns every selected group to its best suggestion above a threshold, and undoes them all', async () => {
    const review = await context.newPage();
    const errors = watchErrors(review);
    await review.goto(`${BASE}/review.html`);
    await signIn(review, ADMIN);
    await review.waitForFunction(() => window.__altdataReview?.loads > 0);
    const { body: before } = await api('/v1/admin/review?limit=25', ADMIN);
    const best = (g) => (Array.isArray(g.candidates) ? g.candidates[0] : null);
    const eligible = before.groups.filter((g) => best(g) && Math.round(best(g).score * 100) >= 90).map((g) => g.normalized_descriptor);
    const below = before.groups.filter((g) => !eligible.includes(g.normalized_descriptor)).map((g) => g.normalized_descriptor);
    assert.ok(eligible.length > 0, 'some group has a suggestion of 90% or more');
    assert.ok(below.length > 0, 'some group is below the threshold');
    await review.check('#select-all');
    await review.check('input[name="target"][value="suggested"]');
    await review.fill('#min-score', '90');
    await until('the note to count the eligible groups', async () => (await review.textContent('#selection-note')).includes(`${eligible.length} of them`));
    await review.click('#assign-selected');
    const bulk = await until('the bulk assignment', () => review.evaluate(() => window.__altdataReview.lastBulk));
    assert.equal(bulk.assigned, eligible.length);
    assert.deepEqual([...bulk.skipped].sort(), [...below].sort());
    const { body: after } = await api('/v1/admin/review?limit=500', ADMIN);
    const waiting = new Set(after.groups.map((g) => g.normalized_descriptor));
    assert.ok(eligible.every((d) => !waiting.has(d)), 'every eligible group left the queue');
    assert.ok(below.every((d) => waiting.has(d)), 'the groups below the threshold stayed');
    await review.waitForFunction(() => document.getElementById('toast-undo') !== null);
    await review.screenshot({ path: join(RESULTS, 'review-bulk-assign-1280x800-screenshot.png') });
    console.log(`# bulk assign at >= 90%: ${eligible.length} groups assigned, ${below.length} left`);
    await review.click('#toast-undo');
    await until('every group back in the queue', async () => {
      const { body } = await api('/v1/admin/review?limit=500', ADMIN);
      const back = new Set(body.groups.map((g) => g.normalized_descriptor));
      return eligible.every((d) => back.has(d));
    });
    assert.deepEqual(errors, []);
    await review.close();
  });
  test('lists the local shops counted in their category apart from what needs a person', async () => {
    const review = await context.newPage();
    const errors = watchErrors(review);
    await review.goto(`${BASE}/review.html`);
    await signIn(review, ADMIN);
    await review.waitForFunction(() => window.__altdataReview?.loads > 0);
    const { body: local } = await api('/v1/admin/review?part=local&limit=25', ADMIN);
    assert.ok(local.groups.length > 0, 'the generated data has local shops');
    assert.ok(local.groups.every((g) => g.counted_category && !g.brand_suspected), 'local shops are counted and no brand is suspected');
    const loads = await review.evaluate(() => window.__altdataReview.loads);
    await review.selectOption('#queue-part', 'local');
    await review.waitForFunction((n) => window.__altdataReview.loads > n, loads);
    assert.equal(await review.getAttribute('#groups article.group >> nth=0', 'data-descriptor'), local.groups[0].normalized_descriptor);
    const summary = await review.textContent('#queue-summary');
    assert.ok(summary.includes(`${local.local_groups} local shop`), summary);
    await review.screenshot({ path: join(RESULTS, 'review-local-shops-1280x800-screenshot.png') });
    assert.deepEqual(errors, []);
    await review.close();
  });
  test('review is safe: ignore asks with the spend at stake, a rule is previewed, the list keeps its place, undo shows its caveats', async () => {
    const review = await context.newPage();
    const errors = watchErrors(review);
    await review.goto(`${BASE}/review.html`);
    await signIn(review, ADMIN);
    await review.waitForFunction(() => window.__altdataReview?.loads > 0);
    assert.equal(await review.textContent('#assign-why'), 'Disabled: select at least one group.');
    const { body: queue } = await api('/v1/admin/review?limit=25', ADMIN);
    const index = queue.groups.findIndex((g, i) => i > 0 && i < queue.groups.length - 1 && Array.isArray(g.candidates) && g.candidates.length);
    assert.ok(index > 0, 'a group with a suggestion, not first or last');
    const group = queue.groups[index];
    const card = review.locator(`#groups article.group[data-descriptor="${group.normalized_descriptor}"]`);
    // The facts that decide it: MCC mix and states, as the API lists them.
    const total = (shares) => shares.reduce((a, x) => a + x.transactions, 0) || 1;
    const facts = (shares) => shares.map((x) => `${x.value || 'none'} ${Math.round((x.transactions / total(shares)) * 100)}%`).join(' · ') || '—';
    assert.equal(await card.locator('[data-mcc]').textContent(), facts(group.mcc_mix));
    assert.equal(await card.locator('[data-states]').textContent(), facts(group.states));
    assert.equal(await card.locator('[data-near-tie]').count(), group.near_tie ? 1 : 0);

    // Ignore asks first, with the money at stake; Cancel changes nothing.
    await card.locator('[data-action="ignore"]').click();
    await review.waitForFunction(() => document.getElementById('confirm-dialog').open);
    assert.ok((await review.textContent('#confirm-body')).includes(`${money(group.at_stake)} at stake`));
    await review.screenshot({ path: join(RESULTS, 'review-confirm-ignore-1280x800-screenshot.png') });
    await assertAccessible(review, 'the review tool asking to confirm');
    await review.click('#confirm-no');
    assert.equal(await card.count(), 1);

    // Assign + rule shows what the rule would catch before saving anything.
    const candidate = group.candidates[0];
    const { body: rulesBefore } = await api('/v1/admin/rules', ADMIN);
    await card.locator('[data-rule="0"]').click();
    await review.waitForFunction(() => document.getElementById('confirm-dialog').open);
    const preview = await (await fetch(`${BASE}/v1/admin/rules/preview`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'prefix', pattern: group.normalized_descriptor, merchant_id: candidate.merchant_id }),
    })).json();
    const text = await review.textContent('#confirm-body');
    assert.ok(text.includes(`would resolve ${preview.pending_groups} waiting group`), text);
    assert.ok(text.includes(`${preview.pending_transactions} transactions`), text);
    const { body: rulesDuring } = await api('/v1/admin/rules', ADMIN);
    assert.equal(rulesDuring.rules.length, rulesBefore.rules.length, 'nothing saved before the answer');
    await review.click('#confirm-yes');
    // The decided group keeps its place: the same slot now says what was done.
    const slot = review.locator(`#groups > article >> nth=${index}`);
    await until('the decision in the group\'s place', async () => (await slot.getAttribute('data-decided')) === group.normalized_descriptor);
    const next = queue.groups[index + 1].normalized_descriptor;
    assert.equal(await review.getAttribute(`#groups > article >> nth=${index + 1}`, 'data-descriptor'), next, 'the next group did not move');
    const { body: rulesAfter } = await api('/v1/admin/rules', ADMIN);
    assert.equal(rulesAfter.rules.length, rulesBefore.rules.length + 1);
    await review.screenshot({ path: join(RESULTS, 'review-kept-place-1280x800-screenshot.png') });
    await assertAccessible(review, 'the review tool after a decision');

    // Undo takes back the assignment and the rule, and shows what it could not take back.
    await review.click('#toast-undo');
    const notes = await until('the undo', () => review.evaluate(() => window.__altdataReview.lastUndo));
    await until('the group back in the queue', async () => (await card.count()) === 1);
    const { body: rulesUndone } = await api('/v1/admin/rules', ADMIN);
    assert.equal(rulesUndone.rules.filter((r) => r.active).length, rulesBefore.rules.filter((r) => r.active).length);
    if (notes.length) {
      assert.ok(await review.isVisible('#undo-warning'));
      assert.deepEqual(await review.$$eval('#undo-notes li', (lis) => lis.map((li) => li.textContent)), notes);
    }
    await review.setViewportSize({ width: 390, height: 844 });
    await review.screenshot({ path: join(RESULTS, 'review-undo-narrow-390x844-screenshot.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await review.close();
  });
});
