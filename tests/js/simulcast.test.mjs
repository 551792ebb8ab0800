// Which simulcast layer a tile asks for (layout.js) and what the stats view says of a tile (stats.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { pageModule } from "./page_module.mjs";

const { wantedLayer, FEW_PEOPLE, MEDIUM_TILE_WIDTH } = await pageModule("layout.js");
const { tileStats, bitrate } = await pageModule("stats.js");

test("the large tile asks for h, the strip beside it for l", () => {
  assert.equal(wantedLayer({ focused: true }), "h");
  assert.equal(wantedLayer({ focused: true, count: 30, width: 100 }), "h");
  assert.equal(wantedLayer({ strip: true, count: 2, width: 200 }), "l");
});

test("a grid of few people asks for h; a crowded one for m or l by the tiles' width", () => {
  for (let count = 1; count <= FEW_PEOPLE; count += 1) assert.equal(wantedLayer({ count, width: 150 }), "h");
  assert.equal(wantedLayer({ count: FEW_PEOPLE + 1, width: MEDIUM_TILE_WIDTH }), "m");
  assert.equal(wantedLayer({ count: 9, width: MEDIUM_TILE_WIDTH - 1 }), "l");
  assert.equal(wantedLayer({ count: 25, width: 120 }), "l");
  assert.equal(wantedLayer(), "h");  // nothing known yet: the server's default
});

test("a tile's stats say its layer, picture size, frame rate and loss since the last sample", () => {
  const before = { kind: "video", packetsReceived: 100, packetsLost: 0 };
  const after = { kind: "video", packetsReceived: 190, packetsLost: 10, framesPerSecond: 29.6, frameWidth: 1280, frameHeight: 720 };
  assert.deepEqual(tileStats({ before, after, encoding: "h", simulcast: true }),
    { layer: "layer h", video: "1280×720 · 30 fps", loss: "loss 10.0 %" });
  assert.equal(tileStats({ after, simulcast: true }).layer, "layer: waiting");
  assert.equal(tileStats({ after, encoding: "h", simulcast: false }).layer, "one stream");
  assert.deepEqual(tileStats({ simulcast: true, encoding: "l" }), { layer: "layer l", video: "no video", loss: "" });
  assert.equal(tileStats({ after: { kind: "video", packetsReceived: 0 } }).video, "no picture yet");
  assert.equal(tileStats({ before: after, after }).loss, "");  // nothing arrived in between: nothing to judge
});

test("bit rates read in kbit/s or Mbit/s", () => {
  assert.equal(bitrate(750_000), "750 kbit/s");
  assert.equal(bitrate(1_500_000), "1.5 Mbit/s");
  assert.equal(bitrate(undefined), "");
});
