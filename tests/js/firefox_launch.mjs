// Debian's Firefox ESR, launched by puppeteer-core over WebDriver BiDi with a fake camera and
// microphone and no prompts; what the Firefox scripts of the tests share.
import path from "node:path";
import { pathToFileURL } from "node:url";

export const TIMEOUT_MS = 30000;

export const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

// A page is opened by the caller; the browser is returned. A self-signed certificate (a test
// daemon's https) is accepted, as a person would accept it once. `prefs` are added to those below.
export async function launchFirefox(moduleDir, firefox, prefs = {}) {
  const { default: puppeteer } = await import(pathToFileURL(path.join(moduleDir, "lib", "esm", "puppeteer", "puppeteer-core.js")).href);
  return puppeteer.launch({
    browser: "firefox",
    executablePath: firefox,
    headless: true,
    acceptInsecureCerts: true,
    protocolTimeout: TIMEOUT_MS,
    extraPrefsFirefox: {
      "media.navigator.streams.fake": true,          // a fake camera and microphone, as Chromium's flags give
      "media.navigator.permission.disabled": true,   // and no permission prompt
      "media.autoplay.default": 0,                   // video may play without a click
      "media.autoplay.block-webaudio": false,        // and the level meter's audio graph may run without one
      "media.cubeb.force_mock_context": true,        // an audio output that needs no sound server on the machine
      // Host candidates as addresses, not mDNS names: the daemon would resolve a name by multicast
      // on the machine's own network, which a test must not send to.
      "media.peerconnection.ice.obfuscate_host_addresses": false,
      ...prefs,
    },
  });
}
