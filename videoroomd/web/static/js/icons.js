// The page's icons: inline SVG drawn with the text colour (no icon font, no emoji: a server or a
// phone without an emoji font would show boxes). Each is a 24x24 stroke drawing; the shapes are
// Feather's (MIT licence). Icons are decoration: the button or mark they sit in carries the name.

const SVG = "http://www.w3.org/2000/svg";
const SHAPES = {
  mic: [["path", { d: "M12 1a3 3 0 0 0-3 3v8a3 3 0 0 0 6 0V4a3 3 0 0 0-3-3z" }], ["path", { d: "M19 10v2a7 7 0 0 1-14 0v-2" }],
    ["path", { d: "M12 19v4M8 23h8" }]],
  "mic-off": [["path", { d: "M1 1l22 22M9 9v3a3 3 0 0 0 5.12 2.12M15 9.34V4a3 3 0 0 0-5.94-.6" }],
    ["path", { d: "M17 16.95A7 7 0 0 1 5 12v-2m14 0v2a7 7 0 0 1-.11 1.23M12 19v4M8 23h8" }]],
  camera: [["path", { d: "M23 7l-7 5 7 5V7z" }], ["rect", { x: 1, y: 5, width: 15, height: 14, rx: 2 }]],
  "camera-off": [["path", { d: "M16 16v1a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2h2m5.66 0H14a2 2 0 0 1 2 2v3.34l1 1L23 7v10M1 1l22 22" }]],
  screen: [["rect", { x: 2, y: 3, width: 20, height: 14, rx: 2 }], ["path", { d: "M8 21h8M12 17v4M12 13V7M9 10l3-3 3 3" }]],
  speaker: [["rect", { x: 2, y: 3, width: 20, height: 18, rx: 2 }], ["path", { d: "M2 15h20M9 15v6M15 15v6" }]],
  people: [["path", { d: "M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2" }], ["circle", { cx: 9, cy: 7, r: 4 }],
    ["path", { d: "M23 21v-2a4 4 0 0 0-3-3.87M16 3.13a4 4 0 0 1 0 7.75" }]],
  chat: [["path", { d: "M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z" }]],
  stats: [["path", { d: "M22 12h-4l-3 9L9 3l-3 9H2" }]],
  record: [["circle", { cx: 12, cy: 12, r: 9 }], ["circle", { cx: 12, cy: 12, r: 4, fill: "currentColor" }]],
  leave: [["path", { d: "M10.68 13.31a16 16 0 0 0 3.41 2.6l1.27-1.27a2 2 0 0 1 2.11-.45 12.84 12.84 0 0 0 2.81.7 2 2 0 0 1 1.72 2v3a2 2 0 0 1-2.18 2 19.79 19.79 0 0 1-8.63-3.07 19.42 19.42 0 0 1-3.33-2.67m-2.67-3.34a19.79 19.79 0 0 1-3.07-8.63A2 2 0 0 1 4.11 2h3a2 2 0 0 1 2 1.72 12.84 12.84 0 0 0 .7 2.81 2 2 0 0 1-.45 2.11L8.09 9.91M23 1L1 23" }]],
  lock: [["rect", { x: 3, y: 11, width: 18, height: 11, rx: 2 }], ["path", { d: "M7 11V7a5 5 0 0 1 10 0v4" }]],
  close: [["path", { d: "M18 6L6 18M6 6l12 12" }]],
  pin: [["path", { d: "M15 3h6v6M9 21H3v-6M21 3l-7 7M3 21l7-7" }]],
  link: [["path", { d: "M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71" }],
    ["path", { d: "M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71" }]],
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
