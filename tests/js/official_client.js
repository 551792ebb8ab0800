// A participant made only of the official client libraries: `phoenix` for the
// channel and `@jellyfish-dev/membrane-webrtc-js` (WebRTCEndpoint) for the media
// events. Bundled with esbuild at test time; the test reads window.participant.
import { Socket } from "phoenix";
import { WebRTCEndpoint } from "@jellyfish-dev/membrane-webrtc-js";

const state = { connected: false, id: null, errors: [], ready: {}, removed: [], endpoints: {}, log: [], chat: [],
                encodings: [], bandwidth: [] };
window.participant = state;

// `options.simulcast`: publish the camera (1280x720) as layers l, m, h, as an app on the client does.
window.startParticipant = async function startParticipant(url, room, name, options = {}) {
  const socket = new Socket(url, { params: {} });
  socket.connect();
  const channel = socket.channel(`room:${room}`, { displayName: name });
  const webrtc = new WebRTCEndpoint();
  state.webrtc = webrtc;
  // What a failure message needs: each media event's type both ways, the connection's states as they change.
  const note = (line) => { if (state.log.length < 200) state.log.push(`${(performance.now() / 1000).toFixed(2)} ${line}`); };
  const kind = (text) => { const e = JSON.parse(text); return e.type === "custom" ? e.data?.type : e.type; };
  webrtc.on("sendMediaEvent", (event) => { note(`> ${kind(event)}`); channel.push("mediaEvent", { data: event }); });
  channel.on("mediaEvent", (payload) => { note(`< ${kind(payload.data)}`); webrtc.receiveMediaEvent(payload.data); });
  let states = "";
  setInterval(() => {
    const pc = webrtc.connection;
    const now = pc ? `${pc.signalingState}/${pc.iceConnectionState}/${pc.connectionState}` : "";
    if (now !== states) { states = now; note(now); }
  }, 20);
  // The room's chat rides the same channel; an app that does not listen for it never sees it.
  channel.on("chat", (message) => state.chat.push(`${message.name}: ${message.text}`));
  state.say = (text) => channel.push("chat", { text });
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
  await new Promise((resolve, reject) => {
    channel.join().receive("ok", resolve).receive("error", (e) => { channel.leave(); reject(new Error(e.reason)); });
  });
  const connected = new Promise((resolve) => webrtc.on("connected", (id) => { state.connected = true; state.id = id; resolve(); }));
  webrtc.connect({ displayName: name });
  await connected;
  const size = options.simulcast ? { width: 1280, height: 720 } : { width: 320, height: 240 };
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: size });
  for (const track of stream.getTracks()) {
    const layers = options.simulcast && track.kind === "video"
      ? { enabled: true, activeEncodings: ["l", "m", "h"], disabledEncodings: [] } : undefined;
    state[`${track.kind}TrackId`] = await webrtc.addTrack(track, stream, { kind: track.kind }, layers);
  }
  state.setTarget = (trackId, encoding) => webrtc.setTargetTrackEncoding(trackId, encoding);
  state.disableEncoding = (encoding) => webrtc.disableTrackEncoding(state.videoTrackId, encoding);
  state.published = true;
  state.leave = () => { channel.leave(); socket.disconnect(); };
};

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
// candidate, next to the ufrag of the latest local description. The client restarts
// ICE at every renegotiation; the two are equal once the server followed the restart.
window.iceGenerations = async function iceGenerations() {
  const pc = state.webrtc?.connection;
  if (!pc) return null;
  const current = /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp || "")?.[1];
  const stats = await pc.getStats();
  let selected = null;
  const pairs = [];  // every candidate pair, for a failure message: generation, state, checks
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      const pair = stats.get(s.selectedCandidatePairId);
      selected = stats.get(pair?.localCandidateId)?.usernameFragment || null;
    }
    if (s.type === "candidate-pair") {
      const local = stats.get(s.localCandidateId);
      pairs.push(`${local?.usernameFragment}/${local?.candidateType}:${s.state}` +
                 `${s.nominated ? "*" : ""} req ${s.requestsSent} res ${s.responsesReceived}`);
    }
  });
  return { current, selected, pairs };
};
