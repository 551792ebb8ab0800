// Leaving a call: asked first when it comes from a keyboard shortcut, then a screen that says so,
// with a way back in.

const $ = (id) => document.getElementById(id);

// Asks whether to leave; resolves true for "Leave the call", false for "Stay" or Escape.
// A dialog's "close" event is queued, and the browser may handle a key before it: asked again
// right after Escape, the first question's "close" can come while the second is on screen.
// An answer is taken only from a "close" that finds the dialog closed.
export function confirmLeave() {
  const dialog = $("leave-dialog");
  if (dialog.open) return Promise.resolve(false);
  return new Promise((resolve) => {
    const answered = () => {
      if (dialog.open) return;  // an earlier question's close, late: this one is still asked
      dialog.removeEventListener("close", answered);
      resolve(dialog.returnValue === "leave");
    };
    dialog.addEventListener("close", answered);
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
