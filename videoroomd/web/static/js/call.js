// One call: the room channel, the media events of the Membrane RTC Engine, and one RTCPeerConnection.
// The client always offers; the server answers. Events for the page are dispatched on the Call:
//   endpoint-added/-updated/-removed {endpoint}, track-ready {endpointId, trackId, kind, track},
//   track-removed {endpointId, trackId}, track-updated {endpointId, trackId, metadata},
//   tracks-changed {endpointId} (a track came, went or changed its metadata),
//   speaking {endpointId, trackId, speaking}, closed {reason, rejoin},
//   chat {id, from, name, text, at}, chat-history {messages},
//   moderated {action, by, ...} (what a moderator did to us or the room: docs/moderation.md),
//   lobby {waiting: true, position} (our join waits for a moderator) or {waiting: [{id, name}]} (to moderators),
//   encoding {endpointId, trackId, encoding, reason} (the simulcast layer we now receive of a track),
//   bandwidth {estimation} (bits/s the server thinks it can send us).

const GATHER_TIMEOUT_MS = 3000;
// The camera as three layers when the room takes them (the join reply says "simulcast": true): a
// quarter, half and all of the 720p picture, low to high, each capped to what its size needs.
export const CAMERA_LAYERS = [
  { rid: "l", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "m", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "h", scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
];
// In a room without simulcast one stream serves everyone: a 720p camera at half size (as the page sent
// before it sent layers), a smaller one whole.
function oneStream(track) {
  return [{ scaleResolutionDownBy: (track.getSettings?.().height ?? 0) >= 720 ? 2 : 1 }];
}

function custom(type, data) {
  return data === undefined ? { type: "custom", data: { type } } : { type: "custom", data: { type, data } };
}

export class Call extends EventTarget {
  // relay: null, or "udp" / "tcp" / "tls" to reach the media only through the daemon's
  // TURN server over that transport (a network that lets nothing else out; for trying it).
  constructor(socket, room, { relay = null } = {}) {
    super();
    this.socket = socket;
    this.room = room;
    this.relay = relay;
    this.channel = null;
    this.id = null;
    this.pc = null;
    this.local = new Map();       // our track id -> {track, kind, metadata, transceiver}
    this.endpoints = new Map();   // endpoint id -> {id, metadata, tracks: Map(trackId -> {kind?, metadata})}
    this.midToTrackId = {};
    this.trackOwner = new Map();  // remote track id -> endpoint id
    this.remoteTracks = new Map(); // remote track id -> the MediaStreamTrack it arrived as
    this.simulcast = false;       // whether the room takes our camera as layers (from the join reply)
    this.targets = new Map();     // remote track id -> the layer last asked for
    this.bandwidth = null;        // the server's last estimate of what it can send us, bits/s
    this.connected = null;
  }

  // Joins the room and connects to its engine; rejects with the server's reason.
  // `muted` {audio, video}: tracks that start muted (the others see so from the start).
  async join({ name, password, token, stream, muted = {} }) {
    const params = { displayName: name };
    if (password) params.password = password;
    if (token) params.token = token;  // in the join payload, never in a URL that could be logged
    this.channel = await this.socket.join(`room:${this.room}`, params, (event, payload) => this.onChannel(event, payload));
    this.id = this.channel.response.peer_id;
    this.simulcast = this.channel.response.simulcast === true;
    this.moderator = this.channel.response.moderator === true;
    for (const track of stream ? stream.getTracks() : []) {
      const off = !!muted[track.kind];
      track.enabled = !off;
      this.local.set(`${this.id}:${crypto.randomUUID()}`, { track, kind: track.kind, metadata: { kind: track.kind, muted: off } });
    }
    const connected = new Promise((resolve) => { this.connected = resolve; });
    this.send({ type: "connect", data: { metadata: { displayName: name } } });
    await connected;
    if (this.local.size) this.send(custom("renegotiateTracks"));
  }

  send(event) { this.channel?.push("mediaEvent", { data: JSON.stringify(event) }); }

  // Sends a chat message to everyone in the room; resolves with the server's reply.
  sendChat(text) {
    if (!this.channel) return Promise.reject(new Error("not connected"));
    return this.channel.request("chat", { text });
  }

  // A moderation request (docs/moderation.md); resolves with the server's reply, rejects with its refusal.
  moderate(request) {
    if (!this.channel) return Promise.reject(new Error("not connected"));
    return this.channel.request("moderate", request);
  }

  onChannel(event, payload) {
    if (event === "mediaEvent") {
      let message;
      try { message = JSON.parse(payload.data); } catch { return; }
      this.onMediaEvent(message).catch((error) => console.error("media event failed", error));
    } else if (event === "chat") {
      this.emit("chat", payload);
    } else if (event === "chat_history") {
      this.emit("chat-history", payload);
    } else if (event === "moderated" || event === "lobby") {
      this.emit(event, payload);
    } else if (event === "phx_error" || event === "phx_close") {
      // phx_error: the room restarted; "retry": our media path broke. Either way, joining again may work.
      const rejoin = event === "phx_error" || payload?.retry === true;
      this.dispatchEvent(new CustomEvent("closed", { detail: { reason: payload?.reason || "the room closed", rejoin } }));
    }
  }

  emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { detail })); }

  async onMediaEvent(message) {
    let { type, data } = message;
    if (type === "custom") ({ type, data } = data);
    switch (type) {
      case "connected":
        for (const other of data.otherEndpoints) {
          this.addEndpoint(other);
          for (const [trackId, track] of Object.entries(other.tracks || {})) this.addTrack(other.id, trackId, track.metadata, track.simulcastConfig);
        }
        this.connected?.();
        break;
      case "endpointAdded": this.addEndpoint(data); break;
      case "endpointUpdated": {
        const endpoint = this.endpoints.get(data.id);
        if (endpoint) { endpoint.metadata = data.metadata; this.emit("endpoint-updated", { endpoint }); }
        break;
      }
      case "endpointRemoved": {
        const endpoint = this.endpoints.get(data.id);
        if (data.id === this.id) { this.emit("closed", { reason: "removed from the room", rejoin: false }); break; }
        if (!endpoint) break;
        for (const trackId of endpoint.tracks.keys()) this.removeTrack(data.id, trackId);
        this.endpoints.delete(data.id);
        this.emit("endpoint-removed", { endpoint });
        break;
      }
      case "tracksAdded":
        for (const [trackId, track] of Object.entries(data.tracks)) this.addTrack(data.endpointId, trackId, track.metadata, track.simulcastConfig);
        break;
      case "tracksRemoved":
        for (const trackId of data.trackIds) this.removeTrack(data.endpointId, trackId);
        break;
      case "trackUpdated": {
        const track = this.endpoints.get(data.endpointId)?.tracks.get(data.trackId);
        if (track) {
          track.metadata = data.metadata || {};
          this.emit("track-updated", { endpointId: data.endpointId, trackId: data.trackId, metadata: track.metadata });
          this.emit("tracks-changed", { endpointId: data.endpointId });
        }
        break;
      }
      case "offerData": await this.offer(data); break;
      case "sdpAnswer":
        this.midToTrackId = data.midToTrackId;
        await this.pc.setRemoteDescription({ type: "answer", sdp: data.sdp });
        break;
      case "candidate":
        if (this.pc && data.candidate) await this.pc.addIceCandidate({ candidate: data.candidate, sdpMLineIndex: data.sdpMLineIndex ?? 0 });
        break;
      case "vadNotification": {
        const endpointId = this.trackOwner.get(data.trackId);
        if (endpointId) this.emit("speaking", { endpointId, trackId: data.trackId, speaking: data.status === "speech" });
        break;
      }
      case "trackEncodingEnabled":
      case "trackEncodingDisabled": {
        // Kept current so that a layer the publisher turned off is not asked for.
        const track = this.endpoints.get(data.endpointId)?.tracks.get(data.trackId);
        const config = track?.simulcast;
        if (!config?.enabled) break;
        const on = type === "trackEncodingEnabled";
        const all = [...config.activeEncodings, ...config.disabledEncodings];
        config.disabledEncodings = all.filter((e) => (e === data.encoding ? !on : config.disabledEncodings.includes(e)));
        config.activeEncodings = all.filter((e) => !config.disabledEncodings.includes(e));
        break;
      }
      case "encodingSwitched": {
        const track = this.endpoints.get(data.endpointId)?.tracks.get(data.trackId);
        if (!track) break;
        track.encoding = data.encoding;
        track.encodingReason = data.reason;
        this.emit("encoding", { endpointId: data.endpointId, trackId: data.trackId, encoding: data.encoding, reason: data.reason });
        break;
      }
      case "bandwidthEstimation":
        this.bandwidth = Number(data.estimation);
        this.emit("bandwidth", { estimation: this.bandwidth });
        break;
      case "error":
        this.emit("closed", { reason: data.message, rejoin: false });
        break;
      case "recordingStarted": case "recordingStopped": case "recordingRefused":
        this.emit("recording", { type, data });  // js/recording.js
        break;
      default:
        break;  // events for features this page does not use (tracksPriority)
    }
  }

  addEndpoint(data) {
    if (data.id === this.id || this.endpoints.has(data.id)) return;
    const endpoint = { id: data.id, metadata: data.metadata || {}, tracks: new Map() };
    this.endpoints.set(data.id, endpoint);
    this.emit("endpoint-added", { endpoint });
  }

  addTrack(endpointId, trackId, metadata, simulcastConfig) {
    const endpoint = this.endpoints.get(endpointId);
    if (!endpoint) return;
    const simulcast = simulcastConfig?.enabled
      ? { enabled: true, activeEncodings: [...(simulcastConfig.activeEncodings || [])], disabledEncodings: [...(simulcastConfig.disabledEncodings || [])] }
      : null;
    endpoint.tracks.set(trackId, { metadata: metadata || {}, simulcast, encoding: null, encodingReason: null });
    this.trackOwner.set(trackId, endpointId);
    this.emit("tracks-changed", { endpointId });
  }

  removeTrack(endpointId, trackId) {
    const had = this.endpoints.get(endpointId)?.tracks.delete(trackId);
    this.trackOwner.delete(trackId);
    this.targets.delete(trackId);
    const track = this.remoteTracks.get(trackId);
    this.remoteTracks.delete(trackId);
    if (track) this.emit("track-removed", { endpointId, trackId, track });
    if (had) this.emit("tracks-changed", { endpointId });
  }

  // The statistics the page grades connection quality on: for each received track, its owner, its
  // metadata and its "inbound-rtp" numbers; for each track we send, the other side's "remote-inbound-rtp"
  // report. Returns {received: Map(trackId -> {endpointId, metadata, inbound}), sent: [report]}.
  async stats() {
    const received = new Map();
    const sent = [];
    const pc = this.pc;
    if (!pc) return { received, sent };
    const receivers = pc.getReceivers();
    for (const [trackId, track] of this.remoteTracks) {
      const receiver = receivers.find((r) => r.track === track);
      const endpointId = this.trackOwner.get(trackId);
      if (!receiver || !endpointId) continue;
      const report = await receiver.getStats();
      for (const entry of report.values()) {
        if (entry.type !== "inbound-rtp") continue;
        const { kind, packetsReceived, packetsLost, jitter, framesPerSecond, frameWidth, frameHeight } = entry;
        const remote = this.endpoints.get(endpointId)?.tracks.get(trackId);
        received.set(trackId, {
          endpointId, metadata: remote?.metadata || {}, encoding: remote?.encoding ?? null, simulcast: !!remote?.simulcast,
          inbound: { kind: kind ?? track.kind, packetsReceived, packetsLost, jitter, framesPerSecond, frameWidth, frameHeight },
        });
      }
    }
    for (const local of this.local.values()) {
      const sender = local.transceiver?.sender;
      if (!sender?.track || local.metadata.muted) continue;
      const report = await sender.getStats();
      for (const entry of report.values()) if (entry.type === "remote-inbound-rtp") sent.push(entry);
    }
    return { received, sent };
  }

  createConnection(turnServers) {
    const servers = (turnServers || []).filter((s) => !this.relay || s.transport === this.relay);
    const iceServers = servers.map((s) => ({
      urls: s.transport === "tls" ? `turns:${s.serverAddr}:${s.serverPort}?transport=tcp` : `turn:${s.serverAddr}:${s.serverPort}?transport=${s.transport}`,
      username: s.username, credential: s.password,
    }));
    const config = { bundlePolicy: "max-bundle", iceServers };
    if (this.relay) config.iceTransportPolicy = "relay";
    const pc = new RTCPeerConnection(config);
    pc.ontrack = (event) => {
      const trackId = this.midToTrackId[event.transceiver.mid];
      const endpointId = this.trackOwner.get(trackId);
      if (!endpointId) return;
      this.remoteTracks.set(trackId, event.track);
      this.emit("track-ready", { endpointId, trackId, kind: event.track.kind, track: event.track });
    };
    pc.onconnectionstatechange = () => {
      this.emit("media-state", { state: pc.connectionState });
    };
    this.pc = pc;
    for (const local of this.local.values()) local.transceiver = this.addSender(local);
  }

  async offer({ tracksTypes, integratedTurnServers }) {
    if (!this.pc) this.createConnection(integratedTurnServers);
    for (const kind of ["audio", "video"]) {
      const have = this.pc.getTransceivers().filter((t) => t.direction === "recvonly" && t.receiver.track.kind === kind).length;
      for (let i = have; i < (tracksTypes[kind] || 0); i += 1) this.pc.addTransceiver(kind, { direction: "recvonly" });
    }
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await this.gathered();
    const midToTrackId = {};
    const metadata = {};
    for (const [trackId, local] of this.local) {
      if (local.transceiver?.mid != null) { midToTrackId[local.transceiver.mid] = trackId; metadata[trackId] = local.metadata; }
    }
    this.send(custom("sdpOffer", {
      sdpOffer: { type: "offer", sdp: this.pc.localDescription.sdp },
      trackIdToTrackMetadata: metadata, trackIdToTrackBitrates: {}, midToTrackId,
    }));
  }

  // The transceiver that sends one of our tracks: the camera in layers when the room takes them.
  addSender(local) {
    const camera = local.kind === "video" && local.metadata.type !== "screen";
    if (!camera) return this.pc.addTransceiver(local.track, { direction: "sendonly" });
    const sendEncodings = this.simulcast ? CAMERA_LAYERS.map((e) => ({ ...e })) : oneStream(local.track);
    return this.pc.addTransceiver(local.track, { direction: "sendonly", sendEncodings });
  }

  // Asks the server for at most `layer` ("l", "m" or "h") of a remote simulcast track; returns whether it
  // asked (not for a track sent as one stream, a layer the track does not have, or the layer already asked
  // for). A layer its publisher turned off may be asked for: the server sends the best one below meanwhile.
  setTargetLayer(trackId, layer) {
    const endpointId = this.trackOwner.get(trackId);
    const config = this.endpoints.get(endpointId)?.tracks.get(trackId)?.simulcast;
    if (!config?.enabled || this.targets.get(trackId) === layer) return false;
    if (!config.activeEncodings.includes(layer) && !config.disabledEncodings.includes(layer)) return false;
    this.targets.set(trackId, layer);
    this.send(custom("setTargetTrackVariant", { trackId, variant: layer }));
    return true;
  }

  // Waits (briefly) for ICE gathering, so the offer carries our candidates.
  gathered() {
    if (this.pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (this.pc.iceGatheringState === "complete") { this.pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
      this.pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, GATHER_TIMEOUT_MS);
    });
  }

  localTrack(kind) {
    for (const [trackId, local] of this.local) if (local.kind === kind && local.metadata.type !== "screen") return { trackId, local };
    return null;
  }

  // Mutes or unmutes our `kind` track; the others see it through the track's metadata.
  setMuted(kind, muted) {
    const found = this.localTrack(kind);
    if (!found) return;
    found.local.track.enabled = !muted;
    found.local.metadata = { ...found.local.metadata, muted };
    if (found.local.transceiver?.mid != null) {
      this.send({ type: "updateTrackMetadata", data: { trackId: found.trackId, trackMetadata: found.local.metadata } });
    }
  }

  // Publishes `track` (from getDisplayMedia) as a second video track whose metadata says it is a screen.
  shareScreen(track) {
    const trackId = `${this.id}:${crypto.randomUUID()}`;
    const local = { track, kind: "video", metadata: { kind: "video", type: "screen", muted: false } };
    this.local.set(trackId, local);
    // Without a peer connection yet, the first offer adds every local track.
    if (this.pc) local.transceiver = this.addSender(local);
    this.send(custom("renegotiateTracks"));
    return trackId;
  }

  // Stops publishing the screen: its m-line goes inactive in the next offer and the server tells the others.
  stopScreen() {
    for (const [trackId, local] of this.local) {
      if (local.metadata.type !== "screen") continue;
      this.local.delete(trackId);
      if (this.pc && local.transceiver) {
        try { this.pc.removeTrack(local.transceiver.sender); } catch { /* the connection is closing */ }
      }
      this.send(custom("renegotiateTracks"));
    }
  }

  // Swaps our `kind` track for `track` (another camera or microphone) without renegotiating.
  async replaceTrack(kind, track) {
    const found = this.localTrack(kind);
    if (!found) return;
    track.enabled = !found.local.metadata.muted;
    await found.local.transceiver?.sender.replaceTrack(track);
    found.local.track.stop();
    found.local.track = track;
  }

  // Leaves: the server is told first, then the media connection closes at once, without waiting for its
  // answer. Resolves once the server answered or the channel stopped waiting (phoenix.js); never rejects.
  leave() {
    const told = this.channel ? this.channel.leave() : Promise.resolve();
    this.close();
    return told;
  }

  close() {
    this.pc?.close();
    this.pc = null;
    this.channel = null;
  }
}
