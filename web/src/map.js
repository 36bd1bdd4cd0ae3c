// The US map (lazily loaded): states coloured by growth or by value, each a keyboard-focusable
// toggle button that adds the state to (or removes it from) the filter.
import { STATES, WIDTH, HEIGHT, BORDERS } from 'virtual:us-states';
import { formatGrowth, formatValue } from './api.js';

const SVG = 'http://www.w3.org/2000/svg';
// Diverging (growth) and sequential (value) palettes; colour-blind safe (ColorBrewer PuOr / Blues).
const DIVERGING = ['#b35806', '#e08214', '#fdb863', '#fee0b6', '#f7f7f7', '#d8daeb', '#b2abd2', '#8073ac', '#542788'];
const SEQUENTIAL = ['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'];
const NO_DATA = '#e4e4e4';

export function createMap(container, legend, { onToggle }) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('role', 'group');
  svg.setAttribute('aria-label', 'United States by state');
  svg.classList.add('us-map');
  const paths = new Map();
  for (const state of STATES) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', state.d);
    path.setAttribute('tabindex', '0');
    path.setAttribute('role', 'button');
    path.setAttribute('aria-pressed', 'false');
    path.dataset.state = state.code;
    path.classList.add('state');
    const title = document.createElementNS(SVG, 'title');
    title.textContent = state.name;
    path.append(title);
    const toggle = (event) => {
      event.preventDefault();
      onToggle(state.code);
    };
    path.addEventListener('click', toggle);
    path.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') toggle(event);
    });
    svg.append(path);
    paths.set(state.code, { path, title, state });
  }
  const borders = document.createElementNS(SVG, 'path');
  borders.setAttribute('d', BORDERS);
  borders.setAttribute('class', 'borders');
  borders.setAttribute('aria-hidden', 'true');
  svg.append(borders);
  // Labels for the larger states.
  for (const state of STATES) {
    if (state.area < 2500) continue;
    const text = document.createElementNS(SVG, 'text');
    text.setAttribute('x', state.cx);
    text.setAttribute('y', state.cy);
    text.setAttribute('aria-hidden', 'true');
    text.textContent = state.code;
    text.classList.add('label');
    svg.append(text);
  }
  container.replaceChildren(svg);

  return {
    /** values: Map code -> {growth, current, unit, suppressed}; mode growth|value. */
    update({ values, mode, selected, unit }) {
      const numbers = [];
      for (const v of values.values()) {
        const x = mode === 'growth' ? v.growth : v.current;
        if (x != null) numbers.push(x);
      }
      let scale;
      if (mode === 'growth') {
        const extent = Math.max(0.01, ...numbers.map(Math.abs));
        scale = (x) => DIVERGING[Math.max(0, Math.min(8, Math.round(((x / extent) + 1) * 4)))];
        legend.replaceChildren(...legendItems(DIVERGING, formatGrowth(-extent), formatGrowth(extent)));
      } else {
        const max = Math.max(1e-9, ...numbers);
        scale = (x) => SEQUENTIAL[Math.max(0, Math.min(8, Math.round(Math.sqrt(Math.max(0, x) / max) * 8)))];
        legend.replaceChildren(...legendItems(SEQUENTIAL, formatValue(0, unit), formatValue(numbers.length ? max : null, unit)));
      }
      for (const [code, { path, title, state }] of paths) {
        const v = values.get(code);
        const x = v ? (mode === 'growth' ? v.growth : v.current) : null;
        path.style.fill = x == null ? NO_DATA : scale(x);
        const on = selected.includes(code);
        path.setAttribute('aria-pressed', String(on));
        path.classList.toggle('selected', on);
        const detail = !v
          ? 'loading'
          : v.error
            ? 'no answer'
            : v.suppressed
              ? 'withheld: too few customers'
              : `${formatValue(v.current, unit)}, ${v.growth == null && v.why ? `growth n/a (${v.why})` : formatGrowth(v.growth)}`;
        title.textContent = `${state.name}: ${detail}${on ? ' (selected)' : ''}`;
        path.setAttribute('aria-label', title.textContent);
      }
    },
  };
}

/**
 * The legend's labels and colour swatches, made as elements: the page's content security
 * policy refuses `style="…"` attributes, but not styles set through the DOM.
 */
function legendItems(colors, low, high) {
  const text = (value) => Object.assign(document.createElement('span'), { textContent: value });
  const swatch = (color, className) => {
    const i = document.createElement('i');
    i.style.background = color;
    if (className) i.className = className;
    return i;
  };
  return [text(low), ...colors.map((c) => swatch(c)), text(high), swatch(NO_DATA, 'nodata'), text('no data')];
}
