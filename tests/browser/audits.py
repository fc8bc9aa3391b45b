"""What the browser tests check a page against: axe-core's WCAG 2.1 A/AA rules, an old engine's
view of the stylesheets (no custom properties, no `gap`), visible controls and horizontal overflow.

axe-core is the npm package pinned in package.json (node_modules/axe-core, from `npm ci`), added to
a context as an init script, so it reaches the page without touching its strict CSP.
"""
from __future__ import annotations

import re
from typing import Dict, List, Sequence

from playwright.sync_api import Page

from .conftest import REPO, Pages, missing

AXE_SCRIPT = REPO / "node_modules" / "axe-core" / "axe.min.js"
WCAG21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_context(pages: Pages, **kw: object) -> object:
    """A browser context whose pages carry axe-core."""
    if not AXE_SCRIPT.exists():
        missing("no axe-core: run `npm ci` at the repository root")
    ctx = pages.context(**kw)
    ctx.add_init_script(path=str(AXE_SCRIPT))  # type: ignore[attr-defined]
    return ctx


RUN_AXE = """async (options) => {
  const r = await axe.run(document, options);
  const nodes = (v) => v.nodes.map((n) => n.target.join(' ') + ' -> ' + (n.failureSummary || '').replace(/\\s+/g, ' '));
  return {violations: r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, nodes: nodes(v)})),
          incomplete: r.incomplete.map((v) => ({id: v.id, impact: v.impact, help: v.help, nodes: nodes(v)}))};
}"""


def axe_run(page: Page, rules: Sequence[str] = ()) -> Dict[str, List[Dict]]:
    """axe-core over the whole page: WCAG 2.1 A and AA rules, or only `rules`."""
    options: Dict[str, object] = {"resultTypes": ["violations", "incomplete"]}
    if rules:
        options["runOnly"] = {"type": "rule", "values": list(rules)}
    else:
        options["runOnly"] = {"type": "tag", "values": WCAG21_AA}
    return page.evaluate(RUN_AXE, options)


def expect_accessible(page: Page, state: str, rules: Sequence[str] = ()) -> None:
    """No WCAG 2.1 A/AA violation (or none of `rules`) on the page as it is now."""
    found = axe_run(page, rules)["violations"]
    assert found == [], f"{state}: " + "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in found)


# ---- old engines ----------------------------------------------------------------------------

_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_DECLARATION = re.compile(r"(?<=[{;])\s*([a-zA-Z-]+)\s*:([^;{}]*)(?=[;}])")
_UNKNOWN_TO_OLD_ENGINES = ("gap", "row-gap", "column-gap")


def strip_modern_css(text: str) -> str:
    """The stylesheet as an engine without custom properties or flex `gap` keeps it: every
    declaration whose value uses var(), and every gap, dropped."""
    def keep(m: "re.Match[str]") -> str:
        prop, value = m.group(1).lower(), m.group(2)
        return "" if "var(" in value or prop in _UNKNOWN_TO_OLD_ENGINES else m.group(0)
    return _DECLARATION.sub(keep, _COMMENT.sub("", text))


# Which controls a user can see, and where; the place, size, colours and spacing of every element.
# Taken with the page's own stylesheets, then (in the same task, so the page cannot change in
# between) with the old engine's, which stay in place.
OLD_ENGINE = """(sheets) => {
  const label = (el, i) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
    '[' + i + ']';
  const props = ['color', 'background-color', 'border-top-color', 'border-left-color', 'border-top-width',
    'border-left-width', 'border-top-style', 'margin-top', 'margin-right', 'margin-bottom', 'margin-left',
    'padding-top', 'padding-right', 'padding-bottom', 'padding-left', 'outline-color', 'display'];
  const snapshot = () => {
    const controls = {}, styles = [];
    document.querySelectorAll('button, input, textarea, select, a[href], summary, label[for]').forEach((el, i) => {
      const r = el.getBoundingClientRect();
      const text = (el.textContent || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 30);
      controls[label(el, i) + ' "' + text + '"'] = {left: r.left, right: r.right,
        seen: r.width >= 4 && r.height >= 4 && el.checkVisibility({opacityProperty: true, visibilityProperty: true})};
    });
    document.querySelectorAll('body *').forEach((el, i) => {
      const cs = getComputedStyle(el), r = el.getBoundingClientRect();
      const box = el.checkVisibility() ? [r.left, r.top, r.width, r.height].map(Math.round).join(',') : 'not drawn';
      styles.push(label(el, i) + ' box:' + box + '; ' + props.map((p) => p + ':' + cs.getPropertyValue(p)).join('; '));
    });
    return {controls, styles, width: document.documentElement.clientWidth};
  };
  const modern = snapshot();
  document.querySelectorAll('link[rel=stylesheet]').forEach((link) => { link.disabled = true; });
  document.adoptedStyleSheets = sheets.map((text) => { const s = new CSSStyleSheet(); s.replaceSync(text); return s; });
  return {modern, old: snapshot()};
}"""

