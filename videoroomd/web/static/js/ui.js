// The call's DOM: a tile per participant in a re-flowing grid, the people list, notices.

const $ = (id) => document.getElementById(id);

export function show(section) {
  for (const id of ["lobby", "join", "call"]) $(id).hidden = id !== section;
}

let noticeTimer = null;
export function notice(text, { error = false, sticky = false } = {}) {
  const box = $("notice");
  box.textContent = text;
  box.classList.toggle("error", error);
  box.hidden = false;
  clearTimeout(noticeTimer);
  if (!sticky) noticeTimer = setTimeout(() => { box.hidden = true; }, 6000);
}
export function clearNotice() { $("notice").hidden = true; }

export function joinMessage(text) {
  const box = $("join-message");
  box.textContent = text || "";
  box.hidden = !text;
}

function initials(name) {
  return (name || "?").split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
}

// Shared screens, shown large; while there is one, the camera tiles make a column beside it.
export class Stage {
  constructor() {
    this.box = $("stage");
    this.screens = new Map();  // track id -> figure
  }

  add(trackId, track, caption) {
    this.remove(trackId);
    const figure = document.createElement("figure");
    figure.dataset.track = trackId;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;
    video.srcObject = new MediaStream([track]);
    video.setAttribute("aria-label", caption);
    const label = document.createElement("figcaption");
    label.textContent = caption;
    figure.append(video, label);
    this.box.append(figure);
    this.screens.set(trackId, figure);
    video.play?.().catch(() => {});
    this.update();
  }

  // Returns whether `trackId` was on the stage.
  remove(trackId) {
    const figure = this.screens.get(trackId);
    if (!figure) return false;
    figure.remove();
    this.screens.delete(trackId);
    this.update();
    return true;
  }

  clear() { for (const trackId of [...this.screens.keys()]) this.remove(trackId); }

  update() {
    this.box.hidden = this.screens.size === 0;
    this.box.parentElement.classList.toggle("staged", this.screens.size > 0);
  }
}

export class Tiles {
  constructor() {
    this.grid = $("grid");
    this.list = $("participants");
    this.tiles = new Map();  // endpoint id ("me" for us) -> {tile, video, audio, stream, name, badges, avatar, item}
    this.stage = new Stage();
  }

  // A screen `id` shares goes on the stage, named after its owner.
  addScreen(id, trackId, track) {
    const name = id === "me" ? null : this.tiles.get(id)?.name || "Guest";
    this.stage.add(trackId, track, name ? `${name}'s screen` : "Your screen");
  }

  add(id, name, { local = false } = {}) {
    if (this.tiles.has(id)) return this.tiles.get(id);
    const tile = document.createElement("figure");
    tile.className = "tile";
    tile.dataset.endpoint = id;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;  // sound plays through the audio element; a muted video may always autoplay
    video.setAttribute("aria-label", local ? "Your camera" : `${name}'s camera`);
    const avatar = document.createElement("div");
    avatar.className = "avatar";
    avatar.textContent = initials(name);
    avatar.hidden = !local;
    const label = document.createElement("figcaption");
    label.className = "name";
    label.textContent = local ? "Me" : name;
    const badges = document.createElement("div");
    badges.className = "badges";
    const audio = document.createElement("audio");
    audio.autoplay = true;
    tile.append(video, avatar, label, badges, audio);
    this.grid.append(tile);
    const item = document.createElement("li");
    item.textContent = local ? `${name} (you)` : name;
    item.dataset.endpoint = id;
    if (local) this.list.prepend(item); else this.list.append(item);
    const entry = { tile, video, audio, stream: new MediaStream(), audioStream: new MediaStream(), label, badges, avatar, item, name };
    video.srcObject = entry.stream;
    audio.srcObject = entry.audioStream;
    this.tiles.set(id, entry);
    this.count();
    return entry;
  }

  addTrack(id, track) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    if (track.kind === "audio") entry.audioStream.addTrack(track); else {
      entry.stream.addTrack(track);
      entry.avatar.hidden = true;
    }
    entry.video.play?.().catch(() => {});
    entry.audio.play?.().catch(() => {});
  }

  removeTrack(id, track) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.stream.removeTrack(track);
    entry.audioStream.removeTrack(track);
    if (track.kind === "video") entry.avatar.hidden = false;
  }

  setLocalStream(stream) {
    const entry = this.tiles.get("me");
    if (!entry) return;
    entry.stream = stream;
    entry.video.srcObject = stream;
    entry.avatar.hidden = stream.getVideoTracks().length > 0;
  }

  rename(id, name) {
    const entry = this.tiles.get(id);
    if (!entry || id === "me") return;
    entry.name = name;
    entry.label.textContent = name;
    entry.item.textContent = name;
    entry.avatar.textContent = initials(name);
    entry.video.setAttribute("aria-label", `${name}'s camera`);
  }

  setState(id, { micMuted, cameraOff }) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    if (micMuted !== undefined) this.badge(entry, "mic", micMuted, "Muted");
    if (cameraOff !== undefined) {
      this.badge(entry, "camera", cameraOff, "Camera off");
      entry.avatar.hidden = !cameraOff && (id === "me" ? entry.stream.getVideoTracks().length > 0 : entry.stream.getTracks().length > 0);
    }
  }

  badge(entry, key, on, text) {
    let badge = entry.badges.querySelector(`[data-badge="${key}"]`);
    if (on && !badge) {
      badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.badge = key;
      badge.textContent = text;
      entry.badges.append(badge);
    } else if (!on && badge) badge.remove();
  }

  speaking(id, on) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.tile.classList.toggle("speaking", on);
    entry.item.classList.toggle("speaking", on);
  }

  remove(id) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.tile.remove();
    entry.item.remove();
    this.tiles.delete(id);
    this.count();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
    this.stage.clear();
  }

  count() { $("people-count").textContent = String(this.tiles.size); }
}
