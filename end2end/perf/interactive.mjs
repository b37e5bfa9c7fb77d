// Time until Settings › API is interactive (hydrated), in Debian's Chromium, with an empty
// cache each time. Usage: node perf/interactive.mjs BASE_URL EMAIL PASSWORD [RUNS]
// Prints the median and each run, and what the WebAssembly cost over the wire.
import { chromium } from '@playwright/test';

const [base, email, password, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 5);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const signIn = await browser.newContext();
const page = await signIn.newPage();
await page.goto(`${base}/login`);
await page.fill('#email', email);
await page.fill('#password', password);
await page.click('button[type=submit]');
await page.waitForURL(/settings\/api/);
const cookies = await signIn.cookies();
await signIn.close();

const times = [];
let wasm = null;
for (let i = 0; i < runs; i++) {
  const context = await browser.newContext();
  await context.addCookies(cookies);
  const p = await context.newPage();
  const started = Date.now();
  await p.goto(`${base}/settings/api`);
  await p.waitForFunction(() => document.documentElement.dataset.hydrated === 'true', null, { timeout: 60_000 });
  times.push(Date.now() - started);
  wasm = await p.evaluate(() => {
    const e = performance.getEntriesByType('resource').find((r) => r.name.endsWith('.wasm'));
    return e ? { transferred: e.transferSize, decoded: e.decodedBodySize } : null;
  });
  await context.close();
}
await browser.close();
const sorted = [...times].sort((a, b) => a - b);
console.log(JSON.stringify({ median_ms: sorted[Math.floor(sorted.length / 2)], runs_ms: times, wasm }));
