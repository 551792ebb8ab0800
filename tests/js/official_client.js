// A participant made only of the official client libraries: `phoenix` for the
// channel and `@jellyfish-dev/membrane-webrtc-js` (WebRTCEndpoint) for the media
// events. Bundled with esbuild at test time; the test reads window.participant.
import { Socket } from "phoenix";
import { WebRTCEndpoint } from "@jellyfish-dev/membrane-webrtc-js";

const state = { connected: false, id: null, errors: [], ready: {}, removed: [], endpoints: {}, log: [], chat: [],
                encodings: [], bandwidth: [], rejoins: 0 };
window.participant = state;
// The client libraries report some failures only to the console (a failed offer, say): keep them for a failure message.
for (const level of ["error", "warn"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    if (state.log.length < 200) state.log.push(`console.${level}: ${args.map((a) => String(a?.message ?? a)).join(" ")}`);
    original(...args);
  };
}
// Before each try to join again: at once (the join waits on the server while the room moves), then backing off.
const REJOIN_DELAYS_MS = [0, 1000, 2000, 4000, 8000, 10000];
const TRANSIENT = ["room_unavailable", "shutting_down"];  // refusals that a later join may get past

// `options.simulcast`: publish the camera (1280x720) as layers l, m, h, as an app on the client does.
// `options.token`: an access token, carried in the socket's connect params as an app would put it.
// `options.rejoin`: come back when the server closes the channel with `retry: true` (the room's node died, or
// the media path broke): join again on a new channel with a new WebRTCEndpoint and publish the same tracks.
window.startParticipant = async function startParticipant(url, room, name, options = {}) {
  const socket = new Socket(url, { params: options.token ? { token: options.token } : {} });
  socket.connect();
  let call = null;  // the channel and WebRTCEndpoint of the call joined now: new on each rejoin
  let stream = null;  // the camera and microphone, asked for once: a rejoin publishes the same tracks
  const closed = async (payload) => {
    // phx_close ends the channel for good (phoenix.js rejoins only after phx_error or a socket drop);
    // with "retry" the server says that joining again, with a new media connection, may well work
    if (!options.rejoin || payload?.retry !== true) return;
    state.log.push(`closed, joining again: ${payload.reason}`);
    endCall(call);
    for (let attempt = 0; ; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, REJOIN_DELAYS_MS[Math.min(attempt, REJOIN_DELAYS_MS.length - 1)]));
      try {
        call = await joinCall(socket, room, name, closed);
        state.joinedAgainAt = performance.now();  // back in the room: joined, and "connected" as a new endpoint
        break;
      } catch (error) {
        // room_unavailable (the room still moving) or shutting_down: try again; any other refusal is final
        if (!TRANSIENT.includes(error.code)) { state.errors.push(String(error)); return; }
        state.log.push(`joining again failed: ${error.message}`);
      }
    }
    await publish(call.webrtc, stream, options);
    state.publishedAgainAt = performance.now();
    state.rejoins += 1;
  };
  call = await joinCall(socket, room, name, closed);
  const size = options.simulcast ? { width: 1280, height: 720 } : { width: 320, height: 240 };
  stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: size });
  await publish(call.webrtc, stream, options);
  state.say = (text) => call.channel.push("chat", { text });
  state.setTarget = (trackId, encoding) => call.webrtc.setTargetTrackEncoding(trackId, encoding);
  state.disableEncoding = (encoding) => call.webrtc.disableTrackEncoding(state.videoTrackId, encoding);
  state.leave = () => { call.channel.leave(); socket.disconnect(); };
};

// Join `room` on a new channel of `socket` and connect a new WebRTCEndpoint through it; resolves with both
// once the server sent "connected", rejects with the refusal ("code: reason") if the join is refused.
// `closed(payload)` is called when the channel is closed: by the server's phx_close, or by leaving.
async function joinCall(socket, room, name, closed) {
  const channel = socket.channel(`room:${room}`, { displayName: name });
  const webrtc = new WebRTCEndpoint();
  state.webrtc = webrtc;
  // What a failure message needs: each media event's type both ways, the connection's states as they change.
  const note = (line) => { if (state.log.length < 200) state.log.push(`${(performance.now() / 1000).toFixed(2)} ${line}`); };
  const kind = (text) => { const e = JSON.parse(text); return e.type === "custom" ? e.data?.type : e.type; };
  webrtc.on("sendMediaEvent", (event) => { note(`> ${kind(event)}`); channel.push("mediaEvent", { data: event }); });
  channel.on("mediaEvent", (payload) => { note(`< ${kind(payload.data)}`); webrtc.receiveMediaEvent(payload.data); });
  let states = "";
  const watch = setInterval(() => {
    if (state.webrtc !== webrtc) { clearInterval(watch); return; }  // a rejoin made a new one
    const pc = webrtc.connection;
    const now = pc ? `${pc.signalingState}/${pc.iceConnectionState}/${pc.connectionState}` : "";
    if (now !== states) { states = now; note(now); }
  }, 20);
  // The room's chat rides the same channel; an app that does not listen for it never sees it.
  channel.on("chat", (message) => state.chat.push(`${message.name}: ${message.text}`));
  listen(webrtc);
  await new Promise((resolve, reject) => {
    // a refusal's code (token_expired, room_full, ...) is what an app branches on; it leads the message
    channel.join().receive("ok", resolve).receive("error", (e) => {
      channel.leave();
      reject(Object.assign(new Error(e.code ? `${e.code}: ${e.reason}` : e.reason), { code: e.code }));
    });
  });
  channel.onClose((payload) => { closed(payload); });
  const connected = new Promise((resolve) => webrtc.on("connected", (id) => { state.connected = true; state.id = id; resolve(); }));
  webrtc.connect({ displayName: name });
  await connected;
  return { channel, webrtc };
}

