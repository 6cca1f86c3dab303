// Loads pantry's status page in Debian's chromium (headless, through playwright-core) and prints
// what a user would see as JSON: the page's HTML once its script has swapped the live part at
// least once (`updated`: the swap happened in place, without reloading the page), the progress
// bars' values, and the same page's HTML with JavaScript disabled. Writes a screenshot.
//   node status_page.mjs URL SCREENSHOT.png
import { chromium } from 'playwright-core';

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--no-proxy-server', '--disable-gpu'],
});
const result = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
  await page.goto(url);
  // mark the first paint's live part and the window: a swap replaces the one, a reload both
  await page.evaluate(() => { document.getElementById('live').dataset.first = '1'; window.pantryKept = true; });
  let updated = true;
  try {
    await page.waitForFunction(() => !document.getElementById('live').dataset.first, null, { timeout: 8000 });
  } catch { updated = false; }
  result.js = {
    updated,
    kept_window: await page.evaluate(() => window.pantryKept === true),
    progress: await page.$$eval('[role=progressbar]', (bars) => bars.map((b) => Number(b.getAttribute('aria-valuenow')))),
    html: await page.content(),
  };
  await page.screenshot({ path: screenshot, fullPage: true });
  const quiet = await browser.newContext({ javaScriptEnabled: false });
  const bare = await quiet.newPage();
  await bare.goto(url);
  result.nojs = { html: await bare.content() };
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
