// The official phoenix npm client joining a token room, the access token in its socket params
// (where phoenix.js puts them: the socket URL's query) and then in its join params.
// Prints one JSON line per join, for tests/browser/test_phoenix_token_npm.py to check.
// Usage: node --experimental-websocket phoenix_token.mjs PHOENIX_MJS URL TOKEN
const [phoenixPath, url, token] = process.argv.slice(2);
const { Socket } = await import(phoenixPath);

const say = (what) => console.log(JSON.stringify(what));
const timeout = setTimeout(() => { say({ event: "timeout" }); process.exit(2); }, 15000);

async function join(socketOptions, params) {
  const socket = new Socket(url, socketOptions);
  socket.connect();
  const result = await new Promise((resolve) => {
    const channel = socket.channel("room:class", params);
    channel.join()
      .receive("ok", (response) => resolve({ status: "ok", response }))
      .receive("error", (response) => { channel.leave(); resolve({ status: "error", response }); })
      .receive("timeout", () => resolve({ status: "timeout" }));
  });
  socket.disconnect();
  return result;
}

say({ via: "socket params", ...(await join({ params: { token } }, { displayName: "Node" })) });
say({ via: "none", ...(await join({}, { displayName: "Node" })) });
say({ via: "join params", ...(await join({}, { token })) });
clearTimeout(timeout);
process.exit(0);
