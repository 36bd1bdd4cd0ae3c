// The review tool (admin key): the unmapped queue ranked by spend at stake, suggestions with
// their reasons, assign / ignore / rule / undo, and the share of spend that is mapped.
//
// Safe by construction: ignoring asks first, with the spend at stake; a rule is previewed
// (what else it would catch) before it is saved; a decided group keeps its place in the list
// (a line saying what was done, with Undo), so the next click lands where the reviewer aims;
// an error appears beside the control that failed; every decision can be undone, and what an
// undo cannot take back is shown.
import './style.css';
import {
  CATEGORIES, Client, categoryLabel, dropKeyFromUrl, escapeHtml, forgetKeys, formatTimestamp,
  formatValue, signIn, storeKey, storedKey,
} from './api.js';
import { merchantCombobox } from './combobox.js';

const $ = (id) => document.getElementById(id);
const PAGE = 25;

let client;
let groups = []; // loaded groups, in rank order
let total = 0;
let partCounts = { review: 0, local: 0 }; // groups in each part of the queue
const selected = new Set();
let chosenMerchant = null; // from the catalogue search
let busy = false;

window.__altdataReview = { loads: 0, lastAssign: null, lastBulk: null, lastUndo: null };

async function start() {
  $('new-category').replaceChildren(...CATEGORIES.map((c) => new Option(categoryLabel(c), c)));
  dropKeyFromUrl();
  let key = storedKey('admin');
  if (!key) {
    key = await signIn('admin');
    storeKey('admin', key);
  }
  client = new Client(key, {
    onUnauthorized: async (message) => {
      if ($('key-dialog').open) return;
      storeKey('admin', null);
      client.key = await signIn('admin', `The key was refused: ${message}. Sign in with an admin key.`);
      storeKey('admin', client.key);
      reloadAll();
    },
  });
  wire();
  await reloadAll();
}

function wire() {
  $('reload').addEventListener('click', reloadAll);
  $('sign-out').addEventListener('click', async (event) => {
    event.preventDefault();
    forgetKeys();
    client.key = null;
    client.key = await signIn('admin', 'Signed out. Sign in with an admin API key.');
    storeKey('admin', client.key);
    reloadAll();
  });
  $('more').addEventListener('click', () => loadQueue(groups.length));
  $('queue-part').addEventListener('change', () => loadQueue(0));
  $('select-all').addEventListener('change', (e) => {
    for (const g of groups) {
      if (e.target.checked) selected.add(g.normalized_descriptor);
      else selected.delete(g.normalized_descriptor);
    }
    renderGroups();
  });
  for (const radio of document.querySelectorAll('input[name="target"]')) {
    radio.addEventListener('change', showTargetFields);
  }
  merchantCombobox({
    input: $('merchant-search'),
    list: $('merchant-options'),
    client: () => client,
    onError: showError,
    onChoose: (m) => {
      chosenMerchant = m;
      $('merchant-chosen').textContent = `Chosen: ${m.name} (${categoryLabel(m.category)}, #${m.id})`;
      updateSelection();
    },
  });
  $('decision').addEventListener('submit', (e) => {
    e.preventDefault();
    assignSelected();
  });
  $('ignore-selected').addEventListener('click', (e) => ignore([...selected], e.currentTarget));
}

/**
 * Asks before a decision: `lines` say what it does and what is at stake. Resolves true when
 * the reviewer confirms.
 */
function confirmDecision(title, lines, confirmLabel) {
  const dialog = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-body').replaceChildren(...lines.map((line) => Object.assign(document.createElement('p'), { textContent: line })));
  $('confirm-yes').textContent = confirmLabel;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    $('confirm-no').focus();
  });
}

/** An error beside the control that failed (the group's card, or the decision form). */
function errorBeside(control, error) {
  const home = control?.closest('article.group, form, section') || $('decision');
  let box = home.querySelector(':scope > .card-error');
  if (!box) {
    box = Object.assign(document.createElement('p'), { className: 'card-error' });
    box.setAttribute('role', 'alert');
    home.append(box);
  }
  box.textContent = `Not done: ${error.message || error}`;
  box.scrollIntoView({ block: 'nearest' });
}

