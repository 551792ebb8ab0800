// The chat panel: messages (name, local time, text), an input, the unread count on the Chat button.
// Message text is only ever set with textContent: whatever anyone types is shown as text.

const $ = (id) => document.getElementById(id);
const MAX_SHOWN = 500;  // messages kept on the page in a long call; the oldest go first

function localTime(at) {
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export class ChatPanel {
  // `send(text)` resolves with the server's reply {status, response}, or rejects when not connected.
  // `panels`: the call's side panels, where the chat takes its turn.
  constructor(send, panels) {
    this.send = send;
    this.call = null;
    this.seen = new Set();  // message ids on the page, so a history sent again on rejoining adds nothing twice
    this.unread = 0;
    this.panel = $("chat-panel");
    this.list = $("chat-messages");
    this.input = $("chat-input");
    this.error = $("chat-error");
    this.button = $("chat-button");
    this.badge = $("chat-unread");
    this.panels = panels;
    panels.add("chat", this.panel, this.button, (open) => this.shown(open));
    $("chat-form").addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
    this.input.addEventListener("keydown", (event) => {
      // Enter sends; Shift+Enter starts a new line.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); this.submit(); }
    });
    this.showUnread();
  }

  get open() { return !this.panel.hidden; }

  toggle(open = !this.open) {
    if (open) this.panels.show("chat"); else this.panels.close("chat");
  }

  shown(open) {
    if (open) {
      this.unread = 0;
      this.showUnread();
      this.scrollToEnd();
      this.input.focus();
    }
  }

  showUnread() {
    this.badge.textContent = this.unread > 99 ? "99+" : String(this.unread);
    this.badge.hidden = this.unread === 0;
    this.button.setAttribute("aria-label", this.unread ? `Chat, ${this.unread} unread` : "Chat");
  }

  // The call being joined: its peer id (known once the join is accepted, new on each rejoin) marks our messages.
  joined(call) { this.call = call; }

  // The room's last messages, sent when we join: those not on the page yet are added, not counted unread.
  history(messages) {
    for (const message of Array.isArray(messages) ? messages : []) this.add(message, { unread: false });
  }

  add(message, { unread = true } = {}) {
    if (!message || typeof message.id !== "string" || this.seen.has(message.id)) return;
    this.seen.add(message.id);
    const atEnd = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    const item = document.createElement("li");
    item.className = "chat-message";
    item.dataset.id = message.id;
    const mine = this.call?.id != null && message.from === this.call.id;
    if (mine) item.classList.add("mine");
    const head = document.createElement("div");
    head.className = "chat-head";
    const name = document.createElement("span");
    name.className = "chat-name";
    name.textContent = mine ? `${message.name} (you)` : String(message.name ?? "Guest");
    const time = document.createElement("time");
    time.dateTime = String(message.at ?? "");
    time.textContent = localTime(message.at);
    head.append(name, " ", time);
    const text = document.createElement("div");
    text.className = "chat-text";
    text.textContent = String(message.text ?? "");
    item.append(head, text);
    this.list.append(item);
    while (this.list.children.length > MAX_SHOWN) {
      this.seen.delete(this.list.firstElementChild.dataset.id);
      this.list.firstElementChild.remove();
    }
    if (atEnd || mine) this.scrollToEnd();
    if (unread && !mine && !this.open) {
      this.unread += 1;
      this.showUnread();
    }
  }

  scrollToEnd() { this.list.scrollTop = this.list.scrollHeight; }

  showError(text) {
    this.error.textContent = text || "";
    this.error.hidden = !text;
  }

  async submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    this.input.value = "";
    this.showError("");
    let reply;
    try {
      reply = await this.send(text);
    } catch {
      reply = { status: "error", response: { reason: "not connected; the message was not sent" } };
    }
    if (reply?.status === "ok") return;
    // Refused: say why, and give the text back unless something new was typed meanwhile.
    const reason = reply?.response?.reason || "the message was not sent";
    this.showError(`Not sent: ${reason}.`);
    if (!this.input.value) this.input.value = text;
  }
}