MODERN_ENGINE = """() => {
  document.adoptedStyleSheets = [];
  document.querySelectorAll('link[rel=stylesheet]').forEach((link) => { link.disabled = false; });
}"""


def served_stylesheets(page: Page) -> List[str]:
    """The stylesheets the page links to, as the server sends them."""
    return page.evaluate("() => Promise.all(Array.from(document.querySelectorAll('link[rel=stylesheet]'), "
                         "(l) => fetch(l.href).then((r) => r.text())))")


def view_as_old_engine(page: Page) -> Dict[str, Dict]:
    """Switches the page to its stylesheets without var() and gap (until `view_as_modern_engine`);
    returns the snapshot with the page's own stylesheets ("modern") and without ("old")."""
    return page.evaluate(OLD_ENGINE, [strip_modern_css(text) for text in served_stylesheets(page)])


def view_as_modern_engine(page: Page) -> None:
    page.evaluate(MODERN_ENGINE)


def controls_lost(modern: Dict, old: Dict) -> List[str]:
    """Controls visible and on screen with the page's stylesheets that an old engine hides, shrinks
    to nothing or pushes off the side of the screen."""
    lost = []
    for name, was in modern["controls"].items():
        now = old["controls"].get(name)
        if not was["seen"]:
            continue
        if not now or not now["seen"]:
            lost.append(f"{name}: not visible")
        elif now["left"] < -1 or now["right"] > old["width"] + 1:
            lost.append(f"{name}: off screen ({now['left']:.0f}..{now['right']:.0f} of {old['width']})")
    return lost


def style_differences(modern: Dict, old: Dict) -> List[str]:
    """Elements whose colours or spacing differ between the two views, side by side."""
    return [f"modern: {a}\n  old:    {b}" for a, b in zip(modern["styles"], old["styles"]) if a != b]


# ---- screens --------------------------------------------------------------------------------

# Elements drawn past the left or right edge of the screen. Whatever a scrolling or clipping box
# inside the page hides is not drawn; what the page itself (html, body) cuts off is lost, so counts.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  document.querySelectorAll('body *').forEach((el) => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || !el.checkVisibility() || el.closest('.sr-only, .k-sr')) { return; }
    let left = r.left, right = r.right;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== 'visible') {
        const c = up.getBoundingClientRect();
        left = Math.max(left, c.left);
        right = Math.min(right, c.right);
      }
    }
    if (right > left && (right > width + 0.5 || left < -0.5)) {
      wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (typeof el.className === 'string' &&
        el.className ? '.' + el.className.split(' ')[0] : '') + ' ' + Math.round(left) + '..' + Math.round(right));
    }
  });
  return {width, scrollWidth: document.documentElement.scrollWidth, wide};
}"""


def horizontal_overflow(page: Page) -> List[str]:
    """What sticks out sideways: the page wider than the screen, or elements past its edges."""
    found = page.evaluate(OVERFLOW)
    out = list(found["wide"])
    if found["scrollWidth"] > found["width"]:
        out.insert(0, f"page is {found['scrollWidth']} px wide on a {found['width']} px screen")
    return out