function showTargetFields() {
  const target = document.querySelector('input[name="target"]:checked').value;
  for (const el of document.querySelectorAll('[data-target]')) el.hidden = el.dataset.target !== target;
  updateSelection();
}

function showError(error) {
  const box = $('error');
  if (!error) {
    box.hidden = true;
    return;
  }
  box.textContent = error.message || String(error);
  box.hidden = false;
}

async function reloadAll() {
  showError(null);
  await Promise.all([loadQueue(0), loadGauge(), loadAudit(), loadFailedFiles()]);
}

/** After a decision: the gauge and the decisions, not the queue (the list keeps its place). */
async function reloadProgress() {
  await Promise.all([loadGauge(), loadAudit()]);
}

async function loadQueue(offset) {
  if (offset === 0) decided.clear();
  try {
    const part = $('queue-part').value;
    const { body } = await client.get(`/v1/admin/review?part=${part}&limit=${PAGE}&offset=${offset}`, { fresh: true });
    groups = offset === 0 ? body.groups : [...groups, ...body.groups];
    total = body.total_groups;
    partCounts = { review: body.review_groups, local: body.local_groups };
    const known = new Set(groups.map((g) => g.normalized_descriptor));
    for (const d of [...selected]) if (!known.has(d)) selected.delete(d);
    renderGroups();
    window.__altdataReview.loads += 1;
    document.body.dataset.loaded = String(window.__altdataReview.loads);
  } catch (error) {
    showError(error);
  }
}

function candidatesOf(group) {
  return Array.isArray(group.candidates) ? group.candidates : [];
}

/** Decided groups, by descriptor: what was done, shown in the group's place until Reload. */
const decided = new Map();

function decidedCard(g) {
  const { text, audits } = decided.get(g.normalized_descriptor);
  const card = Object.assign(document.createElement('article'), { className: 'decided' });
  card.dataset.decided = g.normalized_descriptor;
  card.append(Object.assign(document.createElement('span'), { textContent: text }));
  if (audits?.length) {
    const button = Object.assign(document.createElement('button'), { type: 'button', className: 'small secondary', textContent: 'Undo' });
    button.setAttribute('aria-label', `Undo: ${text}`);
    button.addEventListener('click', () => undo(audits, button));
    card.append(' ', button);
  }
  return card;
}

/** "5411 (grocery) 80% · 5814 20%": a group's MCC mix or states, most rows first. */
function sharesText(shares) {
  const total = shares.reduce((a, s) => a + s.transactions, 0) || 1;
  return shares.map((s) => `${s.value || 'none'} ${Math.round((s.transactions / total) * 100)}%`).join(' · ');
}

