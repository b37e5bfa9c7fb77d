// The webhook page's signature check, run in the browser's WebAssembly on a request the real
// test receiver got, and the admin overview at /admin with its chart, in Chromium against the
// real server.
import { test, expect, request, Page } from '@playwright/test';
import { join, resolve } from 'node:path';
import { Stack, startStack, watchConsole, settle, signIn } from './support';

let stack: Stack;

test.beforeAll(async () => {
  stack = await startStack();
});

test.afterAll(() => stack?.stop());

/// With HOOKLINE_SCREENSHOTS set, the README's pictures of these pages are written to docs/.
async function shoot(page: Page, name: string, part?: string) {
  if (!process.env.HOOKLINE_SCREENSHOTS) return;
  const path = join(resolve(__dirname, '../../docs'), name);
  if (part) await page.locator(part).screenshot({ path });
  else await page.screenshot({ path, fullPage: true });
}

async function fitsWidth(page: Page) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
}

async function api(method: string, path: string, data?: unknown) {
  const ctx = await request.newContext();
  const res = await ctx.fetch(`${stack.baseURL}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.adminKey}` },
    data,
  });
  const text = await res.text();
  return { status: res.status(), body: text ? JSON.parse(text) : null };
}

test('a pasted delivery verifies in the browser, and a re-indented body is named', async ({ page }) => {
  const errors = watchConsole(page);
  const made = await api('POST', '/webhooks', { tenant_type: 'store', tenant_id: 'store-a', url: `${stack.receiverURL}/signed`, event_types: ['review-created'] });
  expect(made.status).toBe(201);
  const id = made.body.id as string;
  const ctx = await request.newContext();
  await ctx.post(`${stack.receiverURL}/_config`, { data: { secret: made.body.secret } });
  const published = await api('POST', '/events', { tenant_type: 'store', tenant_id: 'store-a', event_type: 'review-created', payload: { review: { id: 'rev_9', rating: 4, body: 'Lovely "shoes"' } } });
  expect(published.status).toBe(202);
  let got: any;
  await expect.poll(async () => {
    const all: any[] = await (await ctx.get(`${stack.receiverURL}/_received`)).json();
    got = all.find((r) => r.path === '/signed');
    return !!got;
  }).toBe(true);
  expect(got.verified, got.verify_error).toBe(true);
  const headers = got.headers.map(([k, v]: [string, string]) => `${k}: ${v}`).join('\n');

  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);
  await settle(page);
  const check = page.locator('#signature-check');
  await check.getByLabel('Headers, one per line').fill(headers);
  await check.getByLabel('Body, exactly as received').fill(got.body);
  // Checked in the browser: the page asks only for the secrets, and stays where it is.
  const material = page.waitForRequest((r) => r.url().includes('/ui/signature_material'));
  await check.getByRole('button', { name: 'Check signature' }).click();
  await material;
  const verdict = page.locator('#signature-verdict');
  await expect(verdict).toContainText('Verifies');
  await expect(verdict).toContainText('The signature verifies');
  expect(page.url()).not.toContain('signature_check');
  await shoot(page, 'signature-check.png', '#signature-check');

  // The body as a pretty-printer leaves it.
  await check.getByLabel('Body, exactly as received').fill(JSON.stringify(JSON.parse(got.body), null, 2));
  await check.getByRole('button', { name: 'Check signature' }).click();
  await expect(verdict).toContainText('Body changed');
  await expect(verdict).toContainText('whitespace');

  // The receiver configured with another webhook's secret.
  const other = await api('POST', '/webhooks', { tenant_type: 'store', tenant_id: 'store-a', url: `${stack.receiverURL}/other`, event_types: ['review-updated'] });
  await check.getByLabel('Body, exactly as received').fill(got.body);
  await check.getByLabel('The secret your endpoint verifies with (optional)').fill(other.body.secret);
  await check.getByRole('button', { name: 'Check signature' }).click();
  await expect(verdict).toContainText('Wrong secret');

  // A header lost on the way is named.
  await check.getByLabel('The secret your endpoint verifies with (optional)').fill('');
  await check.getByLabel('Headers, one per line').fill(headers.split('\n').filter((l: string) => !l.startsWith('webhook-signature')).join('\n'));
  await check.getByRole('button', { name: 'Check signature' }).click();
  await expect(verdict).toContainText('Missing header');
  await expect(verdict).toContainText('webhook-signature');
  expect(errors).toEqual([]);
});

test('an admin opens the overview and sees attempts per hour', async ({ page }) => {
  const errors = watchConsole(page);
  await signIn(page, stack.baseURL, 'admin@hookline.test');
  await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Overview' }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  const chart = page.locator('figure.health-chart');
  await expect(chart.locator('svg')).toBeVisible();
  await expect(chart.locator('g.hour')).toHaveCount(24);
  await expect(chart.locator('figcaption')).toContainText('attempts in the last 24 hours');
  await expect(page.getByRole('heading', { name: 'Queue' })).toBeVisible();

  await page.getByRole('link', { name: 'Last 7 days' }).click();
  await expect(page).toHaveURL(/period=7d/);
  await expect(chart.locator('g.hour')).toHaveCount(7 * 24);
  await expect(chart.locator('figcaption')).toContainText('attempts in the last 7 days');
  await shoot(page, 'admin-overview.png');
  await page.setViewportSize({ width: 375, height: 900 });
  await fitsWidth(page);
  expect(errors).toEqual([]);
});
