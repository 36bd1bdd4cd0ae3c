// Browser tests of the analyst page (analyst.html): the company view, the per-active-card
// toggle and the overlap panel show the API's numbers, and each section downloads its CSV.
// Run by scripts/test-browser.sh beside browser.test.mjs, with the same environment.
// Every wait is a condition with a deadline; there is no fixed sleep.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.ALTDATA_BASE_URL;
const ANALYST = process.env.ALTDATA_ANALYST_KEY;
const RESULTS = process.env.ALTDATA_TEST_RESULTS || join(process.cwd(), 'test-results');
const CHROMIUM = process.env.ALTDATA_CHROMIUM || '/usr/bin/chromium';
if (!BASE || !ANALYST) throw new Error('set ALTDATA_BASE_URL and ALTDATA_ANALYST_KEY (scripts/test-browser.sh does)');
mkdirSync(RESULTS, { recursive: true });

// The page's formatting, restated.
const usd0 = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });
const usd2 = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const money = (v) => (v == null ? '—' : Math.abs(v) < 1000 ? usd2.format(v) : usd0.format(v));
const count = (v) => (v == null ? '—' : int.format(v));

async function api(path) {
  const response = await fetch(BASE + path, { headers: { Authorization: `Bearer ${ANALYST}` } });
  assert.equal(response.status, 200, `${path}: ${response.status} ${await response.clone().text()}`);
  return response.json();
}

let context;
let userDataDir;

before(async () => {
  userDataDir = mkdtempSync(join(tmpdir(), 'altdata-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
    viewport: { width: 1280, height: 1000 },
    acceptDownloads: true,
  });
  context.setDefaultTimeout(20_000);
});

after(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

async function openSignedIn() {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${BASE}/analyst.html`);
  await page.waitForFunction(() => document.getElementById('key-dialog')?.open);
  await page.fill('#key-input', ANALYST);
  await page.click('#sign-in');
  await page.waitForFunction(() => {
    const state = window.__altdataAnalyst;
    return state && state.company && state.panel && state.overlap;
  });
  return { page, errors };
}

const field = (page, list, name) => page.textContent(`#${list} [data-field="${name}"]`);

test('the company view shows the ticker’s fiscal periods as the API answers them', async () => {
  const { page, errors } = await openSignedIn();
  const rendered = await page.evaluate(() => window.__altdataAnalyst.company);
  const symbol = rendered.company.symbol;
  const asOf = await page.inputValue('#company-as-of');
  const answer = await api(`/v1/tickers/${symbol}/sales?period=fiscal_quarter&as_of=${asOf}`);
  assert.deepEqual(rendered.to_date, answer.to_date);
  const row = page.locator('#company-table tr[data-kind="to_date"]');
  assert.equal(await row.locator('[data-field="sales"]').textContent(), money(answer.to_date.sales));
  assert.equal(await row.locator('[data-field="previous_sales"]').textContent(), money(answer.to_date.previous_sales));
  assert.equal(await page.locator('#company-table tr[data-kind="complete"]').count(), answer.periods.length);
  const download = page.waitForEvent('download');
  await page.click('#company-csv');
  const csv = readFileSync(await (await download).path(), 'utf8');
  assert.match(csv.split('\n')[0], /^symbol,kind,label,from,to,sales/);
  // How far SEC filings confirm the calendar is said beside the figures.
  const note = await page.textContent('#company-note');
  const source = answer.company.calendar_source;
  assert.ok(note.includes(source === 'unverified' ? 'not yet confirmed by an SEC filing' : source), note);
  await page.screenshot({ path: join(RESULTS, 'analyst-company.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('the per-active-card toggle switches growth to spend per active card', async () => {
  const { page, errors } = await openSignedIn();
  const raw = await page.evaluate(() => window.__altdataAnalyst.panel);
  assert.equal(raw.query.normalize, undefined);
  await page.check('#per-card');
  await page.waitForFunction(() => window.__altdataAnalyst.panel?.query?.normalize === 'panel');
  const normalized = await page.evaluate(() => window.__altdataAnalyst.panel);
  assert.equal(normalized.raw_current, raw.current, 'the raw value is the unnormalised answer');
  assert.equal(await field(page, 'panel-values', 'current'), money(normalized.current));
  assert.equal(await field(page, 'panel-values', 'panel_current'), count(normalized.panel_current));
  assert.ok(normalized.panel_current > 0, JSON.stringify(normalized));
  await page.screenshot({ path: join(RESULTS, 'analyst-per-card.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('the overlap panel shows the shared customers with their error bound', async () => {
  const { page, errors } = await openSignedIn();
  const rendered = await page.evaluate(() => window.__altdataAnalyst.overlap);
  const from = await page.inputValue('#overlap-from');
  const to = await page.inputValue('#overlap-to');
  const answer = await api(`/v1/overlap?a=starbucks&b=dunkin&from=${from}&to=${to}`);
  assert.equal(rendered.customers_both, answer.customers_both);
  assert.equal(await field(page, 'overlap-values', 'customers_a'), count(answer.customers_a));
  const both = answer.customers_both == null ? '—' : `${count(answer.customers_both)} ± ${count(answer.customers_both_error)}`;
  assert.equal(await field(page, 'overlap-values', 'customers_both'), both);
  assert.match(await page.textContent('#overlap-note'), /HyperLogLog/);
  await page.screenshot({ path: join(RESULTS, 'analyst-overlap.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});