function renderGroups() {
  const atStake = groups.reduce((a, g) => a + g.at_stake, 0);
  const local = $('queue-part').value === 'local';
  const waiting = `${partCounts.review} group${partCounts.review === 1 ? '' : 's'} need${partCounts.review === 1 ? 's' : ''} a person, ${partCounts.local} local shop${partCounts.local === 1 ? '' : 's'} counted in their category`;
  $('queue-summary').textContent = total
    ? `${waiting}; the ${groups.length} shown hold ${formatValue(atStake, 'usd')} at stake`
    : local
      ? `${waiting}; no local shops are held.`
      : partCounts.local
        ? `${waiting}; nothing needs a person.`
        : 'The queue is empty: every descriptor is mapped or ignored.';
  $('more').hidden = groups.length >= total;
  $('pager-note').textContent = total ? `${groups.length} of ${total} shown` : '';
  const container = $('groups');
  container.replaceChildren(
    ...groups.map((g, index) => {
      if (decided.has(g.normalized_descriptor)) return decidedCard(g);
      const card = document.createElement('article');
      card.className = 'group' + (selected.has(g.normalized_descriptor) ? ' selected' : '');
      card.dataset.descriptor = g.normalized_descriptor;
      const id = `g${index}`;
      const candidates = candidatesOf(g);
      card.setAttribute('aria-labelledby', `${id}-title`);
      card.innerHTML = `
        <div class="group-head">
          <input type="checkbox" id="${id}-check" ${selected.has(g.normalized_descriptor) ? 'checked' : ''}
                 aria-label="Select ${escapeHtml(g.normalized_descriptor)}" />
          <div>
            <h3 class="group-title" id="${id}-title">${g.normalized_descriptor ? escapeHtml(g.normalized_descriptor) : '<span class="muted">(empty after normalisation: cannot be assigned)</span>'}</h3>
            <div class="group-stats">
              <span><strong>${formatValue(g.at_stake, 'usd')}</strong> at stake</span>
              <span><strong>${g.transactions.toLocaleString('en-US')}</strong> transactions</span>
              <span>net ${formatValue(g.net_spend, 'usd')}</span>
              <span>${g.first_date} – ${g.last_date}</span>
            </div>
            <p class="counted small">${g.counted_category
              ? `Counts meanwhile in <strong>${escapeHtml(categoryLabel(g.counted_category))}</strong> (${formatValue(g.counted_net_spend, 'usd')}); assigning moves it to the brand.`
              : '<span class="muted">Counted nowhere until assigned (category unknown).</span>'}</p>
          </div>
        </div>
        <dl class="group-facts small">
          <div><dt>MCC mix</dt><dd data-mcc>${escapeHtml(sharesText(g.mcc_mix ?? [])) || '—'}</dd></div>
          <div><dt>States</dt><dd data-states>${escapeHtml(sharesText(g.states ?? [])) || '—'}</dd></div>
        </dl>
        <ul class="samples" aria-label="Raw descriptors as sent">${g.samples.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>
        ${g.near_tie ? '<p class="tie small" data-near-tie><strong>Tie:</strong> the two best suggestions score about the same; the name alone does not decide. Check the MCC mix and states.</p>' : ''}
        ${candidates.length
          ? `<ul class="suggestions" aria-label="Suggestions">${candidates
              .map(
                (c, ci) => `<li>
                  <div class="sugg-main"><span class="score" title="resolver score">${Math.round((c.score ?? 0) * 100)}%</span>${g.near_tie && ci < 2 ? ' <span class="tie-badge">tie</span>' : ''}
                  <strong>${escapeHtml(c.name)}</strong> <span class="muted small">${escapeHtml(categoryLabel(c.category || 'other'))} · #${c.merchant_id}</span></div>
                  <div class="why">${escapeHtml(c.why || '')}</div>
                  <div class="sugg-actions">
                    <button type="button" class="small" data-assign="${ci}" aria-label="Assign ${escapeHtml(g.normalized_descriptor)} to ${escapeHtml(c.name)}">Assign</button>
                    <button type="button" class="small secondary" data-rule="${ci}" aria-label="Assign + rule: ${escapeHtml(g.normalized_descriptor)} to ${escapeHtml(c.name)}, with a prefix rule" title="Assign, and add a prefix rule so future descriptors starting this way map to ${escapeHtml(c.name)}">Assign + rule</button>
                  </div>
                </li>`,
              )
              .join('')}</ul>`
          : '<p class="muted small">No suggestion: search the catalogue or create a merchant.</p>'}
        <div class="group-actions">
          <button type="button" class="small secondary" data-action="choose">Assign to another merchant…</button>
          <button type="button" class="small danger" data-action="ignore">Ignore</button>
        </div>`;
      const check = card.querySelector('input[type="checkbox"]');
      check.addEventListener('change', () => {
        if (check.checked) selected.add(g.normalized_descriptor);
        else selected.delete(g.normalized_descriptor);
        card.classList.toggle('selected', check.checked);
        updateSelection();
      });
      card.querySelectorAll('[data-assign]').forEach((button) =>
        button.addEventListener('click', () => {
          const c = candidates[Number(button.dataset.assign)];
          assign([g.normalized_descriptor], { merchant_id: c.merchant_id }, c.name, false, { control: button });
        }),
      );
      card.querySelectorAll('[data-rule]').forEach((button) =>
        button.addEventListener('click', () => {
          const c = candidates[Number(button.dataset.rule)];
          assign([g.normalized_descriptor], { merchant_id: c.merchant_id }, c.name, true, { control: button });
        }),
      );
      card.querySelector('[data-action="ignore"]').addEventListener('click', (e) => ignore([g.normalized_descriptor], e.currentTarget));
      card.querySelector('[data-action="choose"]').addEventListener('click', () => {
        selected.clear();
        selected.add(g.normalized_descriptor);
        renderGroups();
        document.querySelector('input[name="target"][value="search"]').checked = true;
        showTargetFields();
        $('merchant-search').focus();
      });
      return card;
    }),
  );
  updateSelection();
}

