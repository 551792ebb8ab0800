// The call's side panel: the people list (with the devices and the stats) or the chat, one at a time
// (beside the call on a laptop, over it on a phone), so the call keeps most of the window.

const $ = (id) => document.getElementById(id);
export const PHONE = "(max-width: 720px)";  // app.css's phone layout starts here too

export class SidePanels {
  constructor() {
    this.call = $("call");
    this.entries = new Map();  // name -> {panel, button}
    this.current = null;
    this.previous = null;      // what closing the current panel goes back to
    this.onchange = null;      // called with the name shown (or null)
    // A window narrowed to a phone's: a panel left open would cover the call.
    matchMedia(PHONE).addEventListener?.("change", (event) => { if (event.matches) this.show(null); });
  }

  // `onshow(visible)` is told when the panel appears or goes.
  add(name, panel, button, onshow = null) {
    this.entries.set(name, { panel, button, onshow });
    button.addEventListener("click", () => this.toggle(name));
    // Its close button (the first in its header) and Escape close it, the focus back on its button.
    const closing = () => { this.close(name); button.focus(); };
    panel.querySelector(".side-top button")?.addEventListener("click", closing);
    panel.addEventListener("keydown", (event) => { if (event.key === "Escape") closing(); });
  }

  isOpen(name) { return this.current === name; }

  // Shows the panel `name` (null: none), hiding the other.
  show(name) {
    if (name === this.current) return;
    if (this.current && name) this.previous = this.current;
    this.current = name;
    for (const [key, { panel, button, onshow }] of this.entries) {
      const visible = key === name;
      const changed = panel.hidden === visible;
      panel.hidden = !visible;
      button.setAttribute("aria-pressed", String(visible));
      if (changed) onshow?.(visible);
    }
    this.call.dataset.panel = name || "";
    this.onchange?.(name);
  }

  // Closes `name` if it is shown: back to the panel it replaced (on a laptop), or to none.
  close(name) {
    if (this.current !== name) return;
    const back = this.previous !== name && !matchMedia(PHONE).matches ? this.previous : null;
    this.previous = null;
    this.show(back);
  }

  toggle(name) {
    if (this.current === name) this.close(name); else this.show(name);
  }
}
