"""What a person sees of the daemon's page, measured in the browser (any browser: the checks are one
JavaScript function, run by Playwright in Chromium or by tests/js/firefox_page.mjs in Firefox).

``LAYOUT_PROBLEMS`` returns a list of problems in words, empty when the page is calm: every control
and mark that must be reachable lies wholly in the window, and none covers another."""

from __future__ import annotations

LAYOUT_PROBLEMS = r"""() => {
  const problems = [];
  const shown = (e) => {
    if (!e) return false;
    const r = e.getBoundingClientRect();
    const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && Number(s.opacity) > 0.05;
  };
  const name = (e) => `${e.id ? "#" + e.id : e.tagName.toLowerCase() + "." + [...e.classList].join(".")}`
    + ` "${(e.getAttribute("aria-label") || e.textContent || "").trim().slice(0, 40)}"`;
  const inWindow = (e) => {
    const r = e.getBoundingClientRect();
    if (r.left < -0.5 || r.top < -0.5 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5) {
      problems.push(`${name(e)} is not wholly in the ${innerWidth}x${innerHeight} window: ${Math.round(r.left)},${Math.round(r.top)} to ${Math.round(r.right)},${Math.round(r.bottom)}`);
    }
  };
  const overlap = (a, b) => {
    const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    return Math.min(p.right, q.right) - Math.max(p.left, q.left) > 1 && Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top) > 1;
  };
  const apart = (elements, where) => {
    const list = elements.filter(shown);
    for (let i = 0; i < list.length; i += 1) {
      for (let j = i + 1; j < list.length; j += 1) {
        if (list[i].contains(list[j]) || list[j].contains(list[i])) continue;
        if (overlap(list[i], list[j])) problems.push(`${name(list[i])} overlaps ${name(list[j])} (${where})`);
      }
    }
  };
  const all = (selector) => [...document.querySelectorAll(selector)];
  // What must be in reach: the top bar, the controls, the join card's message and Join button,
  // the open side panel's header, the screen after leaving, an open dialog.
  for (const e of all(".topbar > *, .controls > button, #join-message, #join-button, #join-elsewhere a, .side .side-top > *, "
    + "#left h1, #left .actions > *, dialog[open] button, #chat-send")) {
    if (shown(e)) inWindow(e);
  }
  apart(all(".topbar > *"), "top bar");
  apart(all(".controls > button"), "controls");
  apart(all("dialog[open] button"), "dialog");
  // Each tile's marks: the name, the badges, the pin button, the quality mark.
  const controls = document.querySelector(".controls");
  const clipped = (e, box) => {  // the part of e's box its scrolling container shows
    const r = e.getBoundingClientRect(), c = box.getBoundingClientRect();
    return { left: Math.max(r.left, c.left), top: Math.max(r.top, c.top), right: Math.min(r.right, c.right), bottom: Math.min(r.bottom, c.bottom) };
  };
  const grid = document.getElementById("grid");
  for (const tile of all("figure.tile")) {
    apart([...tile.querySelectorAll(".name, .badge, .pin, .quality")], `tile ${tile.querySelector(".name")?.textContent}`);
    if (!shown(tile) || !shown(controls)) continue;
    const seen = tile.classList.contains("focused") ? tile.getBoundingClientRect() : clipped(tile, grid);
    const bar = controls.getBoundingClientRect();
    if (seen.bottom - seen.top > 1 && seen.right - seen.left > 1 && seen.bottom > bar.top + 1 && seen.top < bar.bottom
        && Math.min(seen.right, bar.right) - Math.max(seen.left, bar.left) > 1) {
      problems.push(`${name(tile)} is under the controls`);
    }
  }
  for (const figure of all("#stage figure")) {
    if (shown(figure) && shown(controls) && overlap(figure, controls)) problems.push("the shared screen is under the controls");
  }
  const panels = all(".side").filter(shown);
  if (panels.length > 1) problems.push(`${panels.length} side panels at once: ${panels.map(name).join(", ")}`);
  if (shown(document.getElementById("join"))) {
    const card = document.getElementById("join");
    if (card.scrollHeight > card.clientHeight + 1) problems.push(`the join card's content overflows it (${card.scrollHeight} > ${card.clientHeight})`);
  }
  return problems;
}"""

# The width of the call's view as a share of the window's (how much a side panel takes).
VIEW_SHARE = "() => document.querySelector('.view').getBoundingClientRect().width / innerWidth"

# Resolves once the page's layout has settled: no element's box moved over three frames in a row
# (the tiles are laid out again on the frames after a resize or a change of the call), or after
# about three seconds of boxes still moving; to what LAYOUT_PROBLEMS then measures, that is the
# same as a fixed wait, without waiting longer than the page takes.
SETTLED = """() => new Promise((done) => {
    const boxes = () => JSON.stringify([...document.querySelectorAll("body *")].map((e) => {
        const r = e.getBoundingClientRect();
        return [r.x, r.y, r.width, r.height];
    }));
    let last = null, still = 0, frames = 0;
    const look = () => {
        const now = boxes();
        still = now === last ? still + 1 : 0;
        last = now;
        frames += 1;
        if (still >= 3 || frames >= 180) done(still >= 3);
        else requestAnimationFrame(look);
    };
    requestAnimationFrame(look);
})"""
