// One person on the daemon's page in Debian's Firefox ESR, driven over WebDriver BiDi by puppeteer-core
// (no browser download, no geckodriver). Usage:
//   node firefox_participant.mjs PUPPETEER_CORE_DIR FIREFOX URL OTHER
// Opens URL (a room's join screen) with Firefox's fake camera and microphone and prints one JSON line
// per finding: {"preview": frames shown}, {"level": loudest meter reading}, {"cameras": [labels]},
// then joins and prints {"joined": true}, {"tiles": [names on the tiles]} once OTHER's tile is there,
// {"grid": {widths, inside}}, and {"controls": {mic, pinned, larger}} after pressing M and pinning
// OTHER; or {"error": "..."}. It stays in the room until its standard input closes.
import { launchFirefox, say, TIMEOUT_MS } from "./firefox_launch.mjs";

const [moduleDir, firefox, url, other] = process.argv.slice(2);

let browser;
try {
  browser = await launchFirefox(moduleDir, firefox);
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 700 });
  page.on("pageerror", (error) => say({ pageerror: String(error) }));
  await page.goto(url);
  await page.waitForSelector("#preview", { visible: true, timeout: TIMEOUT_MS });
  const preview = await page.waitForFunction(() => {
    // Firefox counts frames of a camera's stream in mozPaintedFrames (totalVideoFrames stays 0 there).
    const video = document.getElementById("preview");
    const count = video.mozPaintedFrames ?? video.getVideoPlaybackQuality().totalVideoFrames;
    window.firstPreview ??= count > 0 ? count : undefined;
    return window.firstPreview !== undefined && count >= window.firstPreview + 10 && count;
  }, { timeout: TIMEOUT_MS, polling: 100 });
  say({ preview: await preview.jsonValue() });
  say({ level: await page.evaluate(() => new Promise((done) => {
    let top = 0;
    const timer = setInterval(() => { top = Math.max(top, document.getElementById("mic-level").value); }, 50);
    setTimeout(() => { clearInterval(timer); done(top); }, 3000);
  })) });
  say({ cameras: await page.$$eval("#join-camera option", (options) => options.map((o) => o.textContent)) });
  await page.click("#join-button");
  await page.waitForSelector("#call:not([hidden])", { timeout: TIMEOUT_MS });
  say({ joined: true });
  await page.waitForFunction((name) => [...document.querySelectorAll("figure.tile figcaption")].some((c) => c.textContent === name),
    { timeout: TIMEOUT_MS, polling: 100 }, other);
  say({ tiles: await page.$$eval("figure.tile figcaption", (captions) => captions.map((c) => c.textContent)) });
  // The grid: every tile the same size, all inside the grid.
  await new Promise((resolve) => setTimeout(resolve, 300));
  say({ grid: await page.evaluate(() => {
    const grid = document.getElementById("grid").getBoundingClientRect();
    const tiles = [...document.querySelectorAll("figure.tile")].map((t) => t.getBoundingClientRect());
    return {
      widths: tiles.map((t) => Math.round(t.width)),
      inside: tiles.every((t) => t.left >= grid.left - 1 && t.right <= grid.right + 1 && t.top >= grid.top - 1 && t.bottom <= grid.bottom + 1),
    };
  }) });
  // The keyboard mutes; pinning makes the other's tile large.
  await page.keyboard.press("m");
  await page.click(`button[aria-label="Pin ${other}"]`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  say({ controls: await page.evaluate((name) => {
    const mic = document.getElementById("mic-button");
    const tiles = [...document.querySelectorAll("figure.tile")];
    const theirs = tiles.find((t) => t.querySelector("figcaption").textContent === name);
    const mine = tiles.find((t) => t.dataset.endpoint === "me");
    return {
      mic: [mic.querySelector(".label").textContent, mic.getAttribute("aria-pressed")],
      pinned: theirs.classList.contains("focused"),
      larger: theirs.getBoundingClientRect().width > 2 * mine.getBoundingClientRect().width,
    };
  }, other) });
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on("end", resolve));
} catch (error) {
  say({ error: String(error?.stack || error) });
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
}
