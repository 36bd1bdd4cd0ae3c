// Merchant search (GET /v1/merchants?q=) as an ARIA combobox: type, arrow through the
// listbox, Enter (or click) to choose, Escape to close.
import { categoryLabel, escapeHtml } from './api.js';

export function merchantCombobox({ input, list, client, onChoose, onError, limit = 8 }) {
  let timer = null;
  let active = -1;
  let results = [];
  let seq = 0;
  const close = () => {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  };
  const highlight = (index) => {
    active = index;
    [...list.children].forEach((li, i) => li.setAttribute('aria-selected', String(i === index)));
    const li = list.children[index];
    if (index >= 0 && li) {
      input.setAttribute('aria-activedescendant', li.id);
      li.scrollIntoView({ block: 'nearest' });
    }
  };
  const choose = (merchant) => {
    close();
    input.value = '';
    onChoose(merchant);
  };
  const search = async () => {
    const q = input.value.trim();
    if (!q) return close();
    const mine = ++seq;
    try {
      const { body } = await client().get(`/v1/merchants?q=${encodeURIComponent(q)}&limit=${limit}`);
      if (mine !== seq) return;
      results = body.merchants;
      const items = results.map((m, i) => {
        const li = document.createElement('li');
        li.id = `${list.id}-${i}`;
        li.setAttribute('role', 'option');
        li.setAttribute('aria-selected', 'false');
        li.dataset.merchant = m.id;
        li.innerHTML = `${escapeHtml(m.name)} <span class="muted small">${escapeHtml(categoryLabel(m.category))}${m.brand_id ? ' · ' + escapeHtml(m.brand_id) : ''} · #${m.id}</span>`;
        li.addEventListener('mousedown', (e) => e.preventDefault());
        li.addEventListener('click', () => choose(m));
        return li;
      });
      if (!items.length) {
        const li = document.createElement('li');
        li.className = 'muted';
        li.textContent = 'No merchant matches';
        items.push(li);
      }
      list.replaceChildren(...items);
      list.hidden = false;
      input.setAttribute('aria-expanded', 'true');
      highlight(results.length ? 0 : -1);
    } catch (error) {
      onError?.(error);
    }
  };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(search, 180);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      if (list.hidden) search();
      else if (results.length) highlight(Math.min(results.length - 1, active + 1));
    } else if (e.key === 'ArrowUp' && results.length) {
      e.preventDefault();
      highlight(Math.max(0, active - 1));
    } else if (e.key === 'Enter') {
      e.preventDefault();
      if (!list.hidden && active >= 0 && results[active]) choose(results[active]);
      else search();
    } else if (e.key === 'Escape' && !list.hidden) {
      e.preventDefault();
      close();
    }
  });
  input.addEventListener('blur', () => setTimeout(close, 150));
  return { close };
}
