// The dashboard's whole state lives in the query string, so a view can be shared by its URL.
//
//   ?metric=spend&category=coffee_shop&state=CA&granularity=week&from=…&to=…&period=wow
//    &as_of=…&map=growth&top=growth&dir=up&floor=100[&cmp=0]
//
// Subject: `category=`, `merchant=<id>`, `brand=<id>` or `scope=all`. Parameter names follow
// the API's, so a URL reads like the request behind it.

export const METRICS = [
  'spend', 'gross', 'refunds', 'transactions', 'customers', 'avg_ticket', 'spend_per_customer',
  'transactions_per_customer',
];
export const GRANULARITIES = ['day', 'week', 'month', 'quarter'];
export const PERIODS = ['wow', 'mom', 'yoy', 'month', 'quarter'];
export const STATES = [
  'AL', 'AK', 'AZ', 'AR', 'CA', 'CO', 'CT', 'DE', 'FL', 'GA', 'HI', 'ID', 'IL', 'IN', 'IA', 'KS',
  'KY', 'LA', 'ME', 'MD', 'MA', 'MI', 'MN', 'MS', 'MO', 'MT', 'NE', 'NV', 'NH', 'NJ', 'NM', 'NY',
  'NC', 'ND', 'OH', 'OK', 'OR', 'PA', 'RI', 'SC', 'SD', 'TN', 'TX', 'UT', 'VT', 'VA', 'WA', 'WV',
  'WI', 'WY', 'DC', 'PR', 'GU', 'VI', 'AS', 'MP',
];
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export function isoDate(date) {
  return date.toISOString().slice(0, 10);
}

export function addDays(iso, days) {
  const d = new Date(iso + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() + days);
  return isoDate(d);
}

export function addMonths(iso, months) {
  const d = new Date(iso + 'T00:00:00Z');
  d.setUTCMonth(d.getUTCMonth() + months);
  return isoDate(d);
}

/** Yesterday (UTC): the API's default end of a growth period and our default range end. */
export function yesterday() {
  return addDays(isoDate(new Date()), -1);
}

export function defaultFrom(granularity, to) {
  if (granularity === 'day') return addDays(to, -34);
  if (granularity === 'month') return addMonths(to, -12);
  if (granularity === 'quarter') return addMonths(to, -24);
  return addDays(to, -7 * 12 + 1);
}

export function parseStates(text) {
  const states = [];
  const bad = [];
  for (const part of String(text || '').split(/[\s,;]+/)) {
    const code = part.trim().toUpperCase();
    if (!code) continue;
    if (STATES.includes(code)) {
      if (!states.includes(code)) states.push(code);
    } else bad.push(part);
  }
  states.sort();
  return { states, bad };
}

export function readState(search = location.search) {
  const p = new URLSearchParams(search);
  const pick = (name, allowed, fallback) => (allowed.includes(p.get(name)) ? p.get(name) : fallback);
  const state = {
    metric: pick('metric', METRICS, 'spend'),
    scope: 'category',
    category: 'coffee_shop',
    merchant: null,
    brand: null,
    states: p.has('state') ? parseStates(p.get('state')).states : ['CA'],
    granularity: pick('granularity', GRANULARITIES, 'week'),
    period: pick('period', PERIODS, 'wow'),
    to: DATE.test(p.get('to') || '') ? p.get('to') : null,
    from: DATE.test(p.get('from') || '') ? p.get('from') : null,
    asOf: DATE.test(p.get('as_of') || '') ? p.get('as_of') : null,
    map: pick('map', ['growth', 'value'], 'growth'),
    top: pick('top', ['growth', 'spend'], 'growth'),
    topDirection: pick('dir', ['up', 'down'], 'up'),
    // The size floor of top movers, in dollars of the base period (a setting, shown).
    minSpend: /^\d{1,9}$/.test(p.get('floor') || '') ? Number(p.get('floor')) : 100,
    comparison: p.get('cmp') !== '0',
  };
  if (/^\d+$/.test(p.get('merchant') || '')) {
    state.scope = 'merchant';
    state.merchant = Number(p.get('merchant'));
  } else if (/^[A-Za-z0-9_.-]{1,64}$/.test(p.get('brand') || '')) {
    state.scope = 'brand';
    state.brand = p.get('brand');
  } else if (p.get('scope') === 'all') {
    state.scope = 'all';
  } else if (p.get('category')) {
    state.category = p.get('category');
  }
  state.to ||= yesterday();
  state.asOf ||= state.to;
  state.from ||= defaultFrom(state.granularity, state.to);
  if (state.from > state.to) state.from = defaultFrom(state.granularity, state.to);
  return state;
}

