// A Phoenix Channels client (JSON serializer v2): frames [join_ref, ref, topic, event, payload].
// Enough for one room channel per socket: join with a reply, pushes both ways, heartbeat.

const HEARTBEAT_MS = 30000;
const REPLY_TIMEOUT_MS = 10000;
const LEAVE_REPLY_MS = 2000;  // a page that left waits no longer for the server's "ok" before closing the socket
const LOBBY_WAIT_MS = 660000;  // a join waiting in a waiting room: the server answers within 10 minutes

export class SocketClosed extends Error {}

export class PhoenixSocket extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ref = 0;
    this.replies = new Map();   // ref -> {resolve, reject, timer}
    this.handlers = new Map();  // topic -> (event, payload) => void
    this.ws = null;
    this.heartbeat = null;
  }

  nextRef() { this.ref += 1; return String(this.ref); }

  // Resolves once open; rejects if the connection cannot be made.
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${this.url}?vsn=2.0.0`);
      this.ws = ws;
      ws.onopen = () => {
        this.heartbeat = setInterval(() => this.send(null, "phoenix", "heartbeat", {}).catch(() => {}), HEARTBEAT_MS);
        resolve();
      };
      ws.onerror = () => reject(new SocketClosed("could not reach the server"));
      ws.onmessage = (message) => this.receive(message.data);
      ws.onclose = (close) => {
        clearInterval(this.heartbeat);
        for (const { reject: fail, timer } of this.replies.values()) { clearTimeout(timer); fail(new SocketClosed("connection closed")); }
        this.replies.clear();
        this.dispatchEvent(new CustomEvent("close", { detail: { code: close.code, reason: close.reason } }));
      };
    });
  }

  receive(text) {
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    if (!Array.isArray(frame) || frame.length !== 5) return;
    const [, ref, topic, event, payload] = frame;
    if (event === "phx_reply" && this.replies.has(ref)) {
      const { resolve, timer } = this.replies.get(ref);
      clearTimeout(timer);
      this.replies.delete(ref);
      resolve(payload);
      return;
    }
    const handler = this.handlers.get(topic);
    if (handler) handler(event, payload);
  }

  // Sends a frame; resolves with the reply {status, response} when `expectReply`.
  send(joinRef, topic, event, payload, expectReply = true, ref = this.nextRef()) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new SocketClosed("not connected"));
    this.ws.send(JSON.stringify([joinRef, ref, topic, event, payload]));
    if (!expectReply) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.replies.delete(ref); reject(new SocketClosed("the server did not answer")); }, REPLY_TIMEOUT_MS);
      this.replies.set(ref, { resolve, reject, timer });
    });
  }

  // Joins `topic`; resolves with the channel, or rejects with the server's {reason, code}.
  async join(topic, params, onMessage) {
    const joinRef = this.nextRef();  // a join's join_ref is its own ref
    this.handlers.set(topic, (event, payload) => {
      if (event === "lobby" && payload?.waiting === true) this.wait(joinRef, LOBBY_WAIT_MS);  // docs/moderation.md
      onMessage(event, payload);
    });
    const reply = await this.send(joinRef, topic, "phx_join", params, true, joinRef);
    if (reply.status !== "ok") {
      this.handlers.delete(topic);
      const error = new Error(reply.response?.reason || "the room refused to let you in");
      error.code = reply.response?.code;
      throw error;
    }
    return new Channel(this, topic, joinRef, reply.response);
  }

  // The reply to `ref` may take `ms` from now (the server said it waits for someone).
  wait(ref, ms) {
    const pending = this.replies.get(ref);
    if (!pending) return;
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => { this.replies.delete(ref); pending.reject(new SocketClosed("the server did not answer")); }, ms);
  }

  close() {
    clearInterval(this.heartbeat);
    if (this.ws) { this.ws.onclose = null; this.ws.close(1000, "bye"); }
  }
}

export class Channel {
  constructor(socket, topic, joinRef, response) {
    this.socket = socket;
    this.topic = topic;
    this.joinRef = joinRef;
    this.response = response;
  }

  push(event, payload) {
    return this.socket.send(this.joinRef, this.topic, event, payload, false);
  }

  // Pushes and resolves with the server's reply {status, response}.
  request(event, payload) {
    return this.socket.send(this.joinRef, this.topic, event, payload, true);
  }

  // Tells the server we leave. What it pushes on the topic from now on is dropped: the call is over here.
  // Resolves on its reply, or `ms` without one, or at once without a connection; never rejects.
  async leave(ms = LEAVE_REPLY_MS) {
    this.socket.handlers.delete(this.topic);
    const reply = this.socket.send(this.joinRef, this.topic, "phx_leave", {}).catch(() => null);
    let timer;
    const late = new Promise((resolve) => { timer = setTimeout(resolve, ms); });
    await Promise.race([reply, late]);
    clearTimeout(timer);
  }
}
