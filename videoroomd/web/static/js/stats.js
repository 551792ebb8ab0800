// The stats view a person can open: for each tile, the simulcast layer received (from the server's
// encodingSwitched) and the connection's quality as measured (picture size, frames per second, loss).
// `tileStats` is pure; `StatsPanel` only draws what it is given.

const $ = (id) => document.getElementById(id);

// The words for one tile from its video's "inbound-rtp" numbers now and at the last sample (`before`,
// may be null), its layer (null until the server said), and whether it is sent in layers at all.
export function tileStats({ before = null, after = null, encoding = null, simulcast = false } = {}) {
  const layer = !simulcast ? "one stream" : encoding ? `layer ${encoding}` : "layer: waiting";
  if (!after) return { layer, video: "no video", loss: "" };
  const size = after.frameWidth && after.frameHeight ? `${after.frameWidth}×${after.frameHeight}` : "no picture yet";
  const fps = after.framesPerSecond != null ? ` · ${Math.round(after.framesPerSecond)} fps` : "";
  const received = (after.packetsReceived ?? 0) - (before?.packetsReceived ?? 0);
  const lost = Math.max(0, (after.packetsLost ?? 0) - (before?.packetsLost ?? 0));
  const loss = received + lost > 0 ? `loss ${((100 * lost) / (received + lost)).toFixed(1)} %` : "";
  return { layer, video: `${size}${fps}`, loss };
}

// "1.5 Mbit/s", "750 kbit/s".
export function bitrate(bps) {
  if (!(bps >= 0)) return "";
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mbit/s` : `${Math.round(bps / 1e3)} kbit/s`;
}

export class StatsPanel {
  constructor() {
    this.panel = $("stats-panel");
    this.list = $("stats-list");
    this.bandwidth = $("stats-bandwidth");
    this.button = $("stats-button");
    this.rows = new Map();  // endpoint id -> its <li>
    this.panels = null;     // the call's side panels: the stats show in the people panel
    this.button.addEventListener("click", () => this.toggle());
  }

  get open() { return !this.panel.hidden && (!this.panels || this.panels.isOpen("people")); }

  // Opens the stats (and the people panel they are in, if it is closed), or closes them.
  toggle(open = !this.open) {
    this.panel.hidden = !open;
    if (open && this.panels && !this.panels.isOpen("people")) this.panels.show("people");
    this.showPressed();
    this.onopen?.(open);
  }

  showPressed() { this.button.setAttribute("aria-pressed", String(this.open)); }

  // `tiles`: [{id, name, layer, video, loss, quality}] in the order of the people list.
  show(tiles, bandwidthBps) {
    this.bandwidth.textContent = bandwidthBps != null ? `The server can send you about ${bitrate(bandwidthBps)}.` : "";
    const keep = new Set(tiles.map((t) => t.id));
    for (const [id, row] of this.rows) if (!keep.has(id)) { row.remove(); this.rows.delete(id); }
    for (const tile of tiles) {
      let row = this.rows.get(tile.id);
      if (!row) {
        row = document.createElement("li");
        row.dataset.endpoint = tile.id;
        for (const part of ["name", "layer", "video", "loss", "quality"]) {
          const span = document.createElement("span");
          span.className = `stats-${part}`;
          row.append(span);
        }
        this.rows.set(tile.id, row);
      }
      this.list.append(row);  // in order
      row.querySelector(".stats-name").textContent = tile.name;
      row.querySelector(".stats-layer").textContent = tile.layer;
      row.querySelector(".stats-layer").dataset.layer = tile.encoding || "";
      row.querySelector(".stats-video").textContent = tile.video;
      row.querySelector(".stats-loss").textContent = tile.loss;
      row.querySelector(".stats-quality").textContent = tile.quality ? `connection ${tile.quality}` : "";
    }
  }

  clear() {
    this.rows.clear();
    this.list.replaceChildren();
    this.bandwidth.textContent = "";
  }
}

// One row for each person in the call (``tiles``: id -> tile) for the Stats view: their camera's
// layer, picture, frame rate and loss between the two samples of ``sample`` ({before, after}).
export function statsRows(call, tiles, sample) {
  const rows = [];
  for (const [id, entry] of tiles) {
    if (id === "me") continue;
    // The person's camera: a video that is not a screen (by what arrives, or what its metadata says).
    const isVideo = (trackId, t) => sample?.after.get(trackId)?.kind === "video" || t.simulcast || t.metadata?.kind === "video";
    const camera = [...(call.endpoints.get(id)?.tracks || [])].find(([trackId, t]) => t.metadata?.type !== "screen" && isVideo(trackId, t));
    const [trackId, track] = camera || [null, null];
    const words = tileStats({
      before: trackId ? sample?.before.get(trackId) : null, after: trackId ? sample?.after.get(trackId) : null,
      encoding: track?.encoding ?? null, simulcast: !!track?.simulcast,
    });
    rows.push({ id, name: entry.name, encoding: track?.encoding ?? null, quality: entry.quality.dataset.quality || null, ...words });
  }
  return rows;
}
