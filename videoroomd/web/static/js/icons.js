// The page's icons: inline SVG drawn with the text colour (no icon font, no emoji: a server or a
// phone without an emoji font would show boxes). Each is a 24x24 stroke drawing of plain shapes,
// drawn for this page. Icons are decoration: the button or mark they sit in carries the name.

const SVG = "http://www.w3.org/2000/svg";
const SHAPES = {
  mic: [["rect", { x: 9, y: 2, width: 6, height: 12, rx: 3 }], ["path", { d: "M5 11a7 7 0 0 0 14 0M12 18v4M8 22h8" }]],
  "mic-off": [["rect", { x: 9, y: 2, width: 6, height: 12, rx: 3 }], ["path", { d: "M5 11a7 7 0 0 0 14 0M12 18v4M8 22h8M3 3l18 18" }]],
  camera: [["rect", { x: 2, y: 6, width: 13, height: 12, rx: 2 }], ["path", { d: "M15 10l6-3v10l-6-3z" }]],
  "camera-off": [["rect", { x: 2, y: 6, width: 13, height: 12, rx: 2 }], ["path", { d: "M15 10l6-3v10l-6-3zM3 3l18 18" }]],
  screen: [["rect", { x: 2, y: 4, width: 20, height: 13, rx: 2 }], ["path", { d: "M9 21h6M12 17v4M12 14V8M9 11l3-3 3 3" }]],
  speaker: [["rect", { x: 2, y: 3, width: 20, height: 18, rx: 2 }], ["path", { d: "M2 16h20M8.7 16v5M15.3 16v5" }]],
  people: [["circle", { cx: 9, cy: 8, r: 3.5 }], ["path", { d: "M2 20c0-3.5 3-6 7-6s7 2.5 7 6M16 5a3 3 0 0 1 0 6M18 14c2.5.6 4 2.8 4 6" }]],
  chat: [["path", { d: "M4 4h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9l-5 4v-4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1z" }]],
  stats: [["path", { d: "M3 21h18M3 17l5-6 4 4 8-9" }]],
  record: [["circle", { cx: 12, cy: 12, r: 9 }], ["circle", { cx: 12, cy: 12, r: 4, fill: "currentColor" }]],
  leave: [["path", { d: "M14 4h5a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1h-5M10 8l-4 4 4 4M6 12h10" }]],
  lock: [["rect", { x: 4, y: 11, width: 16, height: 10, rx: 2 }], ["path", { d: "M8 11V8a4 4 0 0 1 8 0v3" }]],
  close: [["path", { d: "M6 6l12 12M18 6L6 18" }]],
  pin: [["path", { d: "M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5" }]],
  link: [["path", { d: "M9 15l6-6M11 6l1.5-1.5a4 4 0 0 1 5.7 5.7L16.5 12M13 18l-1.5 1.5a4 4 0 0 1-5.7-5.7L7.5 12" }]],
  signal: [["path", { d: "M4 20v-4M10 20v-8M16 20V8M22 20V4" }]],
};

// A new <svg> of the icon `name`, hidden from screen readers; `className` is added to "icon".
export function icon(name, className = "") {
  const svg = document.createElementNS(SVG, "svg");
  for (const [key, value] of Object.entries({ viewBox: "0 0 24 24", width: 20, height: 20, fill: "none", stroke: "currentColor",
    "stroke-width": 2, "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false" })) {
    svg.setAttribute(key, String(value));
  }
  svg.setAttribute("class", `icon ${className}`.trim());
  for (const [tag, attributes] of SHAPES[name] || []) {
    const shape = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes)) shape.setAttribute(key, String(value));
    svg.append(shape);
  }
  return svg;
}

// Puts the icons the markup asks for in front of each element's content: data-icon="NAME", and for a
// toggle data-icon-pressed="NAME" too (CSS shows the second while aria-pressed is "true").
export function decorate(root = document) {
  for (const element of root.querySelectorAll("[data-icon]")) {
    if (element.querySelector(":scope > svg.icon")) continue;
    const pressed = element.dataset.iconPressed;
    if (pressed) element.prepend(icon(pressed, "icon-pressed"));
    element.prepend(icon(element.dataset.icon, pressed ? "icon-unpressed" : ""));
  }
}
