// Small DOM and text utilities shared by the client's modules.
//
// Every string that comes from the server or the model reaches the page
// through text nodes only (`h` children, `textContent`): nothing here ever
// parses markup, so a reply containing <script> stays visible text.

/**
 * Build an element. `props` sets attributes, with a few conveniences:
 * `class`, `testid` (data-testid), `data` (an object of data-* values),
 * `on<event>` listeners, and `value`/`checked`/`disabled`/`hidden`/`selected`
 * as properties. Children are nodes or strings (strings become text nodes).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "data") {
      for (const [name, v] of Object.entries(value)) {
        if (v !== undefined && v !== null) el.dataset[name] = String(v);
      }
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (PROPERTIES.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "selected"]);

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children; strings become text nodes. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The element with this data-testid inside `root` (the document by default). */
export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

// --- text measured as the server measures it -------------------------------
//
// The server counts characters as Unicode code points (Python `len`); a JS
// string's `length` counts UTF-16 units, which differ for emoji and other
// astral characters. Token offsets must be compared in the server's units.

/** Number of code points in `text`. */
export function codePoints(text) {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A low surrogate continues the previous code point.
    if (unit < 0xdc00 || unit > 0xdfff) count++;
  }
  return count;
}

/** `text` without its first `skip` code points. */
export function dropCodePoints(text, skip) {
  let i = 0;
  while (skip > 0 && i < text.length) {
    const unit = text.charCodeAt(i);
    i += unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length ? 2 : 1;
    skip--;
  }
  return text.slice(i);
}

// --- story text -------------------------------------------------------------

// ((out of character)), *action*, "dialogue" (straight or curly quotes).
const MARKS = /\(\([\s\S]*?\)\)|\*[^*\n]+\*|"[^"\n]*"|\u201c[^\u201d\n]*\u201d/g;

/**
 * Story prose as styled spans: actions, dialogue and out-of-character asides
 * get their own class so a long scene stays easy to read. The characters are
 * kept exactly (the marks included), so the element's text equals `text`.
 */
export function prose(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(MARKS)) {
    if (match.index > last) fragment.append(text.slice(last, match.index));
    const mark = match[0];
    const kind = mark.startsWith("((") ? "ooc" : mark.startsWith("*") ? "action" : "dialogue";
    fragment.append(h("span", { class: `seg seg--${kind}` }, mark));
    last = match.index + mark.length;
  }
  if (last < text.length) fragment.append(text.slice(last));
  return fragment;
}

/** "edge_updated" → "edge updated": event kinds as a person reads them. */
export function humanKind(kind) {
  return String(kind).replace(/_/g, " ");
}
