// One person in a call on the daemon's page in Debian's Firefox ESR (see firefox_launch.mjs). Usage:
//   node firefox_caller.mjs PUPPETEER_CORE_DIR FIREFOX URL OTHER
// Opens URL (a room with autojoin) and prints one JSON line per finding: {"joined": true}, then
// {"video": frames} once OTHER's video has shown 10 more frames than when it first moved,
// {"audio": packets} once the audio received from the daemon has risen by 20 packets, and
// {"media": {state, local, remote}} (the connection's state and the addresses of its candidate pair). Each line "mute" on its standard input presses M and answers
// {"muted": aria-pressed of the mic button}. Leaves when its standard input closes; or {"error": "..."}.
import readline from "node:readline";
import { launchFirefox, say, TIMEOUT_MS } from "./firefox_launch.mjs";

const [moduleDir, firefox, url, other] = process.argv.slice(2);

let browser;
try {
  browser = await launchFirefox(moduleDir, firefox);
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 700 });
  page.on("pageerror", (error) => say({ pageerror: String(error) }));
  // Keep a handle on the page's peer connections, for their statistics.
  await page.evaluateOnNewDocument(() => {
    const Native = window.RTCPeerConnection;
    window.peerConnections = [];
    window.RTCPeerConnection = function (...args) {
      const pc = new Native(...args);
      window.peerConnections.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
  });
  await page.goto(url);
  await page.waitForSelector("#call:not([hidden])", { timeout: TIMEOUT_MS });
  say({ joined: true });
  const video = await page.waitForFunction((name) => {
    const tile = [...document.querySelectorAll("figure.tile:not([data-endpoint='me'])")]
      .find((t) => t.querySelector("figcaption")?.textContent === name);
    const element = tile?.querySelector("video");
    // Firefox counts a peer connection's frames in mozPaintedFrames (totalVideoFrames stays 0 there).
    const count = element ? (element.mozPaintedFrames ?? element.getVideoPlaybackQuality().totalVideoFrames) : 0;
    window.firstFrames ??= count > 0 ? count : undefined;
    return window.firstFrames !== undefined && count >= window.firstFrames + 10 && count;
  }, { timeout: TIMEOUT_MS, polling: 200 }, other);
  say({ video: await video.jsonValue() });
  const audio = await page.waitForFunction(async () => {
    let packets = 0;
    for (const pc of window.peerConnections) {
      for (const entry of (await pc.getStats()).values()) {
        if (entry.type === "inbound-rtp" && entry.kind === "audio") packets += entry.packetsReceived || 0;
      }
    }
    window.firstPackets ??= packets > 0 ? packets : undefined;
    return window.firstPackets !== undefined && packets >= window.firstPackets + 20 && packets;
  }, { timeout: TIMEOUT_MS, polling: 200 });
  say({ audio: await audio.jsonValue() });
  say({ media: await page.evaluate(async () => {
    const pc = window.peerConnections.at(-1);
    const stats = [...(await pc.getStats()).values()];
    const pair = stats.find((e) => e.type === "candidate-pair" && e.state === "succeeded" && (e.selected ?? e.nominated));
    const address = (id) => stats.find((e) => e.id === id)?.address;
    return { state: pc.connectionState, local: address(pair?.localCandidateId), remote: address(pair?.remoteCandidateId) };
  }) });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim() === "mute") {
      await page.keyboard.press("m");
      await page.waitForFunction(() => document.getElementById("mic-button").getAttribute("aria-pressed") === "true",
        { timeout: TIMEOUT_MS, polling: 100 });
      say({ muted: await page.$eval("#mic-button", (b) => b.getAttribute("aria-pressed")) });
    }
  }
} catch (error) {
  say({ error: String(error?.stack || error) });
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
}