/** The query string of a state (always complete, so the link means the same view tomorrow). */
export function stateToSearch(state) {
  const p = new URLSearchParams();
  p.set('metric', state.metric);
  if (state.scope === 'category') p.set('category', state.category);
  else if (state.scope === 'merchant' && state.merchant) p.set('merchant', String(state.merchant));
  else if (state.scope === 'brand' && state.brand) p.set('brand', state.brand);
  else p.set('scope', 'all');
  p.set('state', state.states.join(','));
  p.set('granularity', state.granularity);
  p.set('from', state.from);
  p.set('to', state.to);
  p.set('period', state.period);
  p.set('as_of', state.asOf);
  p.set('map', state.map);
  p.set('top', state.top);
  p.set('dir', state.topDirection);
  p.set('floor', String(state.minSpend));
  if (!state.comparison) p.set('cmp', '0');
  return '?' + p.toString().replace(/%2C/g, ',');
}

/** The subject parameters of an API request. */
export function subjectParams(state, p = new URLSearchParams()) {
  if (state.scope === 'category') p.set('category', state.category);
  else if (state.scope === 'merchant' && state.merchant) p.set('merchant', String(state.merchant));
  else if (state.scope === 'brand' && state.brand) p.set('brand', state.brand);
  return p;
}

function withStates(p, states) {
  if (states.length) p.set('state', states.join(','));
  return p;
}

const query = (p) => p.toString().replace(/%2C/g, ',');

export function timeseriesPath(state, from = state.from, to = state.to) {
  const p = subjectParams(state);
  p.set('metric', state.metric);
  withStates(p, state.states);
  p.set('granularity', state.granularity);
  p.set('from', from);
  p.set('to', to);
  return '/v1/timeseries?' + query(p);
}

/** Changes (corrections, retractions, review decisions) to the view's days, recorded in the
 * last year: what the chart marks as restated. */
export function changesPath(state) {
  const p = subjectParams(state);
  withStates(p, state.states);
  p.set('from', state.from);
  p.set('to', state.to);
  p.set('since', addDays(state.to, -365));
  p.set('limit', '500');
  return '/v1/changes?' + query(p);
}

/** The first day of the period (day, Monday week, month) holding `iso`. */
export function periodStartOf(iso, granularity) {
  if (granularity === 'day') return iso;
  if (granularity === 'month') return iso.slice(0, 8) + '01';
  if (granularity === 'quarter') {
    const month = Math.floor((Number(iso.slice(5, 7)) - 1) / 3) * 3 + 1;
    return `${iso.slice(0, 4)}-${String(month).padStart(2, '0')}-01`;
  }
  const weekday = (new Date(iso + 'T00:00:00Z').getUTCDay() + 6) % 7;
  return addDays(iso, -weekday);
}

export function growthPath(state, period = state.period, states = state.states) {
  const p = subjectParams(state);
  p.set('metric', state.metric);
  withStates(p, states);
  p.set('period', period);
  p.set('as_of', state.asOf);
  return '/v1/growth?' + query(p);
}

/** Growth of the view's subject for every state at once (the map); no `state` filter. */
export function growthByStatePath(state, period = state.period) {
  const p = subjectParams(state);
  p.set('metric', state.metric);
  p.set('period', period);
  p.set('as_of', state.asOf);
  return '/v1/growth/states?' + query(p);
}

export function topPath(state, category) {
  const p = new URLSearchParams();
  if (category) p.set('category', category);
  withStates(p, state.states);
  p.set('by', state.top);
  p.set('direction', state.topDirection);
  p.set('min_spend', String(state.minSpend));
  p.set('period', state.period);
  p.set('as_of', state.asOf);
  p.set('limit', '10');
  return '/v1/top?' + query(p);
}

/** How far back the comparison series is shifted, per growth period and granularity. */
export function comparisonShift(state) {
  if (state.granularity === 'month' || state.granularity === 'quarter' || state.period === 'month' || state.period === 'quarter') {
    if (state.period === 'yoy') return { months: 12 };
    return { months: state.period === 'quarter' || state.granularity === 'quarter' ? 3 : 1 };
  }
  return { days: { wow: 7, mom: 28, yoy: 364 }[state.period] };
}

export function shiftDate(iso, shift, sign = -1) {
  return shift.months ? addMonths(iso, sign * shift.months) : addDays(iso, sign * shift.days);
}
