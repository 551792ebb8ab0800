// Runs in the daemon's web page before its own scripts (Playwright add_init_script).
// It changes nothing the page does: it keeps a reference to each RTCPeerConnection,
// reads the frames going by on the WebSocket (when phx_join left, own endpoint id,
// which mid carries which track, each encodingSwitched with when it came), and notes when
// each incoming video first had a frame and when its decoded width changed.
(() => {
  const now = () => performance.timeOrigin + performance.now(); // ms since the epoch
  const probe = (window.__bench = { pcs: [], id: null, joinSent: null, own: {}, remote: {}, first: {}, firstKey: {}, states: [],
                                  switches: [], widths: {}, estimate: null });

  const NativePC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends NativePC {
    constructor(...args) {
      super(...args);
      probe.pcs.push(this);
      this.addEventListener("connectionstatechange", () => probe.states.push([now(), this.connectionState]));
      this.addEventListener("iceconnectionstatechange", () => probe.states.push([now(), "ice-" + this.iceConnectionState]));
    }
  };

  function look(text, outgoing) {
    let frame, event;
    try { frame = JSON.parse(text); } catch { return; }
    if (!Array.isArray(frame)) return;
    if (outgoing && frame[3] === "phx_join" && probe.joinSent == null) probe.joinSent = now();
    if (frame[3] !== "mediaEvent") return;
    try { event = JSON.parse(frame[4].data); } catch { return; }
    let { type, data } = event;
    if (type === "custom") ({ type, data } = data);
    if (!outgoing && type === "connected") probe.id = data.id;
    if (outgoing && type === "sdpOffer") probe.own = data.midToTrackId;
    if (!outgoing && type === "sdpAnswer") probe.remote = data.midToTrackId;
    if (!outgoing && type === "bandwidthEstimation") probe.estimate = Number(data.estimation);
    if (!outgoing && type === "encodingSwitched" && probe.switches.length < 10000)
      probe.switches.push([now(), data.trackId, data.encoding, data.reason]);
  }
  const NativeWS = window.WebSocket;
  window.WebSocket = class extends NativeWS {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => look(e.data, false));
    }
    send(data) { look(data, true); super.send(data); }
  };

  // First frames, and each change of a video's decoded width, to within the polling interval.
  setInterval(async () => {
    for (const pc of probe.pcs) {
      if (pc.connectionState === "closed") continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type !== "inbound-rtp" || s.kind !== "video" || s.mid == null) return;
        if (s.framesReceived > 0 && !(s.mid in probe.first)) probe.first[s.mid] = now();
        if (s.keyFramesDecoded > 0 && !(s.mid in probe.firstKey)) probe.firstKey[s.mid] = now();
        const widths = (probe.widths[s.mid] ??= []);
        if (s.frameWidth && widths.at(-1)?.[1] !== s.frameWidth && widths.length < 1000) widths.push([now(), s.frameWidth]);
      });
    }
  }, 50);

  // What bench.bot's "snap" reports, from the browser's own statistics.
  window.__benchSnap = async () => {
    const received = {}, sent = {}, layers = {};
    let sendEstimate = null;
    for (const pc of probe.pcs) {
      const lostAtServer = {};
      const stats = await pc.getStats();
      const fractionAtServer = {};
      stats.forEach((s) => {
        if (s.type !== "remote-inbound-rtp") return;
        lostAtServer[s.localId] = s.packetsLost || 0;
        fractionAtServer[s.localId] = s.fractionLost ?? null;
      });
      stats.forEach((s) => {
        if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.availableOutgoingBitrate != null)
          sendEstimate = s.availableOutgoingBitrate;
      });
      stats.forEach((s) => {
        if (s.type === "inbound-rtp" && s.mid != null) {
          received[s.mid] = {
            track: probe.remote[s.mid] ?? null, kind: s.kind, packets: s.packetsReceived, lost: s.packetsLost,
            frames: s.kind === "video" ? s.framesReceived || 0 : s.packetsReceived, keyframes: s.keyFramesDecoded || 0,
            bytes: s.bytesReceived, first: probe.first[s.mid] ?? null,
            first_keyframe: probe.firstKey[s.mid] ?? null, jitter_ms: s.jitter * 1000,
            width: s.frameWidth || 0, height: s.frameHeight || 0, widths: probe.widths[s.mid] || [],
          };
        }
        if (s.type === "outbound-rtp") {
          // A camera sent in layers has one outbound-rtp per layer (rid): every layer carries the same
          // frames, so frames are the most any layer sent; packets and the rest add up.
          const one = {
            frames: s.kind === "video" ? s.framesSent || 0 : s.packetsSent, packets: s.packetsSent, nacked: s.nackCount || 0,
            keyframe_requests: (s.pliCount || 0) + (s.firCount || 0), lost_at_server: lostAtServer[s.id] || 0,
          };
          const had = sent[s.kind];
          sent[s.kind] = !had ? one : {
            frames: Math.max(had.frames, one.frames), packets: had.packets + one.packets, nacked: had.nacked + one.nacked,
            keyframe_requests: had.keyframe_requests + one.keyframe_requests, lost_at_server: had.lost_at_server + one.lost_at_server,
          };
          if (s.kind === "video" && s.rid) {
            layers[s.rid] = { frames: s.framesSent || 0, width: s.frameWidth || 0, bytes: s.bytesSent || 0,
                              limited_by: s.qualityLimitationReason ?? null, target_bps: s.targetBitrate ?? null,
                              nacks: s.nackCount || 0, plis: s.pliCount || 0,
                              lost_at_server: lostAtServer[s.id] || 0, fraction_lost_at_server: fractionAtServer[s.id] ?? null };
          }
        }
      });
    }
    // sendEstimate: what this browser thinks it may send (its own estimate, from the server's REMB);
    // serverEstimate: what the server last said it can send this browser (bandwidthEstimation).
    return { received, sent, layers, states: probe.states, switches: probe.switches,
             estimates: { send_bps: sendEstimate, server_bps: probe.estimate } };
  };

  // Own endpoint id and track ids by kind, once the first offer went out.
  window.__benchJoined = () => {
    const pc = probe.pcs[0];
    if (!probe.id || !pc) return null;
    const tracks = {};
    for (const t of pc.getTransceivers()) {
      const id = probe.own[t.mid];
      if (id && t.sender.track) tracks[t.sender.track.kind] = id;
    }
    return tracks.audio && tracks.video ? { id: probe.id, tracks, joinSent: probe.joinSent } : null;
  };
})();
