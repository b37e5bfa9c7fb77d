// The dashboard under its Content-Security-Policy: nothing the pages need is blocked, the
// copy button and the event-type picker work from /ui.js (before the WebAssembly too), and a
// form error still comes back after a plain form post.
import { test, expect, request, Page } from '@playwright/test';
import { Stack, startStack, watchConsole, settle, signIn } from './support';

let stack: Stack;

test.beforeAll(async () => {
  stack = await startStack();
});

test.afterAll(() => stack?.stop());

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

/// Records what the page's Content-Security-Policy blocks, from the first script on.
async function watchPolicy(page: Page) {
  await page.addInitScript(() => {
    const seen: string[] = ((window as any).__violations = []);
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return async () => page.evaluate(() => (window as any).__violations as string[]);
}

test('the copy button copies under the Content-Security-Policy', async ({ browser }) => {
  const context = await browser.newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.baseURL });
  const page = await context.newPage();
  const errors = watchConsole(page);
  const violations = await watchPolicy(page);
  const made = await api('POST', '/webhooks', { tenant_type: 'store', tenant_id: 'store-a', url: 'https://copy.example.com/hook' });
  expect(made.status).toBe(201);
  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${made.body.id}`);
  await settle(page);

  await page.getByRole('button', { name: 'Reveal' }).click();
  const secret = (await page.locator('#signing-secret').textContent())!.trim();
  expect(secret).toMatch(/^whsec_/);
  await page.getByRole('button', { name: 'Copy' }).click();
  await expect(page.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
  expect(await violations()).toEqual([]);
  expect(errors).toEqual([]);
  await context.close();
});

test('before the WebAssembly has loaded, a form error comes back and "All" picks a group', async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Scripts run, but the dashboard never hydrates: every form is a plain HTML form.
  await page.route('**/*.wasm', (route) => route.abort());
  const violations = await watchPolicy(page);
  await signIn(page, stack.baseURL, 'merchant@b.test');
  await page.locator('#add-webhook').click();
  await page.getByLabel('Endpoint URL').fill('http://example.com/hook');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.getByText('The URL must start with https://.')).toBeVisible();
  await expect(page).toHaveURL(/__sig=/);

  const target = `${stack.receiverURL}/hooks/before-wasm`;
  await page.getByLabel('Endpoint URL').fill(target);
  // The catalog shows once "Selected events" is picked.
  await page.getByRole('radio', { name: 'Selected events' }).check();
  await page.getByLabel('All Reviews events').check();
  await expect(page.getByRole('checkbox', { name: 'review-deleted' })).toBeChecked();
  await expect(page.getByRole('checkbox', { name: 'message-created' })).not.toBeChecked();
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.locator('.webhook-row', { hasText: target })).toBeVisible();
  await expect(page).not.toHaveURL(/__err=/);
  const list = await api('GET', '/webhooks?tenant_type=store&tenant_id=store-b');
  const made = list.body.items.find((w: any) => w.url === target);
  expect(made.event_types).toEqual(['review-created', 'review-deleted', 'review-updated']);
  expect(await violations()).toEqual([]);
  await context.close();
});