function target() {
  return document.querySelector('input[name="target"]:checked').value;
}

function updateSelection() {
  const n = selected.size;
  const t = target();
  let ready = n > 0 && !busy;
  if (t === 'search') ready &&= !!chosenMerchant;
  if (t === 'new') ready &&= $('new-name').value.trim().length > 0;
  let note = n ? `${n} group${n === 1 ? '' : 's'} selected.` : 'Select groups in the queue (or use a suggestion’s Assign button).';
  if (t === 'suggested' && n) {
    const { eligible } = bestSuggestions([...selected]);
    ready &&= eligible.length > 0;
    note += ` ${eligible.length} of them ha${eligible.length === 1 ? 's' : 've'} a suggestion scoring at least ${minScore()}%.`;
  }
  $('assign-selected').disabled = !ready;
  $('ignore-selected').disabled = n === 0 || busy;
  $('selection-note').textContent = note;
  $('assign-why').textContent = ready ? '' : whyNotReady(n, t);
}

/** Why "Assign selected" is disabled, beside it. */
function whyNotReady(n, t) {
  if (busy) return 'Wait: a decision is being saved.';
  if (!n) return 'Disabled: select at least one group.';
  if (t === 'search' && !chosenMerchant) return 'Disabled: choose a merchant from the catalogue first.';
  if (t === 'new' && !$('new-name').value.trim()) return 'Disabled: give the new merchant a name.';
  if (t === 'suggested') return `Disabled: no selected group has a suggestion scoring at least ${minScore()}%.`;
  return '';
}
document.addEventListener('input', (e) => ['new-name', 'min-score'].includes(e.target.id) && updateSelection());

/** The threshold, in percent, a best suggestion must reach to be assigned in bulk. */
function minScore() {
  const value = Number($('min-score').value);
  return Number.isFinite(value) ? Math.min(100, Math.max(0, value)) : 90;
}

/** Selected groups whose best suggestion scores at least the threshold, and the others. */
function bestSuggestions(descriptors) {
  const eligible = [];
  const skipped = [];
  for (const d of descriptors) {
    const best = candidatesOf(groups.find((g) => g.normalized_descriptor === d) || {})[0];
    if (best && Math.round((best.score ?? 0) * 100) >= minScore()) eligible.push({ descriptor: d, best });
    else skipped.push(d);
  }
  return { eligible, skipped };
}

