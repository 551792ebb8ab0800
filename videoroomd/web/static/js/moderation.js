// Moderation on the page (docs/moderation.md): the controls a moderator gets in the people list and
// under it (lock, end), and what the page does when a moderator acted on us. The server checks every
// request: the controls are shown only to moderators so that nobody else is offered what they cannot do.
import { joinMessage, notice } from "./ui.js";

const $ = (id) => document.getElementById(id);
const MAX_REASON = 200;  // characters of a removal's reason (the server's limit)
const SOURCES = { mute: "audio", stop_video: "video", stop_screen: "screen" };

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "quiet small";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

export class Moderation {
  // meeting: what a moderator's mute or stop turns off here (its setMic, setCamera, stopScreen).
  constructor(meeting) {
    this.meeting = meeting;
    this.call = null;
    this.held = new Set();  // our sources a moderator holds: the microphone needs the server's word to come back
    this.locked = false;
  }

  // Before the call joins: the people list's controls are added as people arrive (the join
  // reply says whether we moderate); the room's once it joined (roomControls).
  attach(call) {
    this.call = call;
    this.held.clear();
    call.addEventListener("moderated", ({ detail }) => this.told(detail));
    call.addEventListener("lobby", ({ detail }) => {
      if (detail?.waiting === true) joinMessage("You are in the waiting room: a moderator will let you in.");
      else if (Array.isArray(detail?.waiting)) this.showWaiting(detail.waiting);
    });
  }

  // Who waits to come in, each with Admit and Decline (moderators only).
  showWaiting(waiting) {
    let box = $("lobby-waiting");
    if (!box) {
      box = document.createElement("section");
      box.id = "lobby-waiting";
      box.className = "lobby-waiting";
      box.setAttribute("aria-label", "Waiting to come in");
      $("participants").after(box);
    }
    box.replaceChildren();
    box.hidden = waiting.length === 0;
    for (const { id, name } of waiting) {
      const row = document.createElement("div");
      const who = document.createElement("span");
      who.textContent = `${name} is waiting`;
      row.append(who, button("Admit", `Admit ${name}`, () => this.ask({ action: "admit", peer: id })),
        button("Decline", `Decline ${name}`, () => this.ask({ action: "decline", peer: id })));
      box.append(row);
    }
  }

  // A moderator's buttons for one person of the people list.
  addControls(endpointId, name) {
    if (!this.call?.moderator) return;
    const item = $("participants").querySelector(`li[data-endpoint="${CSS.escape(endpointId)}"]`);
    if (!item || item.querySelector(".moderate")) return;
    const box = document.createElement("span");
    box.className = "moderate";
    const ask = (action) => this.ask({ action, peer: endpointId });
    box.append(
      button("Mute", `Mute ${name}`, () => ask("mute")),
      button("Stop camera", `Stop ${name}'s camera`, () => ask("stop_video")),
      button("Stop screen", `Stop ${name}'s shared screen`, () => ask("stop_screen")),
      button("Remove…", `Remove ${name}`, () => this.removeForm(box, endpointId, name)),
    );
    item.append(box);
  }

  // Asks for a reason before removing someone (it is shown to them).
  removeForm(box, endpointId, name) {
    if (box.querySelector("form")) return;
    const form = document.createElement("form");
    form.className = "remove-form";
    const reason = document.createElement("input");
    reason.maxLength = MAX_REASON;
    reason.placeholder = "Reason (they will read it)";
    reason.setAttribute("aria-label", `Why ${name} is removed`);
    const confirm = document.createElement("button");
    confirm.type = "submit";
    confirm.className = "danger small";
    confirm.textContent = "Remove";
    form.append(reason, confirm);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask({ action: "remove", peer: endpointId, reason: reason.value.trim() });
      form.remove();
    });
    box.append(form);
    reason.focus();
  }

  // Lock / unlock and end, under the people list.
  roomControls(show) {
    $("room-moderation")?.remove();
    if (!show) $("lobby-waiting")?.remove();
    if (!show) return;
    const box = document.createElement("div");
    box.id = "room-moderation";
    box.className = "room-moderation";
    const lock = button("Lock room", "Lock the room to new joins", () => this.ask({ action: this.locked ? "unlock" : "lock" }));
    lock.id = "lock-button";
    const end = button("End meeting", "End the meeting for everyone", () => this.ask({ action: "end" }));
    end.classList.add("danger");
    box.append(lock, end);
    $("participants").after(box);
  }

  async ask(request) {
    let reply;
    try {
      reply = await this.call.moderate(request);
    } catch (error) {
      notice(`Not done: ${error.message}`, { error: true });
      return;
    }
    if (reply.status !== "ok") notice(`Not done: ${reply.response?.reason || "refused"}`, { error: true });
  }

  // What a moderator did to us, or to the room.
  told({ action, by, reason, may_unmute: mayUnmute }) {
    const source = SOURCES[action];
    if (source) {
      this.held.add(source);
      if (source === "audio") this.meeting.setMic(true);
      else if (source === "video") this.meeting.setCamera(true);
      else this.meeting.stopScreen();
      const what = { audio: "muted your microphone", video: "stopped your camera", screen: "stopped your screen share" };
      notice(`${by} ${what[source]}.${mayUnmute === false ? " You may turn it on again once a moderator allows it." : ""}`,
        { error: true, sticky: true });
    } else if (action === "allow_unmute") {
      notice(`${by} allows you to unmute.`);  // still held: turning it on asks the server (mayUnmute)
    } else if (action === "lock" || action === "unlock") {
      this.locked = action === "lock";
      const lock = $("lock-button");
      if (lock) lock.textContent = this.locked ? "Unlock room" : "Lock room";
      notice(this.locked ? `${by} locked the room: nobody new can join.` : `${by} unlocked the room.`);
    } else if (action === "remove" || action === "end") {
      notice(action === "end" ? `${by} ended the meeting${reason ? `: ${reason}` : ""}.` : `${by} removed you${reason ? `: ${reason}` : ""}.`,
        { error: true, sticky: true });
    }
  }

  // Before our microphone (or camera) comes back after a moderator's mute: the server must let it
  // through again. Resolves false (and says why) when it will not.
  async mayUnmute(source) {
    if (!this.held.has(source) || !this.call) return true;
    const request = { action: "unmute", peer: this.call.id, source };
    const reply = await this.call.moderate(request).catch((error) => ({ response: { reason: error.message } }));
    if (reply.status !== "ok") {
      notice(reply.response?.reason || "You cannot unmute now.", { error: true });
      return false;
    }
    this.held.delete(source);
    return true;
  }
}