// The call is over (its channel closed): its endpoint's late events must not reach the app any more, its
// peer connection is closed (cleanUp alone leaves it open) and the others' videos go.
function endCall(call) {
  call.webrtc.removeAllListeners();
  const connection = call.webrtc.connection;
  call.webrtc.cleanUp();
  connection?.close();
  for (const video of document.querySelectorAll("video[data-endpoint]")) video.remove();
  Object.assign(state, { connected: false, published: false, ready: {}, endpoints: {} });
}

// Publish `stream`'s tracks through `webrtc`; the camera as layers l, m, h with `options.simulcast`.
async function publish(webrtc, stream, options) {
  for (const track of stream.getTracks()) {
    const layers = options.simulcast && track.kind === "video"
      ? { enabled: true, activeEncodings: ["l", "m", "h"], disabledEncodings: [] } : undefined;
    state[`${track.kind}TrackId`] = await webrtc.addTrack(track, stream, { kind: track.kind }, layers);
  }
  state.published = true;
}

// What the app shows of the call: the others, their videos, errors and the server's estimations.
function listen(webrtc) {
  webrtc.on("connectionError", (message) => state.errors.push(String(message)));
  webrtc.on("endpointAdded", (endpoint) => { state.endpoints[endpoint.id] = endpoint.metadata?.displayName; });
  webrtc.on("endpointRemoved", (endpoint) => { state.removed.push(endpoint.id); delete state.endpoints[endpoint.id]; });
  webrtc.on("bandwidthEstimationChanged", (estimation) => state.bandwidth.push(Number(estimation)));
  webrtc.on("trackReady", (ctx) => {
    state.ready[ctx.trackId] = { endpoint: ctx.endpoint.id, kind: ctx.track.kind, simulcastConfig: ctx.simulcastConfig };
    // encodingSwitched from the server, as the app sees it
    ctx.on("encodingChanged", (track) => state.encodings.push({ trackId: track.trackId, encoding: track.encoding, reason: track.encodingReason }));
    if (ctx.track.kind === "video") {
      const video = document.createElement("video");
      video.autoplay = true; video.muted = true; video.playsInline = true;
      video.dataset.endpoint = ctx.endpoint.id;
      video.srcObject = ctx.stream || new MediaStream([ctx.track]);
      document.body.append(video);
    }
  });
  webrtc.on("trackRemoved", (ctx) => {
    delete state.ready[ctx.trackId];
    document.querySelector(`video[data-endpoint="${ctx.endpoint.id}"]`)?.remove();
  });
}

// The width of each remote endpoint's video as decoded.
window.widthByEndpoint = function widthByEndpoint() {
  const out = {};
  for (const video of document.querySelectorAll("video[data-endpoint]")) out[video.dataset.endpoint] = video.videoWidth;
  return out;
};

// Frames decoded per remote endpoint, as the video elements show them.
window.framesByEndpoint = function framesByEndpoint() {
  const out = {};
  for (const video of document.querySelectorAll("video[data-endpoint]")) {
    out[video.dataset.endpoint] = video.getVideoPlaybackQuality().totalVideoFrames;
  }
  return out;
};

// Which ICE generation carries the media: the ufrag of the selected pair's local
// candidate, next to the ufrag of the latest local description (the client restarts
// ICE at every renegotiation; the two are equal once the server followed the restart),
// and the selected pair's remote ufrag next to the latest remote description's (the
// server's newest generation: a restart asked before the first pair was nominated
// is declined, the answer keeping the server's credentials).
window.iceGenerations = async function iceGenerations() {
  const pc = state.webrtc?.connection;
  if (!pc) return null;
  const current = /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp || "")?.[1];
  const remoteCurrent = /a=ice-ufrag:(\S+)/.exec(pc.remoteDescription?.sdp || "")?.[1];
  const stats = await pc.getStats();
  let selected = null;
  let remoteSelected = null;
  const pairs = [];  // every candidate pair, for a failure message: generation, state, checks
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      const pair = stats.get(s.selectedCandidatePairId);
      selected = stats.get(pair?.localCandidateId)?.usernameFragment || null;
      remoteSelected = stats.get(pair?.remoteCandidateId)?.usernameFragment || null;
    }
    if (s.type === "candidate-pair") {
      const local = stats.get(s.localCandidateId);
      pairs.push(`${local?.usernameFragment}/${local?.candidateType}:${s.state}` +
                 `${s.nominated ? "*" : ""} req ${s.requestsSent} res ${s.responsesReceived}`);
    }
  });
  return { current, selected, remoteCurrent, remoteSelected, pairs };
};
