// Drives the official phoenix npm client against a running daemon and prints
// one JSON line per observation, for tests/test_phoenix_npm.py to check.
// Usage: node --experimental-websocket phoenix_client.mjs PHOENIX_MJS URL
const [phoenixPath, url] = process.argv.slice(2);
const { Socket } = await import(phoenixPath);

const say = (what) => console.log(JSON.stringify(what));
const timeout = setTimeout(() => { say({ event: "timeout" }); process.exit(2); }, 15000);

function join(socket, topic, params) {
  return new Promise((resolve) => {
    const channel = socket.channel(topic, params);
    channel.join()
      .receive("ok", (response) => resolve({ channel, status: "ok", response }))
      .receive("error", (response) => { channel.leave(); resolve({ channel, status: "error", response }); })
      .receive("timeout", () => resolve({ channel, status: "timeout" }));
  });
}

const socket = new Socket(url, { heartbeatIntervalMs: 200 });
let heartbeats = 0;
socket.onMessage((message) => { if (message.topic === "phoenix" && message.event === "phx_reply") heartbeats++; });
socket.connect();

const first = await join(socket, "room:lobby", { displayName: "Node" });
say({ event: "join", room: "lobby", status: first.status, response: first.response });

// One room per connection: the refused join goes over a second socket.
const second = new Socket(url);
second.connect();
const refused = await join(second, "room:board", { displayName: "Node", password: "wrong" });
say({ event: "join", room: "board", status: refused.status, response: refused.response });
second.disconnect();

// A second socket sees the first one's media events only through the engine; here we
// check that mediaEvent pushes are accepted and the channel stays joined.
first.channel.push("mediaEvent", { data: JSON.stringify({ type: "connect", data: { metadata: { displayName: "Node" } } }) });
const connected = await new Promise((resolve) => {
  first.channel.on("mediaEvent", (payload) => resolve(JSON.parse(payload.data)));
  setTimeout(() => resolve(null), 3000);
});
say({ event: "mediaEvent", data: connected });

await new Promise((resolve) => setTimeout(resolve, 700));
say({ event: "heartbeats", count: heartbeats });

await new Promise((resolve) => first.channel.leave().receive("ok", resolve));
say({ event: "left", state: first.channel.state });
socket.disconnect();
clearTimeout(timeout);
