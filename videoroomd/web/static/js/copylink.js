// "Copy link": the room's address on the clipboard, to send to others.
import { notice } from "./ui.js";

// Copies the room's address (without this person's name or password) for sending to others.
export async function copyLink(room) {
  const url = `${location.origin}/room/${encodeURIComponent(room)}`;
  try {
    await navigator.clipboard.writeText(url);
    notice(`Link copied: ${url}`);
    return;
  } catch {
    // No clipboard API here (a plain http:// address other than localhost), or it was refused.
  }
  const field = document.createElement("textarea");
  field.value = url;
  field.setAttribute("readonly", "");
  field.style.position = "fixed";
  field.style.opacity = "0";
  document.body.append(field);
  field.select();
  let copied = false;
  try { copied = document.execCommand("copy"); } catch { copied = false; }
  field.remove();
  notice(copied ? `Link copied: ${url}` : `Copy this link: ${url}`, { sticky: !copied });
}
