// Small DOM helpers of the admin dashboard: element lookup and creation, change-only updates of
// text and attributes, and keyed reconciliation of lists. They never fetch and hold no state.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
export function setAttr(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

/** Keeps `container`'s keyed children in the order of `items`, reusing elements by key. */
export function reconcile(container, items, attr, keyOf, create, update) {
  const existing = new Map();
  for (const el of [...container.children]) {
    if (el.hasAttribute(attr)) existing.set(el.getAttribute(attr), el);
    else el.remove();
  }
  let cursor = container.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    let el = existing.get(key);
    if (el) existing.delete(key);
    else el = create(item);
    update(el, item);
    if (el !== cursor) container.insertBefore(el, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const el of existing.values()) el.remove();
}

export function meta(label, field) {
  return h('div', { class: 'meta' }, h('dt', { text: label }), h('dd', { 'data-field': field }));
}