async function assignSelected() {
  const descriptors = [...selected];
  const rule = $('add-rule').checked;
  const t = target();
  const control = $('assign-selected');
  if (t === 'search') return assign(descriptors, { merchant_id: chosenMerchant.id }, chosenMerchant.name, rule, { control });
  if (t === 'new') {
    const name = $('new-name').value.trim();
    const body = { new_merchant: { name, category: $('new-category').value } };
    const ticker = $('new-ticker').value.trim();
    if (ticker) body.new_merchant.ticker_symbol = ticker;
    return assign(descriptors, body, name, rule, { control });
  }
  // Each group to its own best suggestion when it scores at least the threshold: one
  // request per merchant. The others stay selected.
  const { eligible, skipped } = bestSuggestions(descriptors);
  const byMerchant = new Map();
  for (const { descriptor, best } of eligible) {
    if (!byMerchant.has(best.merchant_id)) byMerchant.set(best.merchant_id, { name: best.name, descriptors: [] });
    byMerchant.get(best.merchant_id).descriptors.push(descriptor);
  }
  const outcomes = [];
  for (const [merchantId, { name, descriptors: list }] of byMerchant) {
    const outcome = await assign(list, { merchant_id: merchantId }, name, rule, { quiet: true, control });
    if (!outcome) break;
    outcomes.push(outcome);
  }
  if (outcomes.length) {
    const txns = outcomes.reduce((a, o) => a + o.transactions, 0);
    const audits = outcomes.flatMap((o) => o.descriptors.map((d) => d.audit_id));
    const assigned = outcomes.reduce((a, o) => a + o.descriptors.length, 0);
    window.__altdataReview.lastBulk = { audits, skipped, assigned };
    const below = skipped.length ? ` ${skipped.length} below ${minScore()}% stay selected.` : '';
    toast(`Assigned ${assigned} groups (${txns} transactions) to their best suggestions (at least ${minScore()}%).${below}`, audits);
  }
}

/**
 * The preview of each descriptor's prefix rule (POST /v1/admin/rules/preview) and the
 * reviewer's answer: true to save the rules, false to assign without them, null to do nothing.
 */
async function confirmRules(descriptors, merchantId, name) {
  const lines = [];
  for (const d of descriptors) {
    const { body: p } = await client.post('/v1/admin/rules/preview', { kind: 'prefix', pattern: d, merchant_id: merchantId });
    const others = p.examples.filter((e) => !descriptors.includes(e.normalized_descriptor));
    lines.push(
      `A rule for descriptors starting “${p.matches}” would resolve ${p.pending_groups} waiting group${p.pending_groups === 1 ? '' : 's'} ` +
      `(${p.pending_transactions} transactions, ${formatValue(p.pending_net_spend, 'usd')} net) to ${name}` +
      (others.length ? `, among them ${others.slice(0, 5).map((e) => e.normalized_descriptor).join(', ')}.` : ': only this one.'),
    );
    if (p.reroutes_brands.length) {
      lines.push(`It would also take from their brands everything named ${p.reroutes_brands.map((b) => `${b.matched_name} (${b.name})`).join(', ')}.`);
    }
    if (p.aliases_kept) lines.push(`${p.aliases_kept} descriptor(s) mapped by hand keep their merchant.`);
  }
  return confirmDecision(`Save ${descriptors.length === 1 ? 'this rule' : `${descriptors.length} rules`}?`, lines, 'Assign and save the rule');
}

/** POST /v1/admin/review/assign (then /v1/admin/rules when asked); returns the answer. */
async function assign(descriptors, target, name, rule, { quiet = false, control = null } = {}) {
  if (!descriptors.length) return null;
  try {
    if (rule && target.merchant_id && !(await confirmRules(descriptors, target.merchant_id, name))) return null;
  } catch (error) {
    errorBeside(control, error);
    return null;
  }
  setBusy(true, `Assigning ${descriptors.length} group${descriptors.length === 1 ? '' : 's'} to ${name}…`);
  try {
    const { body } = await client.post('/v1/admin/review/assign', { normalized_descriptors: descriptors, ...target });
    window.__altdataReview.lastAssign = body;
    const notes = [];
    const audits = body.descriptors.map((d) => d.audit_id);
    if (rule) {
      for (const d of descriptors) {
        try {
          const { body: saved } = await client.post('/v1/admin/rules', { kind: 'prefix', pattern: d, merchant_id: body.merchant_id });
          audits.push(saved.audit_id);
        } catch (error) {
          notes.push(`rule for ${d}: ${error.message}`);
        }
      }
    }
    for (const d of descriptors) selected.delete(d);
    for (const d of body.descriptors) {
      decided.set(d.normalized_descriptor, { text: `Assigned ${d.normalized_descriptor} to ${name}${rule ? ' (with a rule)' : ''}.`, audits: [d.audit_id] });
    }
    const message =
      `Assigned ${descriptors.length} group${descriptors.length === 1 ? '' : 's'} (${body.transactions} transactions, ` +
      `${formatValue(body.net_spend, 'usd')} net) to ${name}${body.merchant_created ? ' (new merchant #' + body.merchant_id + ')' : ''}` +
      `${rule ? ', with prefix rules' : ''}.${notes.length ? ' ' + notes.join('; ') : ''}`;
    if (!quiet) toast(message, audits, body.merchant_id);
    $('decision-status').textContent = message;
    renderGroups();
    await reloadProgress();
    return body;
  } catch (error) {
    errorBeside(control, error);
    return null;
  } finally {
    setBusy(false);
  }
}

