// Leaving a call: asked first when it comes from a keyboard shortcut, then a screen that says so,
// with a way back in.

const $ = (id) => document.getElementById(id);

// Asks whether to leave; resolves true for "Leave the call", false for "Stay" or Escape.
export function confirmLeave() {
  const dialog = $("leave-dialog");
  if (dialog.open) return Promise.resolve(false);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "leave"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    $("leave-confirm").focus();
  });
}

// The screen after leaving `room`: "You left the call", Rejoin (calls `rejoin`) and the room list.
export function showLeft(room, rejoin) {
  $("left-room").textContent = `You were in ${room}. Your camera and microphone are off.`;
  const button = $("rejoin-button");
  button.onclick = () => { button.disabled = true; rejoin().finally(() => { button.disabled = false; }); };
  button.focus();
}
