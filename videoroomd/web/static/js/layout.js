// Pure layout arithmetic for the call's grid: no DOM, so it can be checked on its own.

// The largest tile (of `aspect` = width / height) such that `count` tiles, in `columns` columns with
// `gap` pixels between them, all fit in `width` x `height`. Returns {columns, rows, width, height},
// the tile's size rounded down to whole pixels; zero-sized when nothing fits (or there is nothing).
export function bestGrid(count, width, height, { aspect = 4 / 3, gap = 0 } = {}) {
  const none = { columns: 0, rows: 0, width: 0, height: 0 };
  if (!(count > 0) || !(width > 0) || !(height > 0) || !(aspect > 0)) return none;
  let best = none;
  for (let columns = 1; columns <= count; columns += 1) {
    const rows = Math.ceil(count / columns);
    // Fewer columns leave a row empty: the same rows with fewer columns is never larger.
    if (columns > 1 && Math.ceil(count / (columns - 1)) === rows) continue;
    const byWidth = (width - gap * (columns - 1)) / columns;
    const byHeight = ((height - gap * (rows - 1)) / rows) * aspect;
    const tileWidth = Math.floor(Math.min(byWidth, byHeight));
    if (tileWidth > best.width) best = { columns, rows, width: tileWidth, height: Math.floor(tileWidth / aspect) };
  }
  return best;
}

// Which tile takes the spotlight, or null for the plain grid: a pinned tile wins; in speaker view the
// one who spoke last (or, before anyone spoke, the first other person; alone, oneself); a shared screen
// takes the stage by itself, so then no camera is large.
export function spotlight({ ids, pinned = null, speaker = null, speakerView = false, screens = 0 }) {
  if (screens > 0) return null;
  if (pinned != null && ids.includes(pinned)) return pinned;
  if (!speakerView || ids.length < 2) return null;
  if (speaker != null && ids.includes(speaker)) return speaker;
  return ids.find((id) => id !== "me") ?? null;
}

// The simulcast layer a tile asks for: "h" for the large tile (pinned, the speaker, or a grid of few
// people), "l" for the small ones (the strip beside a large tile or a screen, a crowded grid), "m" for
// grid tiles in between. `width`: the tile's width in CSS pixels; `count`: the tiles in the grid.
export const FEW_PEOPLE = 4;          // a grid of this many or fewer shows everyone large
export const MEDIUM_TILE_WIDTH = 320;  // a grid tile at least this wide is worth the middle layer
export function wantedLayer({ focused = false, strip = false, count = 0, width = 0 } = {}) {
  if (focused) return "h";
  if (strip) return "l";
  if (count <= FEW_PEOPLE) return "h";
  return width >= MEDIUM_TILE_WIDTH ? "m" : "l";
}
