// Small DOM helpers. Everything the API returns goes into the page as text nodes (never as HTML),
// so a hostile string in a lane name or a purpose cannot become markup; the CSP forbids inline
// script besides.

const SVG_NS = 'http://www.w3.org/2000/svg';

// el('p', {class: 'note'}, 'text', child, ...) -> an element.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  append(node, children);
  return node;
}

export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attributes);
  append(node, children);
  return node;
}

function setAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Times: the API's *_micros are microseconds since the epoch; shown as UTC, to the second.
export function formatMicros(micros) {
  const n = Number(micros);
  if (!Number.isFinite(n)) return String(micros);
  const date = new Date(Math.floor(n / 1000));
  if (Number.isNaN(date.getTime())) return String(micros);
  return date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function formatValue(key, value) {
  if (value === null || value === undefined) return '—';
  if (/_micros$/.test(key) && (typeof value === 'number' || typeof value === 'string')) {
    return Number(value) === 0 ? '—' : formatMicros(value);
  }
  if (typeof value === 'number') {
    if (/rate$|_rate_/.test(key) && value >= 0 && value <= 1) return `${(value * 100).toFixed(1)} %`;
    return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toFixed(3);
  }
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (Array.isArray(value)) {
    return value.every((v) => typeof v !== 'object' || v === null)
      ? value.join(', ')
      : JSON.stringify(value);
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function humanise(key) {
  return key.replace(/_micros$/, '').replace(/_/g, ' ');
}

// A table of objects; columns: the union of their keys (in first-seen order) unless given.
// extra(row) may return one more cell (e.g. a button).
export function table(rows, { columns, extraHeader, extra, caption, className } = {}) {
  const keys = columns || [];
  if (!columns) {
    for (const row of rows) {
      for (const key of Object.keys(row || {})) if (!keys.includes(key)) keys.push(key);
    }
  }
  const head = el('tr', {}, keys.map((k) => el('th', { scope: 'col' }, humanise(k))));
  if (extra) head.append(el('th', { scope: 'col' }, extraHeader || ''));
  const body = rows.map((row) => {
    const tr = el(
      'tr',
      {},
      keys.map((k) =>
        el('td', { 'data-key': k,
          class: typeof row?.[k] === 'number' && !/_micros$/.test(k) ? 'num' : undefined },
          formatValue(k, row?.[k])),
      ),
    );
    if (extra) tr.append(el('td', {}, extra(row)));
    return tr;
  });
  return el('table', { class: className }, caption ? el('caption', {}, caption) : null, el('thead', {}, head),
    el('tbody', {}, body));
}

// The API's answer when it is not an array of rows: scalars as a definition list, each array of
// objects as a table. Used where the exact shape may still grow (retention, device health).
export function genericView(json) {
  const out = el('div', { class: 'generic' });
  const scalars = el('dl', {});
  for (const [key, value] of Object.entries(json || {})) {
    if (Array.isArray(value) && value.some((v) => v && typeof v === 'object')) {
      out.append(el('h3', {}, humanise(key)));
      out.append(value.length ? table(value) : el('p', { class: 'empty' }, 'none'));
    } else if (value && typeof value === 'object' && !Array.isArray(value)) {
      out.append(el('h3', {}, humanise(key)));
      out.append(genericView(value));
    } else {
      scalars.append(el('dt', {}, humanise(key)), el('dd', {}, formatValue(key, value)));
    }
  }
  if (scalars.childElementCount) out.prepend(scalars);
  return out;
}

// A vertical bar chart in SVG (no canvas, so the values stay in the DOM for assistive tools and
// tests: every bar carries data-value and a <title>).
export function barChart(values, { labels = [], height = 120, barWidth = 18, gap = 4, title = '',
  labelEvery = 3 } = {}) {
  const max = Math.max(1, ...values);
  const top = 14;
  const bottom = 18;
  const width = values.length * (barWidth + gap) + gap;
  const chart = svg('svg', {
    class: 'bars',
    width,
    height: height + top + bottom,
    viewBox: `0 0 ${width} ${height + top + bottom}`,
    role: 'img',
    'aria-label': title,
  });
  chart.append(svg('line', { x1: 0, x2: width, y1: top + height, y2: top + height, class: 'axis' }));
  values.forEach((value, i) => {
    const h = Math.round((value / max) * height);
    const x = gap + i * (barWidth + gap);
    chart.append(
      svg('rect', { x, y: top + height - h, width: barWidth, height: Math.max(h, value > 0 ? 1 : 0),
        class: 'bar', 'data-value': value },
      svg('title', {}, `${labels[i] ?? i}: ${value}`)),
    );
    if (value > 0) {
      chart.append(svg('text', { x: x + barWidth / 2, y: top + height - h - 3, class: 'value' }, value));
    }
    if (labels[i] !== undefined && i % labelEvery === 0) {
      chart.append(svg('text', { x: x + barWidth / 2, y: top + height + 13, class: 'label' }, labels[i]));
    }
  });
  return chart;
}