async function ignore(descriptors, control) {
  if (!descriptors.length) return;
  const chosen = groups.filter((g) => descriptors.includes(g.normalized_descriptor));
  const atStake = chosen.reduce((a, g) => a + g.at_stake, 0);
  const transactions = chosen.reduce((a, g) => a + g.transactions, 0);
  const what = descriptors.length === 1 ? `“${descriptors[0]}”` : `${descriptors.length} groups`;
  const sure = await confirmDecision(`Ignore ${what}?`, [
    `${formatValue(atStake, 'usd')} at stake (${transactions.toLocaleString('en-US')} transactions) will be counted in no brand and leave the queue.`,
    'You can undo it from Recent decisions.',
  ], 'Ignore');
  if (!sure) return;
  setBusy(true, `Ignoring ${descriptors.length} group(s)…`);
  try {
    const { body } = await client.post('/v1/admin/review/ignore', { normalized_descriptors: descriptors });
    for (const d of descriptors) selected.delete(d);
    const message = `Ignored ${what} (${body.transactions} transactions).`;
    descriptors.forEach((d, i) => decided.set(d, { text: `Ignored ${d}.`, audits: body.audit_ids?.[i] ? [body.audit_ids[i]] : [] }));
    toast(message, body.audit_ids);
    $('decision-status').textContent = message;
    renderGroups();
    await reloadProgress();
  } catch (error) {
    errorBeside(control, error);
  } finally {
    setBusy(false);
  }
}

async function undo(auditIds, control = null) {
  setBusy(true, 'Undoing…');
  try {
    let transactions = 0;
    const notes = new Set();
    for (const id of auditIds) {
      const { body } = await client.post('/v1/admin/review/undo', { audit_id: id });
      transactions += body.transactions;
      if (body.note) notes.add(body.note);
    }
    // What the undo could not take back (customer counts, a rule already applied) is shown
    // until the reviewer closes it, not in a toast that fades.
    const message = `Undone: ${transactions} transactions are back in the queue.`;
    toast(message);
    $('decision-status').textContent = message;
    $('undo-notes').replaceChildren(...[...notes].map((n) => Object.assign(document.createElement('li'), { textContent: n })));
    $('undo-warning').hidden = notes.size === 0;
    window.__altdataReview.lastUndo = [...notes];
    await reloadAll();
  } catch (error) {
    errorBeside(control, error);
  } finally {
    setBusy(false);
  }
}

function setBusy(value, message) {
  busy = value;
  document.body.classList.toggle('loading', value);
  if (message) $('decision-status').textContent = message;
  updateSelection();
}

let toastTimer = null;
function toast(message, auditIds = null, merchantId = null) {
  const box = $('toast');
  box.replaceChildren(Object.assign(document.createElement('span'), { textContent: message }));
  if (auditIds?.length) {
    const label = auditIds.length > 1 ? `Undo all ${auditIds.length}` : 'Undo';
    const button = Object.assign(document.createElement('button'), { type: 'button', textContent: label, className: 'small', id: 'toast-undo' });
    button.addEventListener('click', () => {
      box.hidden = true;
      undo(auditIds);
    });
    box.append(button);
  }
  if (merchantId) {
    const link = Object.assign(document.createElement('a'), { href: `/?merchant=${merchantId}&state=&granularity=day`, textContent: 'Open in dashboard' });
    link.style.color = '#9cc3ff';
    box.append(link);
  }
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), 12000);
}

