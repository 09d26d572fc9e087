// Each character's own colour, stable per bot id: the same character has the
// same colour on every page and after every reload, with no table to keep.
// Only a hue is chosen here; style.css turns it into a lightness that reads
// well on the light and on the dark palette (the `.who` class).

/** A hue (0–359) for `id`, the same for the same id. */
export function hueOf(id) {
  let hash = 2166136261; // FNV-1a over the id's UTF-16 units
  const text = String(id);
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  // FNV alone barely moves for ids that differ in their last character
  // ("b1", "b2"); a final mix spreads them around the wheel.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) % 360;
}

/** Give `el` the colour of character `id` (nothing for "you"); returns `el`. */
export function tint(el, id) {
  if (!id || id === "you") return el;
  el.classList.add("who");
  el.style.setProperty("--hue", String(hueOf(id)));
  el.dataset.hue = String(hueOf(id));
  return el;
}
