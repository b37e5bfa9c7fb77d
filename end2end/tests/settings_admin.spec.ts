// Settings › API beyond the first slice (API keys, secret rotation, deletion) and the admin
// views (webhooks turned off automatically, stores and their users), in Chromium against the
// real server and receiver.
import { test, expect, request, Page } from '@playwright/test';
import { Stack, startStack, watchConsole, settle, signIn, PASSWORD } from './support';

let stack: Stack;

test.beforeAll(async () => {
  stack = await startStack();
});

test.afterAll(() => stack?.stop());

async function api(method: string, path: string, key: string, data?: unknown) {
  const ctx = await request.newContext();
  const res = await ctx.fetch(`${stack.baseURL}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}` },
    data,
  });
  const text = await res.text();
  return { status: res.status(), body: text ? JSON.parse(text) : null };
}

async function createWebhook(store: string, url: string) {
  const made = await api('POST', '/webhooks', stack.adminKey, { tenant_type: 'store', tenant_id: store, url });
  expect(made.status).toBe(201);
  return made.body.id as string;
}

test('a merchant creates an API key, sees it once, uses it and revokes it', async ({ page }) => {
  const errors = watchConsole(page);
  await signIn(page, stack.baseURL, 'merchant@a.test');
  await expect(page.getByText('No API keys yet.')).toBeVisible();

  await page.getByLabel('Key name').fill('Order service');
  await page.getByRole('button', { name: 'Create key' }).click();
  const shown = page.locator('#new-api-key');
  await expect(shown).toHaveText(/^hkl_/);
  const key = (await shown.textContent())!.trim();
  await expect(page.getByText('It will not be shown again.')).toBeVisible();
  const row = page.getByRole('row', { name: /Order service/ });
  await expect(row).toContainText('Never');
  // The table shows only the key's first characters.
  await expect(row).not.toContainText(key);

  // The key works for its store only.
  expect((await api('GET', '/webhooks', key)).status).toBe(200);
  expect((await api('GET', '/webhooks?tenant_type=store&tenant_id=store-b', key)).status).toBe(403);

  await row.getByRole('button', { name: 'Revoke' }).click();
  await expect(row).toContainText('Revoked');
  expect((await api('GET', '/webhooks', key)).status).toBe(401);
  expect(errors).toEqual([]);
});

test('a merchant rotates the signing secret and deletes a webhook after confirming', async ({ page }) => {
  const errors = watchConsole(page);
  const id = await createWebhook('store-a', 'https://rotate.example.com/hook');
  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);
  await settle(page);

  await page.getByRole('button', { name: 'Reveal' }).click();
  const secret = page.locator('#signing-secret');
  await expect(secret).toHaveText(/^whsec_/);
  const before = await secret.textContent();
  await page.getByRole('button', { name: 'Rotate' }).click();
  await expect(page.locator('#rotate-result')).toContainText('keeps signing deliveries for 24 hours');
  await page.getByRole('button', { name: 'Reveal' }).click();
  await expect(secret).toHaveText(/^whsec_/);
  expect(await secret.textContent()).not.toBe(before);

  // Deleting asks first; cancelling keeps the webhook.
  await page.getByRole('button', { name: 'Delete…' }).click();
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('button', { name: 'Delete…' })).toBeVisible();
  await page.getByRole('button', { name: 'Delete…' }).click();
  await expect(page.getByRole('alertdialog')).toContainText('cannot be undone');
  await page.getByRole('button', { name: 'Delete webhook' }).click();
  await expect(page).toHaveURL(/\/settings\/api$/);
  await expect(page.getByText('rotate.example.com')).toHaveCount(0);
  expect((await api('GET', `/webhooks/${id}`, stack.adminKey)).status).toBe(404);
  expect(errors).toEqual([]);
});

test('an admin sees a webhook turned off by 410 Gone and re-enables it; a merchant cannot', async ({ page }) => {
  const errors = watchConsole(page);
  const ctx = await request.newContext();
  await ctx.post(`${stack.receiverURL}/_config`, { data: { status: 410 } });
  const id = await createWebhook('store-b', `${stack.receiverURL}/gone`);
  const published = await api('POST', '/events', stack.adminKey, {
    tenant_type: 'store', tenant_id: 'store-b', event_type: 'review-created', payload: { id: 1 },
  });
  expect(published.status).toBe(202);
  await expect.poll(async () => (await api('GET', `/webhooks/${id}`, stack.adminKey)).body.enabled, { timeout: 15_000 }).toBe(false);
  await ctx.post(`${stack.receiverURL}/_config`, { data: { status: 200 } });

  await signIn(page, stack.baseURL, 'merchant@b.test');
  await page.goto(`${stack.baseURL}/admin/webhooks`);
  await expect(page.getByRole('heading', { name: 'Not found' })).toBeVisible();

  await signIn(page, stack.baseURL, 'admin@hookline.test');
  await page.getByRole('link', { name: 'Turned-off webhooks' }).click();
  await expect(page).toHaveURL(/\/admin\/webhooks$/);
  const row = page.locator(`tr[data-webhook-id="${id}"]`);
  await expect(row).toContainText('410 Gone');
  await expect(row).toContainText('store store-b');
  await row.getByRole('button', { name: 'Re-enable' }).click();
  await expect(row).toHaveCount(0);
  expect((await api('GET', `/webhooks/${id}`, stack.adminKey)).body.enabled).toBe(true);
  expect(errors).toEqual([]);
});

test('an admin creates a store and its merchant, who can then sign in', async ({ page, browser }) => {
  const errors = watchConsole(page);
  await signIn(page, stack.baseURL, 'admin@hookline.test');
  await page.getByRole('link', { name: 'Stores' }).click();
  await expect(page.locator('tr[data-store-id="store-a"]')).toContainText('merchant@a.test');

  // A taken id is refused in place.
  await page.getByLabel('Store id (app key)').fill('store-a');
  await page.getByLabel('Name', { exact: true }).fill('Again');
  await page.getByRole('button', { name: 'Create store' }).click();
  await expect(page.getByRole('alert')).toContainText('already exists');

  await page.getByLabel('Store id (app key)').fill('store-c');
  await page.getByLabel('Name', { exact: true }).fill('Store C');
  await page.getByRole('button', { name: 'Create store' }).click();
  await expect(page.locator('tr[data-store-id="store-c"]')).toContainText('Store C');

  await page.getByLabel('Store', { exact: true }).selectOption('store-c');
  await page.getByLabel('Email').fill('merchant@c.test');
  await page.getByLabel(/^Password/).fill(PASSWORD);
  await page.getByRole('button', { name: 'Create user' }).click();
  await expect(page.getByText('merchant@c.test can now sign in.')).toBeVisible();
  await expect(page.locator('tr[data-store-id="store-c"]')).toContainText('merchant@c.test');

  const other = await browser.newPage();
  await signIn(other, stack.baseURL, 'merchant@c.test');
  await expect(other.getByText('Store C')).toBeVisible();
  await other.close();
  expect(errors).toEqual([]);
});