async function loadGauge() {
  try {
    const { body } = await client.get('/v1/admin/mapped-share', { fresh: true });
    const share = body.mapped_share;
    const pct = share == null ? null : share * 100;
    $('mapped-share').textContent = pct == null ? 'n/a' : `${pct.toFixed(2)}%`;
    $('mapped-share').dataset.value = share ?? '';
    $('gauge').setAttribute('aria-valuenow', pct == null ? '0' : pct.toFixed(2));
    $('gauge').setAttribute('aria-valuetext', pct == null ? 'no spend yet' : `${pct.toFixed(2)} percent of net spend is mapped`);
    $('gauge-arc').setAttribute('stroke-dasharray', `${pct ?? 0} 100`);
    const attributed = body.attributed_share;
    $('attributed-share').textContent = attributed == null ? 'n/a' : `${(attributed * 100).toFixed(2)}%`;
    $('attributed-share').dataset.value = attributed ?? '';
    $('gauge-detail').textContent =
      `${body.range.from} – ${body.range.to}: ${formatValue(body.named_net_spend, 'usd')} at named brands, ` +
      `${formatValue(body.unattributed_net_spend, 'usd')} counted by category while waiting, ` +
      `${formatValue(body.held_only_net_spend, 'usd')} held only; ` +
      `${body.unmapped_transactions.toLocaleString('en-US')} transactions wait for review.`;
  } catch (error) {
    $('gauge-detail').textContent = `Unavailable: ${error.message}`;
  }
}

async function loadAudit() {
  try {
    const { body } = await client.get('/v1/admin/audit?limit=12', { fresh: true });
    $('audit').replaceChildren(
      ...body.entries.map((e) => {
        const li = document.createElement('li');
        const what = e.action === 'assign'
          ? `assigned ${e.normalized_descriptor} → #${e.merchant_id}`
          : e.action === 'ignore'
            ? `ignored ${e.normalized_descriptor}`
            : e.action === 'rule'
              ? `rule ${e.detail?.kind ?? ''} “${e.detail?.pattern ?? ''}” → #${e.merchant_id}`
              : `${e.action} ${e.normalized_descriptor ?? ''}`;
        li.innerHTML = `<span><span>${escapeHtml(what)}</span><br /><span class="muted small">${escapeHtml(e.actor)} · ${formatTimestamp(e.created_at)}${e.undone_at ? ' · undone' : ''}</span></span>`;
        if (['assign', 'ignore', 'rule'].includes(e.action) && !e.undone_at) {
          const button = Object.assign(document.createElement('button'), { type: 'button', className: 'small secondary', textContent: 'Undo' });
          button.setAttribute('aria-label', `Undo: ${what}`);
          button.dataset.undo = e.id;
          button.addEventListener('click', () => undo([e.id], button));
          li.append(button);
        }
        return li;
      }),
    );
    if (!body.entries.length) $('audit').innerHTML = '<li class="muted">No decision yet.</li>';
  } catch (error) {
    $('audit').innerHTML = `<li class="muted">Unavailable: ${escapeHtml(error.message)}</li>`;
  }
}

/** Provider files ingest marked failed, with why: `altdata ingest --retry-failed` tries them again. */
async function loadFailedFiles() {
  try {
    const { body } = await client.get('/v1/admin/files?status=failed&limit=12', { fresh: true });
    $('failed-files').replaceChildren(
      ...body.files.map((f) => {
        const li = document.createElement('li');
        li.innerHTML = `<span><span>${escapeHtml(f.path)}</span><br /><span class="muted small">${escapeHtml(f.error ?? '')} · ${f.rows_read.toLocaleString('en-US')} rows read · ${formatTimestamp(f.finished_at ?? f.started_at)}</span></span>`;
        return li;
      }),
    );
    if (!body.files.length) $('failed-files').innerHTML = '<li class="muted">None.</li>';
  } catch (error) {
    $('failed-files').innerHTML = `<li class="muted">Unavailable: ${escapeHtml(error.message)}</li>`;
  }
}

start().catch(showError);
