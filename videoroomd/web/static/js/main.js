// The page: the room list at "/", the join screen and the call at "/room/NAME".
import { Call } from "./call.js";
import { ChatPanel } from "./chat.js";
import { PhoenixSocket } from "./phoenix.js";
import { PreJoin, currentDevice, fillDevices, switchDevice } from "./prejoin.js";
import { SteadyReports, inboundReport, layerReport, outboundReport, worstReport } from "./quality.js";
import { bindShortcuts } from "./shortcuts.js";
import { StatsPanel, statsRows } from "./stats.js";
import { copyLink } from "./copylink.js";
import { Moderation } from "./moderation.js";
import { RecordingControl, showJoinRecording } from "./recording.js";
import { decorate } from "./icons.js";
import { confirmLeave, showLeft } from "./leaving.js";
import { NAME_KEY, fetchRooms, lobby, rememberedName } from "./lobby.js";
import { localMedia, screenRefusal } from "./media.js";
import { PHONE, SidePanels } from "./panels.js";
import { REFUSALS, UNKNOWN_ROOM } from "./refusals.js";
import { takeToken, tokenName } from "./token.js";
import { Tiles, clearNotice, joinMessage, notice, show } from "./ui.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const TOKEN = takeToken(params);
const RECONNECT_DELAYS_MS = [1000, 2000, 4000, 8000, 10000];
const QUALITY_INTERVAL_MS = 2000;

function socketUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/socket/websocket`;
}

// -- joining -----------------------------------------------------------------------------
async function joinScreen(room) {
  show("join");
  document.title = `${room} · videoroomd`;
  $("join-room").textContent = room;
  $("room-title").textContent = room;
  $("copy-link").hidden = false;
  $("copy-link").addEventListener("click", () => copyLink(room));
  $("join-name").value = (TOKEN && tokenName(TOKEN)) || rememberedName(params);
  $("join-name").required = !TOKEN;
  $("join-name").addEventListener("input", () => localStorage.setItem(NAME_KEY, $("join-name").value.trim()));
  $("join-muted").checked = params.get("muted") === "1";
  $("join-camera-off").checked = params.get("camera") === "off";
  const { rooms, dynamic_rooms: dynamic, failed } = await fetchRooms();
  const known = rooms.find((r) => r.name === room);
  if (!known && !dynamic && !failed && !TOKEN) {
    // Nothing to join here: say so, and neither start the camera nor offer a form that cannot work.
    $("join-form").hidden = true;
    document.querySelector(".preview-box").hidden = true;
    $("join-elsewhere").hidden = false;
    joinMessage(UNKNOWN_ROOM);
    return;
  }
  $("password-field").hidden = !known?.password;
  showJoinRecording(known);
  const media = await localMedia();
  const preJoin = new PreJoin(media.stream);
  if (media.problem) joinMessage(media.problem);
  const meeting = new Meeting(room, media.stream, media.problem, preJoin);
  meeting.recording = new RecordingControl(known?.recording, notice);
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    meeting.start($("join-name").value.trim(), $("join-password").value);
  });
  $("join-button").disabled = false;  // (disabled in the markup: a click before this would reload the page)
  if (params.get("autojoin") === "1" && ($("join-name").value.trim() || TOKEN)) {
    meeting.start($("join-name").value.trim(), params.get("password") || "");
  }
}

// -- the call ----------------------------------------------------------------------------
class Meeting {
  constructor(room, stream, mediaProblem, preJoin) {
    this.room = room;
    this.preJoin = preJoin;
    this.stream = stream;
    this.mediaProblem = mediaProblem;
    this.tiles = new Tiles();
    this.tiles.onlayers = () => this.applyLayers();
    this.stats = new StatsPanel();
    this.stats.onopen = (open) => { if (open) this.showStats(); };
    this.lastStats = null;  // what the last quality sample found, for the stats view
    this.panels = new SidePanels();
    this.panels.add("people", $("people-panel"), $("people-button"));
    this.chat = new ChatPanel((text) => (this.call ? this.call.sendChat(text) : Promise.reject(new Error("not connected"))), this.panels);
    this.stats.panels = this.panels;
    this.panels.onchange = () => this.stats.showPressed();
    this.call = null;
    this.socket = null;
    this.micMuted = false;
    this.cameraOff = false;
    this.leaving = false;
    this.screen = null;  // the shared screen's track, while sharing
    this.reconnecting = false;
    this.moderation = new Moderation(this);
    this.wireControls();
  }

  async start(name, password) {
    if (!name && !TOKEN) { joinMessage("Type a name first."); return; }
    name = name || "Me";
    localStorage.setItem(NAME_KEY, name);
    this.name = name;
    this.password = password;
    const { micMuted, cameraOff } = this.preJoin.choices;
    this.setMic(micMuted);
    this.setCamera(cameraOff);
    await this.enter();
  }

  // Joins with the choices made; on a refusal, back to the join screen, which says why.
  async enter() {
    $("join-button").disabled = true;
    try {
      await this.connect();
    } catch (error) {
      $("join-button").disabled = false;
      this.refused(error);
      return;
    }
    joinMessage("");
    this.preJoin.done();
    show("call");
    if (this.panels.current === null && !matchMedia(PHONE).matches) this.panels.show("people");
    $("join-button").disabled = false;
    if (this.mediaProblem) notice(this.mediaProblem, { error: true });  // the "Camera off" badge on "Me" stays
  }

  refused(error) {
    const explain = REFUSALS[error.code];
    if (error.code === "wrong_password") $("password-field").hidden = false;
    joinMessage(explain ? explain(error.message) : `Could not join: ${error.message}`);
    this.preJoin.again({ micMuted: this.micMuted, cameraOff: this.cameraOff });
    show("join");
  }

  // Opens a socket, joins, and builds the call; rejects with the server's refusal.
  async connect() {
    this.socket?.close();
    const socket = this.socket = new PhoenixSocket(socketUrl());
    await socket.open();
    if (this.socket !== socket) throw new Error("left while connecting");
    const relay = ["udp", "tcp", "tls"].includes(params.get("relay")) ? params.get("relay") : null;
    const call = new Call(socket, this.room, { relay });
    this.wireCall(call);
    this.recording?.wire(call);
    this.tiles.clear();
    this.tiles.add("me", this.name, { local: true });
    if (this.stream) this.tiles.setLocalStream(this.stream);
    this.chat.joined(call);
    await call.join({ name: this.name, password: this.password, token: TOKEN, stream: this.stream, muted: { audio: this.micMuted, video: this.cameraOff } });
    if (this.socket !== socket) { call.leave(); throw new Error("left while joining"); }  // leave() came meanwhile
    this.call = call;
    this.moderation.roomControls(call.moderator);
    this.applyLayers();
    this.tiles.setState("me", { micMuted: this.micMuted, cameraOff: this.cameraOff || !this.stream });
    if (this.screen?.readyState === "live") this.publishScreen();  // still sharing after a reconnect
    this.watchQuality(call);
    // Only the socket of the call now: one left behind (Leave, then Rejoin) may close later.
    socket.addEventListener("close", () => { if (this.socket === socket) this.lost("Connection lost"); });
    this.listDevices();
  }

  wireCall(call) {
    this.moderation.attach(call);
    call.addEventListener("endpoint-added", ({ detail: { endpoint } }) => {
      this.tiles.add(endpoint.id, endpoint.metadata?.displayName || "Guest");
      this.moderation.addControls(endpoint.id, endpoint.metadata?.displayName || "Guest");
    });
    call.addEventListener("endpoint-updated", ({ detail: { endpoint } }) => {
      this.tiles.rename(endpoint.id, endpoint.metadata?.displayName || "Guest");
    });
    call.addEventListener("chat", ({ detail }) => this.chat.add(detail));
    call.addEventListener("chat-history", ({ detail }) => this.chat.history(detail?.messages));
    call.addEventListener("endpoint-removed", ({ detail: { endpoint } }) => this.tiles.remove(endpoint.id));
    call.addEventListener("track-ready", ({ detail }) => {
      const metadata = call.endpoints.get(detail.endpointId)?.tracks.get(detail.trackId)?.metadata || {};
      // A screen, or a second video that says nothing of itself (an app on the official client
      // shares its screen so): on the stage, where the first video of the tile cannot hide it.
      const extraVideo = detail.kind === "video" && this.tiles.hasVideo(detail.endpointId);
      if (metadata.type === "screen" || extraVideo) { this.tiles.addScreen(detail.endpointId, detail.trackId, detail.track); return; }
      this.tiles.addTrack(detail.endpointId, detail.track);
      this.showState(call, detail.endpointId);
      this.applyLayers();
    });
    call.addEventListener("track-removed", ({ detail }) => {
      if (!this.tiles.stage.remove(detail.trackId)) this.tiles.removeTrack(detail.endpointId, detail.track);
    });
    call.addEventListener("tracks-changed", ({ detail }) => { this.showState(call, detail.endpointId); this.applyLayers(); });
    call.addEventListener("encoding", () => { if (this.stats.open) this.showStats(); });
    call.addEventListener("speaking", ({ detail }) => {
      // A muted microphone sends silence; never show it as speaking, even while the server's hold runs out.
      const muted = call.endpoints.get(detail.endpointId)?.tracks.get(detail.trackId)?.metadata?.muted;
      this.tiles.speaking(detail.endpointId, detail.speaking && !muted);
    });
    call.addEventListener("closed", ({ detail }) => {
      if (this.leaving) return;
      if (detail.rejoin) this.lost(detail.reason);
      else this.ended(detail.reason);
    });
    call.addEventListener("media-state", ({ detail }) => {
      if (detail.state === "failed") { notice("The media connection failed; reconnecting…", { error: true }); this.lost("Media connection failed"); }
    });
  }

  // Muted, camera off, sharing: what the metadata of someone's tracks says (our page's tracks carry
  // {kind, muted, type}; tracks of other clients whose metadata says nothing of these show nothing).
  showState(call, endpointId) {
    const tracks = [...(call.endpoints.get(endpointId)?.tracks.values() || [])].map((t) => t.metadata || {});
    const own = (kind) => tracks.filter((m) => m.kind === kind && m.type !== "screen");
    const micMuted = own("audio").some((m) => m.muted);
    this.tiles.setState(endpointId, {
      micMuted, cameraOff: own("video").some((m) => m.muted), sharing: tracks.some((m) => m.type === "screen"),
    });
    if (micMuted) this.tiles.speaking(endpointId, false);
  }

  // Asks, for each person's camera sent in layers, the layer its tile's size calls for (see wantedLayer);
  // a shared screen is shown large, so it gets the best. The call sends only what changed.
  applyLayers() {
    const call = this.call;
    if (!call) return;
    for (const [endpointId, endpoint] of call.endpoints) {
      for (const [trackId, track] of endpoint.tracks) {
        if (!track.simulcast) continue;
        const screen = track.metadata?.type === "screen" || this.tiles.stage.screens.has(trackId);
        call.setTargetLayer(trackId, screen ? "h" : this.tiles.layers.get(endpointId) ?? "h");
      }
    }
  }

  // The stats view: per tile, the layer received and how its video arrives, from the last sample.
  showStats() {
    this.stats.show(this.call ? statsRows(this.call, this.tiles.tiles, this.lastStats) : [], this.call?.bandwidth ?? null);
  }

  // Grades each person's connection every few seconds from the call's statistics, until the call is replaced.
  watchQuality(call) {
    clearInterval(this.qualityTimer);
    let previous = new Map();  // track id -> its last inbound-rtp numbers
    const steady = new SteadyReports();
    this.qualityTimer = setInterval(async () => {
      if (this.call !== call) return;
      let stats;
      try { stats = await call.stats(); } catch { return; }  // the connection closed meanwhile
      if (this.call !== call) return;
      const reports = new Map();  // endpoint id -> reports of its tracks
      const next = new Map();
      for (const [trackId, { endpointId, metadata, inbound, encoding, simulcast }] of stats.received) {
        next.set(trackId, inbound);
        // A camera that is off, or a still screen, may send nothing for a while on a fine connection.
        const still = !!metadata.muted || metadata.type === "screen";
        const reason = call.endpoints.get(endpointId)?.tracks.get(trackId)?.encodingReason;
        const layer = layerReport({ simulcast, encoding, reason, wanted: call.targets.get(trackId) ?? "h" });
        reports.set(endpointId, [...(reports.get(endpointId) || []), inboundReport(previous.get(trackId), inbound, { still }), layer]);
      }
      this.lastStats = { before: previous, after: next };
      previous = next;
      const show = (id, found) => { found = steady.judge(id, found); this.tiles.setQuality(id, found?.grade ?? null, found?.why ?? ""); };
      for (const id of this.tiles.tiles.keys()) if (id !== "me") show(id, worstReport(reports.get(id) || []));
      show("me", worstReport(stats.sent.map(outboundReport)));
      if (this.stats.open) this.showStats();
    }, QUALITY_INTERVAL_MS);
  }

  // The connection dropped (network, server restart): rejoin with backoff until it works, or until
  // the person leaves (leave() replaces this.stay: the loop ends there, even if they came back since).
  async lost(why) {
    if (this.leaving || this.reconnecting) return;
    this.reconnecting = true;
    const stay = this.stay;
    this.call?.close();
    this.call = null;
    for (let attempt = 0; this.stay === stay; attempt += 1) {
      notice(`${why} — reconnecting…`, { error: true, sticky: true });
      const delay = RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)];
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.stay !== stay) return;
      try {
        await this.connect();
        notice("Reconnected.");
        break;
      } catch (error) {
        if (this.stay !== stay) return;
        if (error.code && REFUSALS[error.code] && error.code !== "shutting_down") { this.reconnecting = false; this.refused(error); return; }
        why = error.code === "shutting_down" ? "The server is restarting" : "Connection lost";
      }
    }
    if (this.stay === stay) this.reconnecting = false;
  }

  ended(reason) {
    clearInterval(this.qualityTimer);
    this.stopScreen();
    this.call?.close();
    this.call = null;
    this.socket?.close();
    this.tiles.clear();
    this.stats.clear();
    this.preJoin.again({ micMuted: this.micMuted, cameraOff: this.cameraOff });
    show("join");
    joinMessage(`The call ended: ${reason}.`);
  }

  wireControls() {
    $("mic-button").addEventListener("click", () => this.toggleMic());
    $("camera-button").addEventListener("click", () => this.toggleCamera());
    $("leave-button").addEventListener("click", () => this.leave());
    $("layout-button").addEventListener("click", () => {
      this.tiles.setSpeakerView(!this.tiles.speakerView);
      $("layout-button").setAttribute("aria-pressed", String(this.tiles.speakerView));
    });
    $("screen-button").hidden = !navigator.mediaDevices?.getDisplayMedia;  // phones cannot share a screen
    $("screen-button").addEventListener("click", () => (this.screen ? this.stopScreen() : this.shareScreen()));
    $("camera-select").addEventListener("change", (event) => this.switchDevice("video", event.target.value));
    $("mic-select").addEventListener("change", (event) => this.switchDevice("audio", event.target.value));
    bindShortcuts(() => !$("call").hidden && !$("leave-dialog").open, {
      m: () => this.toggleMic(),
      v: () => this.toggleCamera(),
      s: () => { if (!$("screen-button").hidden) $("screen-button").click(); },
      g: () => $("layout-button").click(),
      c: () => $("chat-button").click(),
      i: () => $("stats-button").click(),
      p: () => $("people-button").click(),
      L: () => this.confirmLeave(),  // with Shift, and asked: leaving takes more than a stray key
    });
  }

  // Turning a microphone or camera a moderator held back on asks the server first (moderation.js).
  async toggleMic() { if (!this.micMuted || await this.moderation.mayUnmute("audio")) this.setMic(!this.micMuted); }

  async toggleCamera() { if (!this.cameraOff || await this.moderation.mayUnmute("video")) this.setCamera(!this.cameraOff); }

  setMic(muted) {
    this.micMuted = muted;
    this.call?.setMuted("audio", muted);
    $("mic-button").setAttribute("aria-pressed", String(muted));
    $("mic-button").querySelector(".label").textContent = muted ? "Unmute" : "Mute";
    this.tiles.setState("me", { micMuted: muted });
  }

  setCamera(off) {
    this.cameraOff = off;
    this.call?.setMuted("video", off);
    $("camera-button").setAttribute("aria-pressed", String(off));
    $("camera-button").querySelector(".label").textContent = off ? "Camera on" : "Camera off";
    this.tiles.setState("me", { cameraOff: off || !this.stream });
  }

  // One screen (or window, or tab) per person, as a second video track the others see on their stage.
  async shareScreen() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (error) {
      notice(screenRefusal(error), { error: true });
      return;  // the call goes on as it was
    }
    const track = stream.getVideoTracks()[0];
    if (!track || this.screen) { for (const t of stream.getTracks()) t.stop(); return; }
    track.contentHint = "detail";  // text stays sharp; the frame rate may drop instead
    // "Stop sharing" in the browser's own bar ends the track.
    track.addEventListener("ended", () => this.stopScreen());
    this.screen = track;
    this.publishScreen();
    $("screen-button").setAttribute("aria-pressed", "true");
    $("screen-button").querySelector(".label").textContent = "Stop sharing";
  }

  publishScreen() {
    this.call?.shareScreen(this.screen);
    this.tiles.addScreen("me", "me-screen", this.screen);
    this.tiles.setState("me", { sharing: true });
  }

  stopScreen() {
    if (!this.screen) return;
    this.screen.stop();
    this.screen = null;
    this.call?.stopScreen();
    this.tiles.stage.remove("me-screen");
    this.tiles.setState("me", { sharing: false });
    $("screen-button").setAttribute("aria-pressed", "false");
    $("screen-button").querySelector(".label").textContent = "Share screen";
  }

  async listDevices() {
    if (!navigator.mediaDevices?.enumerateDevices) return;
    let devices;
    try { devices = await navigator.mediaDevices.enumerateDevices(); } catch { return; }
    fillDevices($("camera-select"), devices, "videoinput", currentDevice(this.stream, "video"));
    fillDevices($("mic-select"), devices, "audioinput", currentDevice(this.stream, "audio"));
  }

  async switchDevice(kind, deviceId) {
    try {
      const track = await switchDevice(this.stream, kind, deviceId);
      await this.call?.replaceTrack(kind, track);
      track.enabled = !(kind === "video" ? this.cameraOff : this.micMuted);
      this.tiles.setLocalStream(this.stream);
    } catch (error) {
      notice(`Could not switch ${kind === "video" ? "camera" : "microphone"}: ${error.message}`, { error: true });
    }
  }

  async confirmLeave() {
    if (await confirmLeave()) this.leave();
  }

  // Leaves the call, turns the camera and microphone off, and says so with a way back in, all at once:
  // a slow or gone server must not keep a person in a call they left. The server is told meanwhile,
  // and the socket closes on its answer or after a short wait (Channel.leave).
  leave() {
    if (this.leaving) return;
    this.leaving = true;
    this.stay = {};  // ends a reconnect under way (lost)
    this.reconnecting = false;
    clearInterval(this.qualityTimer);
    this.stopScreen();
    const { call, socket } = this;
    this.call = null;
    this.socket = null;
    (call ? call.leave() : Promise.resolve()).then(() => socket?.close());
    this.tiles.clear();
    this.stats.clear();
    for (const track of this.stream?.getTracks() || []) track.stop();
    clearNotice();
    show("left");
    showLeft(this.room, () => this.rejoin());
  }

  // From the screen after leaving: the camera and microphone again, then the call as it was left.
  async rejoin() {
    const media = await localMedia();
    this.stream = media.stream;
    this.mediaProblem = media.problem;
    this.preJoin.setStream(media.stream);
    this.leaving = false;
    this.setMic(this.micMuted);
    this.setCamera(this.cameraOff);
    await this.enter();
  }
}

decorate();
if (location.pathname.startsWith("/room/")) {
  joinScreen(decodeURIComponent(location.pathname.slice("/room/".length)));
} else {
  lobby(params);
}
