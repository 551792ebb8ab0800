// Loads one of the page's own modules (videoroomd/web/static/js/NAME) as an ES module. The page's
// files end in .js with no package.json beside them, which older Node versions would read as
// CommonJS; loading the text as a module works on every Node version the tests run on.
import { readFile } from "node:fs/promises";

export async function pageModule(name) {
  const source = await readFile(new URL(`../../videoroomd/web/static/js/${name}`, import.meta.url), "utf8");
  return import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
}
