// The grid arithmetic and the spotlight choice of the page (videoroomd/web/static/js/layout.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { pageModule } from "./page_module.mjs";

const { bestGrid, spotlight } = await pageModule("layout.js");

test("one tile fills the width or the height, whichever runs out first", () => {
  assert.deepEqual(bestGrid(1, 800, 600), { columns: 1, rows: 1, width: 800, height: 600 });
  assert.deepEqual(bestGrid(1, 1600, 600), { columns: 1, rows: 1, width: 800, height: 600 });
  assert.deepEqual(bestGrid(1, 400, 600), { columns: 1, rows: 1, width: 400, height: 300 });
});

test("a wide window puts people side by side, a tall one above each other", () => {
  assert.equal(bestGrid(2, 1600, 600).columns, 2);
  assert.equal(bestGrid(2, 390, 600).columns, 1);
  assert.deepEqual(bestGrid(4, 800, 600), { columns: 2, rows: 2, width: 400, height: 300 });
});

test("every tile fits, gaps included, and no larger tile would", () => {
  for (const count of [1, 2, 3, 5, 7, 12, 25, 49]) {
    for (const [w, h] of [[1024, 560], [390, 500], [1920, 900], [300, 2000]]) {
      const gap = 8;
      const g = bestGrid(count, w, h, { gap });
      assert.ok(g.columns * g.rows >= count, `${count} in ${w}x${h}`);
      assert.ok(g.columns * g.width + (g.columns - 1) * gap <= w, `${count} in ${w}x${h}: too wide`);
      assert.ok(g.rows * g.height + (g.rows - 1) * gap <= h, `${count} in ${w}x${h}: too tall`);
      for (let columns = 1; columns <= count; columns += 1) {
        const rows = Math.ceil(count / columns);
        const other = Math.min((w - gap * (columns - 1)) / columns, ((h - gap * (rows - 1)) / rows) * 4 / 3);
        assert.ok(Math.floor(other) <= g.width, `${count} in ${w}x${h}: ${columns} columns would be larger`);
      }
    }
  }
});

test("tiles grow as people leave", () => {
  let last = 0;
  for (let count = 12; count >= 1; count -= 1) {
    const { width } = bestGrid(count, 1024, 560, { gap: 8 });
    assert.ok(width >= last, `${count} people: ${width} < ${last}`);
    last = width;
  }
  assert.ok(bestGrid(1, 1024, 560).width > bestGrid(3, 1024, 560).width);
});

test("nothing to lay out, or no room, gives an empty grid rather than NaN", () => {
  for (const [count, w, h] of [[0, 800, 600], [3, 0, 600], [3, 800, -1], [NaN, 800, 600], [3, 10, 10]]) {
    const g = bestGrid(count, w, h, { gap: 8 });
    assert.ok(Number.isFinite(g.width) && g.width >= 0 && Number.isFinite(g.height), JSON.stringify(g));
  }
});

test("the spotlight: a pin wins, a screen takes the stage alone, speaker view follows the voice", () => {
  const ids = ["me", "a", "b"];
  assert.equal(spotlight({ ids }), null);
  assert.equal(spotlight({ ids, pinned: "b" }), "b");
  assert.equal(spotlight({ ids, pinned: "gone" }), null);
  assert.equal(spotlight({ ids, pinned: "b", screens: 1 }), null);
  assert.equal(spotlight({ ids, speakerView: true }), "a");
  assert.equal(spotlight({ ids, speakerView: true, speaker: "b" }), "b");
  assert.equal(spotlight({ ids, speakerView: true, speaker: "b", pinned: "me" }), "me");
  assert.equal(spotlight({ ids: ["me"], speakerView: true }), null);
});
