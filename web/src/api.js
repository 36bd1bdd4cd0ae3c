// The gateway client: the API key (entered in the sign-in form and kept in sessionStorage,
// so it lives as long as the tab and never in a URL), JSON and CSV requests with
// `Authorization: Bearer`, `Cache-Control: no-cache` on demand, freshness headers, and
// polite retries on 429/503.

const KEY_SLOTS = { analyst: 'altdata.apiKey', admin: 'altdata.adminKey' };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Removes a `key=` parameter from the address bar without reading it. Keys are never taken
 * from URLs (a URL reaches history, access logs and other sites' Referer), so an old link
 * that carries one only loses it; the sign-in form asks for the key instead. Also forgets
 * keys that earlier versions kept in localStorage, which outlived the tab.
 */
export function dropKeyFromUrl() {
  try {
    for (const slot of Object.values(KEY_SLOTS)) localStorage.removeItem(slot);
  } catch {
    /* storage disabled: nothing was kept */
  }
  const url = new URL(location.href);
  if (!url.searchParams.has('key')) return;
  url.searchParams.delete('key');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
}

export function storedKey(slot) {
  try {
    return sessionStorage.getItem(KEY_SLOTS[slot]) || null;
  } catch {
    return null;
  }
}

export function storeKey(slot, key) {
  try {
    if (key) sessionStorage.setItem(KEY_SLOTS[slot], key);
    else sessionStorage.removeItem(KEY_SLOTS[slot]);
  } catch {
    /* storage disabled: the key lives for this page only */
  }
}

/** Forgets every key of this tab. */
export function forgetKeys() {
  for (const slot of Object.keys(KEY_SLOTS)) storeKey(slot, null);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Client {
  constructor(key, { onFreshness, onUnauthorized } = {}) {
    this.key = key;
    this.onFreshness = onFreshness || (() => {});
    this.onUnauthorized = onUnauthorized || (() => {});
  }

  /**
   * GET (or POST with `body`) a path; resolves to `{ body, asOf, cache, age }`.
   * `fresh: true` sends `Cache-Control: no-cache` (the gateway recomputes).
   */
  async request(path, { fresh = false, body, method, signal, csv = false } = {}) {
    const key = this.key;
    const headers = { Authorization: `Bearer ${key}` };
    if (fresh) {
      headers['Cache-Control'] = 'no-cache';
      headers.Pragma = 'no-cache';
    }
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    headers.Accept = csv ? 'text/csv' : 'application/json';
    for (let attempt = 0; ; attempt++) {
      let response;
      try {
        response = await fetch(path, {
          method: method || (body !== undefined ? 'POST' : 'GET'),
          headers,
          body: body !== undefined ? JSON.stringify(body) : undefined,
          // The gateway's cache is the cache: the browser always revalidates ('no-cache' mode
          // sends `Cache-Control: max-age=0`, which the gateway's cache ignores). Not
          // 'no-store' or 'reload': those make Chromium add `Cache-Control: no-cache`, which
          // would bypass the gateway's cache on every request.
          cache: fresh ? 'no-store' : 'no-cache',
          signal,
        });
      } catch (error) {
        if (error.name === 'AbortError') throw error;
        if (attempt < 2) {
          await sleep(300 * (attempt + 1));
          continue;
        }
        throw new ApiError(0, 'network', 'the gateway cannot be reached');
      }
      if ((response.status === 429 || response.status === 503) && attempt < 4) {
        const wait = Number(response.headers.get('retry-after')) || 1;
        await sleep(Math.min(wait, 5) * 1000 * (0.75 + Math.random() / 2));
        continue;
      }
      const asOf = response.headers.get('x-data-as-of');
      const cache = response.headers.get('x-cache');
      const age = Number(response.headers.get('age') || 0);
      if (!response.ok) {
        let code = 'error';
        let message = `${response.status} ${response.statusText}`;
        try {
          const error = (await response.json()).error;
          code = error.code || code;
          message = error.message || message;
        } catch {
          /* not the JSON error shape */
        }
        // A refusal of a key already replaced (answers still in flight at sign-in) is old news.
        if (response.status === 401 && key === this.key) this.onUnauthorized(message);
        throw new ApiError(response.status, code, message);
      }
      if (asOf) this.onFreshness({ asOf, cache, age });
      const payload = csv ? await response.text() : await response.json();
      return { body: payload, asOf, cache, age };
    }
  }

  get(path, options) {
    return this.request(path, options);
  }

  post(path, body, options = {}) {
    return this.request(path, { ...options, body });
  }

  /** Fetches `path` as CSV (`format=csv`) and saves it as `filename`. */
  async download(path, filename) {
    const url = new URL(path, location.origin);
    url.searchParams.set('format', 'csv');
    const { body } = await this.request(url.pathname + url.search, { csv: true });
    const blob = new Blob([body], { type: 'text/csv' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = filename;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }
}

/**
 * Shows the sign-in form (a modal <dialog>) and resolves to the key entered. `role` only
 * changes the wording.
 */
export function signIn(role, message) {
  return new Promise((resolve) => {
    const dialog = document.getElementById('key-dialog');
    const form = dialog.querySelector('form');
    const input = dialog.querySelector('input');
    const note = dialog.querySelector('[data-note]');
    note.textContent =
      message ||
      (role === 'admin'
        ? 'The review tool needs an admin API key (altdata keys create --role admin).'
        : 'The dashboard needs an API key (altdata keys create --role analyst).');
    input.value = '';
    const onSubmit = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) {
        input.focus();
        return;
      }
      form.removeEventListener('submit', onSubmit);
      dialog.close();
      resolve(key);
    };
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', (e) => e.preventDefault(), { once: true });
    dialog.showModal();
    input.focus();
  });
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

const usd0 = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });
const usd2 = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
const count = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

/** A value in its unit: `usd` as dollars (cents when small), `count` as an integer. */
export function formatValue(value, unit) {
  if (value == null || Number.isNaN(value)) return '—';
  if (unit === 'usd') return Math.abs(value) < 1000 ? usd2.format(value) : usd0.format(value);
  return count.format(value);
}

/**
 * Why a value is missing, in an analyst's words (the API's `reason`, `current_reason`,
 * `growth_reason`); `k` is the answer's k-anonymity threshold.
 */
export function missingText(reason, k) {
  switch (reason) {
    case 'before_panel_start': return 'no data: before the panel starts';
    case 'after_last_delivery': return 'no data yet: after the last delivered day';
    case 'nothing_delivered': return 'no data delivered yet';
    case 'withheld': return `withheld: fewer than ${k ?? 'k'} customers`;
    case 'no_sales': return 'no sales';
    case 'no_customers': return 'no customers';
    case 'no_active_cards': return 'no active cards in the panel';
    case 'partial_period': return 'not comparable: a period is only partly covered by the data';
    case 'zero_base': return 'no growth: nothing in the previous period';
    default: return reason ? String(reason).replace(/_/g, ' ') : '';
  }
}

/** A value, or why there is none. */
export function valueOrWhy(value, reason, unit, k) {
  return value == null ? missingText(reason, k) || '—' : formatValue(value, unit);
}

/** Marks a promise as handled (its failure is reported where it is awaited, or not at all). */
export function quiet(promise) {
  promise.catch(() => {});
  return promise;
}

export function formatCompact(value, unit) {
  if (value == null) return '—';
  return (unit === 'usd' ? '$' : '') + compact.format(value);
}

/** A growth fraction as a signed percentage with one decimal: 0.0523 -> "+5.2%". */
export function formatGrowth(growth) {
  if (growth == null || Number.isNaN(growth)) return 'n/a';
  const pct = growth * 100;
  const text = Math.abs(pct).toFixed(1);
  if (text === '0.0') return '0.0%';
  return (pct > 0 ? '+' : '−') + text + '%';
}

export function formatAge(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return 'unknown';
  if (seconds < 5) return 'just now';
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

export function formatTimestamp(iso) {
  if (!iso) return 'no data yet';
  const d = new Date(iso);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function escapeHtml(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

export const CATEGORIES = [
  'coffee_shop', 'fast_food', 'restaurant', 'grocery', 'gas_station', 'rideshare', 'streaming',
  'ecommerce', 'pharmacy', 'general_merchandise', 'airline', 'hotel', 'utility', 'telecom',
  'software', 'apparel', 'home_improvement', 'entertainment', 'transit', 'other',
];

/** The catalogue's labels (schema/0001_core.sql), so the first paint needs no request. */
export const CATEGORY_LABELS = {
  coffee_shop: 'Coffee shops', fast_food: 'Fast food', restaurant: 'Restaurants', grocery: 'Grocery',
  gas_station: 'Gas stations', rideshare: 'Rideshare', streaming: 'Streaming', ecommerce: 'E-commerce',
  pharmacy: 'Pharmacy', general_merchandise: 'General merchandise', airline: 'Airlines', hotel: 'Hotels',
  utility: 'Utilities', telecom: 'Telecom', software: 'Software', apparel: 'Apparel',
  home_improvement: 'Home improvement', entertainment: 'Entertainment', transit: 'Transit', other: 'Other',
};

export function categoryLabel(category) {
  if (CATEGORY_LABELS[category]) return CATEGORY_LABELS[category];
  const text = String(category).replace(/_/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
