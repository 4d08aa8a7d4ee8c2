// WCAG 2.2 contrast (success criterion 1.4.3, level AA) of every text on a rendered page: each
// element with text of its own, its colour against the background it is drawn on (the nearest
// ancestors' background colours, alpha-blended over white). Text of disabled controls is
// exempt, as WCAG says; SVG text is the chart's and is checked by its own colours elsewhere.
// Plain JavaScript in a string: it runs in the page (page.evaluate), where nothing the test
// runner's transform adds (helpers such as __name) exists.

export interface ContrastFinding {
  /** The element, as tag.class and the start of its text. */
  what: string;
  ratio: number;
  needed: number;
  color: string;
  background: string;
}

export interface ContrastReport {
  /** Elements with text of their own that were measured. */
  checked: number;
  low: ContrastFinding[];
}

/** An expression for page.evaluate that gives a ContrastReport. */
export const TEXT_CONTRAST_SCRIPT = `(() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, below) => {
    const a = top[3];
    return [top[0] * a + below[0] * (1 - a), top[1] * a + below[1] * (1 - a), top[2] * a + below[2] * (1 - a), 1];
  };
  const luminance = (c) => {
    const l = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
  };
  const backgroundOf = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg[3] > 0) layers.push(bg);
      if (bg[3] >= 1) break;
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const report = { checked: 0, low: [] };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || el.closest(':disabled')) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
    if (!own) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || style.display === 'none' || box.width <= 1 || box.height <= 1) continue;
    const bg = backgroundOf(el);
    const fg = over(parse(style.color), bg);
    const [a, b] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const needed = large ? 3 : 4.5;
    report.checked++;
    if (ratio < needed) {
      const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join(' ').slice(0, 40);
      report.low.push({ what: el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ').join('.') : '') + ' "' + text + '"', ratio: Math.round(ratio * 100) / 100, needed, color: style.color, background: 'rgb(' + bg.slice(0, 3).map(Math.round).join(', ') + ')' });
    }
  }
  return report;
})()`;
