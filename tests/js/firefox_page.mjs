// The daemon's page in Debian's Firefox ESR (see firefox_launch.mjs), driven line by line by a test.
// Usage:
//   node firefox_page.mjs PUPPETEER_CORE_DIR FIREFOX URL WIDTHxHEIGHT
// Opens URL in a window of that size and prints {"ready": true}. Each line on its standard input is a
// JSON command {"id": n, "do": what, ...}, answered by one line {"reply": n, "value": ...} or
// {"reply": n, "error": "..."}:
//   {"do": "eval", "js": "() => ..."}            the function's (JSON) result, awaited
//   {"do": "wait", "js": "() => ...", "arg": x, "ms": t}  waits (up to t ms) until the function returns something truthy; that
//   {"do": "press", "key": "g"}                  a key pressed on the page ("Shift+L": with Shift held)
//   {"do": "click", "selector": "..."}           a click on the element (a user's click: it activates the page)
//   {"do": "type", "selector": "...", "text": "..."}  typed into the element, key by key
//   {"do": "viewport", "width": w, "height": h}  the window resized
//   {"do": "goto", "url": "..."}                 another address, or the same one again
//   {"do": "init", "js": "() => ..."}            run on every page loaded from now on, before its scripts
//   {"do": "fresh", "url": "...", "width": w, "height": h}  the tab closed (its page leaves, its init
//                                                scripts go) and a new one of that size opened at the address:
//                                                the next test's page in the same Firefox
// Firefox may capture one of its own tabs (getUserMedia({video: {mediaSource: "browser"}})): headless,
// with no display server, that is the only capture of a screen kind it can make.
// Page errors are printed as {"pageerror": "..."}. Leaves when its standard input closes.
import readline from "node:readline";
import { launchFirefox, say, TIMEOUT_MS } from "./firefox_launch.mjs";

const [moduleDir, firefox, url, size] = process.argv.slice(2);
const [width, height] = size.split("x").map(Number);

let page;

async function open(address, width, height) {
  const tab = await browser.newPage();
  await tab.setViewport({ width, height });
  tab.on("pageerror", (error) => say({ pageerror: String(error) }));
  await page?.close();
  page = tab;
  await page.goto(address);
}

async function run(command) {
  switch (command.do) {
    case "eval":
      return page.evaluate(`(${command.js})(${JSON.stringify(command.arg ?? null)})`);
    case "wait": {
      const handle = await page.waitForFunction(`(${command.js})(${JSON.stringify(command.arg ?? null)})`,
        { timeout: command.ms ?? TIMEOUT_MS, polling: 100 });
      return handle.jsonValue();
    }
    case "press": {  // "g", "Enter", or with modifiers held: "Shift+L"
      const keys = command.key.split("+");
      const key = keys.pop();
      for (const modifier of keys) await page.keyboard.down(modifier);
      await page.keyboard.press(key);
      for (const modifier of keys.reverse()) await page.keyboard.up(modifier);
      return null;
    }
    case "click":
      return page.click(command.selector);
    case "type":
      return page.type(command.selector, command.text);
    case "viewport":
      return page.setViewport({ width: command.width, height: command.height });
    case "init":
      return page.evaluateOnNewDocument(`(${command.js})()`).then(() => null);
    case "goto":
      return page.goto(command.url).then(() => null);
    case "fresh":
      return open(command.url, command.width, command.height).then(() => null);
    default:
      throw new Error(`unknown command ${JSON.stringify(command.do)}`);
  }
}

let browser;
try {
  browser = await launchFirefox(moduleDir, firefox, { "media.getusermedia.browser.enabled": true });
  await open(url, width, height);
  say({ ready: true });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    try {
      const value = await run(command);
      say({ reply: command.id, value: value ?? null });
    } catch (error) {
      say({ reply: command.id, error: String(error?.message || error) });
    }
  }
} catch (error) {
  say({ error: String(error?.stack || error) });
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
}
