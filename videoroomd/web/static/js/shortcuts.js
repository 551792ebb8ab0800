// The call's keyboard shortcuts (shown on the buttons, with aria-keyshortcuts): one letter each, or
// Shift and a letter. Never while typing (the chat, the pickers), nor with the browser's own modifiers.

// `actions` maps a key ("m", or "L" for Shift+L) to a function; `active()` says whether the call is shown.
export function bindShortcuts(active, actions) {
  // A button last focused by a click would show a focus ring once a key is pressed (browsers then
  // take the person for a keyboard user): a shortcut takes the focus off it. Tabbing keeps it.
  let clicked = false;
  document.addEventListener("pointerdown", () => { clicked = true; }, true);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Tab") clicked = false;
    if (!active() || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest?.("input, select, textarea, [contenteditable]")) return;
    // Caps Lock does not turn "m" into a Shift shortcut; Shift does.
    const key = event.shiftKey ? event.key.toUpperCase() : event.key.toLowerCase();
    const action = Object.hasOwn(actions, key) ? actions[key] : null;
    if (!action) return;
    event.preventDefault();
    if (clicked && document.activeElement?.matches?.("button")) document.activeElement.blur();
    action();
  });
}
