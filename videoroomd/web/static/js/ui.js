// The call's DOM: a tile per participant in a re-flowing grid, the people list, notices.
import { icon } from "./icons.js";
import { bestGrid, spotlight, wantedLayer } from "./layout.js";

const $ = (id) => document.getElementById(id);
const TILE_ASPECT = 16 / 9;  // what cameras send (1280x720); other shapes are letterboxed, never cropped
const REVEAL_MS = 4000;      // on a touch screen, a tapped tile shows its pin button this long
const MIN_TILE_WIDTH = 120;  // below this a face is a smudge: the grid scrolls instead

export function show(section) {
  for (const id of ["lobby", "join", "left", "call"]) $(id).hidden = id !== section;
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

// The join card's message (a refusal, a camera problem), at its top and scrolled into view.
export function joinMessage(text) {
  const box = $("join-message");
  box.textContent = text || "";
  box.hidden = !text;
  if (text) requestAnimationFrame(() => box.scrollIntoView({ block: "nearest" }));
}

function initials(name) {
  return (name || "?").split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
}

function presenting(name) {
  const text = document.createElement("p");
  text.className = "presenting";
  text.textContent = `${name} is presenting…`;
  return text;
}

// Shared screens, shown large; while there is one, the camera tiles make a column beside it.
export class Stage {
  constructor() {
    this.box = $("stage");
    this.screens = new Map();  // track id -> figure
  }

  // Someone (`owner`) shares a screen whose track has not come yet: "NAME is presenting…" in its place.
  expect(owner, name) {
    if ([...this.screens.values()].some((f) => f.dataset.owner === owner)) return;
    const figure = document.createElement("figure");
    figure.dataset.owner = owner;
    figure.className = "pending";
    figure.append(presenting(name));
    this.box.append(figure);
    this.screens.set(`pending:${owner}`, figure);
    this.update();
  }

  // `owner`'s screen, until its first frame shows, says who presents (a keyframe may take a moment).
  add(trackId, track, caption, owner = null, name = null) {
    this.remove(trackId);
    if (owner) this.remove(`pending:${owner}`);
    const figure = document.createElement("figure");
    figure.dataset.track = trackId;
    if (owner) figure.dataset.owner = owner;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;
    video.srcObject = new MediaStream([track]);
    video.setAttribute("aria-label", caption);
    const label = document.createElement("figcaption");
    label.textContent = caption;
    figure.append(video, label);
    if (name) {
      const wait = presenting(name);
      figure.append(wait);
      video.addEventListener("loadeddata", () => wait.remove(), { once: true });
    }
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
    this.onchange?.();
  }
}

export class Tiles {
  constructor() {
    this.grid = $("grid");
    this.list = $("participants");
    this.tiles = new Map();  // endpoint id ("me" for us) -> {tile, video, audio, stream, name, badges, avatar, item}
    this.stage = new Stage();
    this.view = this.grid.parentElement;
    this.spot = $("spotlight");
    this.pinned = null;       // the tile someone pinned, large until unpinned
    this.speaker = null;      // the other person who spoke last
    this.speakingNow = new Set();  // the others speaking at the moment, in the order they began
    this.speakerView = false;
    this.layoutQueued = false;
    this.layers = new Map();  // endpoint id -> the simulcast layer its tile asks for ("l", "m", "h")
    this.onlayers = null;     // called with `layers` after each layout
    this.stage.onchange = () => this.relayout();
    // The window, the chat panel or the phone's rotation change the room the tiles have.
    if (window.ResizeObserver) new ResizeObserver(() => this.layout()).observe(this.view);
    else window.addEventListener("resize", () => this.relayout());  // older browsers: the window at least
  }

  setSpeakerView(on) {
    this.speakerView = on;
    this.relayout();
  }

  pin(id) {
    this.pinned = this.pinned === id ? null : id;
    this.relayout();
  }

  // Lays the tiles out once the current burst of changes (several people arriving at once) is over.
  relayout() {
    if (this.layoutQueued) return;
    this.layoutQueued = true;
    requestAnimationFrame(() => { this.layoutQueued = false; this.layout(); });
  }

  // The plain grid: every tile the same, the largest size at which all fit. With a spotlight (a pin,
  // speaker view) one tile is large and the others make a strip; with a shared screen the screen is.
  layout() {
    const ids = [...this.tiles.keys()];
    const focus = spotlight({ ids, pinned: this.pinned, speaker: this.speaker, speakerView: this.speakerView, screens: this.stage.screens.size });
    this.view.classList.toggle("focus", focus != null);
    this.spot.hidden = focus == null;
    for (const [id, entry] of this.tiles) {
      const focused = id === focus;
      entry.tile.classList.toggle("focused", focused);
      entry.pin.setAttribute("aria-pressed", String(id === this.pinned));
      if (!focused) for (const key of ["left", "top", "width", "height"]) entry.tile.style[key] = "";
    }
    const fitted = focus == null && this.stage.screens.size === 0;
    this.grid.classList.toggle("fitted", fitted);
    if (!fitted) {
      this.grid.dataset.columns = "";
      if (focus != null) {
        // The large tile sits over the spotlight's place, out of the strip's flow (so its video keeps playing).
        const box = this.spot.getBoundingClientRect();
        const origin = this.view.getBoundingClientRect();
        const tile = this.tiles.get(focus).tile.style;
        tile.left = `${box.left - origin.left}px`;
        tile.top = `${box.top - origin.top}px`;
        tile.width = `${box.width}px`;
        tile.height = `${box.height}px`;
      }
      this.setLayers(ids, (id) => wantedLayer({ focused: id === focus, strip: id !== focus }));
      return;
    }
    const style = getComputedStyle(this.grid);
    const gap = parseFloat(style.columnGap) || 0;
    const width = this.grid.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const height = this.grid.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    let { columns, width: tileWidth } = bestGrid(ids.length, width, height, { aspect: TILE_ASPECT, gap });
    if (tileWidth < MIN_TILE_WIDTH) {
      columns = Math.max(1, Math.floor((width + gap) / (MIN_TILE_WIDTH + gap)));
      tileWidth = Math.max(1, Math.floor((width - gap * (columns - 1)) / columns));
    }
    // Rows wrap after `columns` tiles (the width leaves no room for one more); a last, shorter row is centred.
    this.grid.style.setProperty("--tile-width", `${tileWidth}px`);
    this.grid.dataset.columns = String(columns);
    this.setLayers(ids, () => wantedLayer({ count: ids.length, width: tileWidth }));
  }

  // Records the layer each tile asks for (on the tile, as data-layer, too) and tells `onlayers`.
  setLayers(ids, layerOf) {
    this.layers = new Map(ids.map((id) => [id, layerOf(id)]));
    for (const [id, layer] of this.layers) this.tiles.get(id).tile.dataset.layer = layer;
    this.onlayers?.(this.layers);
  }

  // A screen `id` shares goes on the stage, named after its owner.
  addScreen(id, trackId, track) {
    const name = id === "me" ? null : this.tiles.get(id)?.name || "Guest";
    this.stage.add(trackId, track, name ? `${name}'s screen` : "Your screen", id, name);
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
    const pin = document.createElement("button");
    pin.type = "button";
    pin.className = "pin quiet icon-only";
    pin.append(icon("pin"));
    pin.setAttribute("aria-pressed", "false");
    pin.setAttribute("aria-label", local ? "Pin yourself" : `Pin ${name}`);
    pin.title = "Pin: keep this tile large";
    pin.addEventListener("click", () => this.pin(id));
    tile.addEventListener("dblclick", () => this.pin(id));
    tile.addEventListener("click", () => {  // no hover on a touch screen: a tap shows the pin button
      tile.classList.add("reveal");
      clearTimeout(tile.revealTimer);
      tile.revealTimer = setTimeout(() => tile.classList.remove("reveal"), REVEAL_MS);
    });
    // Connection quality, from the statistics of the tracks (hidden until first measured).
    const quality = document.createElement("span");
    quality.className = "quality";
    quality.setAttribute("role", "img");
    quality.hidden = true;
    const bars = document.createElement("span");
    bars.className = "bars";
    for (let i = 0; i < 3; i += 1) bars.append(document.createElement("i"));
    const why = document.createElement("span");
    why.className = "why";
    quality.append(bars, why);
    tile.append(video, avatar, label, badges, pin, quality, audio);
    this.grid.append(tile);
    const item = document.createElement("li");
    item.dataset.endpoint = id;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = local ? `${name} (you)` : name;
    const states = document.createElement("span");
    states.className = "states";
    item.append(who, states);
    if (local) this.list.prepend(item); else this.list.append(item);
    const entry = {
      tile, video, audio, stream: new MediaStream(), audioStream: new MediaStream(), label, badges, avatar, item, who, states, name, pin, quality,
    };
    video.srcObject = entry.stream;
    audio.srcObject = entry.audioStream;
    this.tiles.set(id, entry);
    this.count();
    this.relayout();
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

  hasVideo(id) {
    const entry = this.tiles.get(id);
    return !!entry && entry.stream.getVideoTracks().length > 0;
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
    entry.who.textContent = name;
    entry.avatar.textContent = initials(name);
    entry.video.setAttribute("aria-label", `${name}'s camera`);
    entry.pin.setAttribute("aria-label", `Pin ${name}`);
  }

  // What the tile and the people list show of someone: microphone muted, camera off, sharing a screen.
  setState(id, { micMuted, cameraOff, sharing }) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    if (micMuted !== undefined) {
      this.badge(entry, "mic", micMuted, "Muted");
      this.state(entry, "muted", micMuted, "muted");
    }
    if (cameraOff !== undefined) {
      this.badge(entry, "camera", cameraOff, "Camera off");
      this.state(entry, "camera-off", cameraOff, "camera off");
      entry.avatar.hidden = !cameraOff && (id === "me" ? entry.stream.getVideoTracks().length > 0 : entry.stream.getTracks().length > 0);
    }
    if (sharing !== undefined) this.state(entry, "sharing", sharing, "sharing");
    if (sharing !== undefined && id !== "me") {
      if (sharing) this.stage.expect(id, entry.name); else this.stage.remove(`pending:${id}`);
    }
  }

  // The people list's words for a state, in a fixed order (muted, camera off, sharing).
  state(entry, key, on, text) {
    let mark = entry.states.querySelector(`[data-state="${key}"]`);
    if (on && !mark) {
      mark = document.createElement("span");
      mark.className = `state state-${key}`;
      mark.dataset.state = key;
      mark.textContent = text;
      const order = ["muted", "camera-off", "sharing"];
      const after = [...entry.states.children].find((m) => order.indexOf(m.dataset.state) > order.indexOf(key));
      entry.states.insertBefore(mark, after || null);
    } else if (!on && mark) mark.remove();
  }

  // `grade` "good" | "fair" | "poor", or null while unknown; `why`: what the network does, in words
  // ("5 % of packets lost"), shown on the tile when the grade is not good.
  setQuality(id, grade, why = "") {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.quality.hidden = !grade;
    if (!grade) return;
    entry.quality.dataset.quality = grade;
    const words = grade === "good" ? "Connection: good" : `Connection: ${grade}, ${why}`;
    entry.quality.setAttribute("aria-label", words);
    entry.quality.title = words;
    entry.quality.querySelector(".why").textContent = grade === "good" ? "" : why;
  }

  badge(entry, key, on, text) {
    let badge = entry.badges.querySelector(`[data-badge="${key}"]`);
    if (on && !badge) {
      badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.badge = key;
      const words = document.createElement("span");
      words.className = "badge-text";
      words.textContent = text;
      badge.append(icon(key === "mic" ? "mic-off" : "camera-off"), words);
      badge.title = text;
      entry.badges.append(badge);
    } else if (!on && badge) badge.remove();
  }

  speaking(id, on) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.tile.classList.toggle("speaking", on);
    entry.item.classList.toggle("speaking", on);
    if (id === "me") return;  // speaker view shows the others
    // The speaker is whoever began speaking last; when they stop (or mute) while others go on, the
    // latest of those takes over, so a long talker is not left in the strip.
    if (on) this.speakingNow.add(id); else this.speakingNow.delete(id);
    const next = on ? id : (this.speaker === id && this.speakingNow.size ? [...this.speakingNow].pop() : this.speaker);
    if (next !== this.speaker) {
      this.speaker = next;
      if (this.speakerView) this.relayout();
    }
  }

  remove(id) {
    const entry = this.tiles.get(id);
    if (!entry) return;
    entry.tile.remove();
    entry.item.remove();
    this.tiles.delete(id);
    this.stage.remove(`pending:${id}`);
    if (this.pinned === id) this.pinned = null;
    this.speakingNow.delete(id);
    if (this.speaker === id) this.speaker = [...this.speakingNow].pop() ?? null;
    this.count();
    this.relayout();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
    this.stage.clear();
  }

  count() { $("people-count").textContent = String(this.tiles.size); }
}
