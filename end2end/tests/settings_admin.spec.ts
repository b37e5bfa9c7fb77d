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
  await expect(page.getByRole('button', { name: 'Copy' })).toBeVisible();
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

test('a merchant edits a webhook, with the URL checked while typing and a select-all per group', async ({ page }) => {
  const errors = watchConsole(page);
  const id = await createWebhook('store-a', 'https://before.example.com/hook');
  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);
  await settle(page);

  await page.getByRole('button', { name: 'Edit' }).click();
  const url = page.getByLabel('Endpoint URL');
  await expect(url).toHaveValue('https://before.example.com/hook');
  await url.fill('ftp://after.example.com/hook');
  // Said while typing, before anything is sent.
  await expect(page.getByText('The URL must start with https://.')).toBeVisible();
  await url.fill('https://after.example.com/hook#top');
  await expect(page.getByText('The URL must not contain a fragment')).toBeVisible();
  await url.fill('https://after.example.com/hook');
  await expect(page.locator('#edit-url-error')).toBeEmpty();

  // The catalog shows once "Selected events" is picked; a group's box picks the whole group.
  await page.getByRole('radio', { name: 'Selected events' }).check();
  await page.getByLabel('All Reviews events').check();
  await expect(page.getByRole('checkbox', { name: 'review-deleted' })).toBeChecked();
  await expect(page.getByRole('checkbox', { name: 'message-created' })).not.toBeChecked();
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('heading', { name: 'https://after.example.com/hook' })).toBeVisible();
  const saved = (await api('GET', `/webhooks/${id}`, stack.adminKey)).body;
  expect(saved.url).toBe('https://after.example.com/hook');
  expect(saved.event_types).toEqual(['review-created', 'review-deleted', 'review-updated']);
  expect(errors).toEqual([]);
});

test('turning a webhook back on offers to replay what it skipped, and says how many', async ({ page }) => {
  const errors = watchConsole(page);
  const id = await createWebhook('store-a', `${stack.receiverURL}/replay`);
  expect((await api('POST', `/webhooks/${id}/toggle`, stack.adminKey, { enabled: false })).status).toBe(200);
  for (let i = 0; i < 3; i++) {
    const res = await api('POST', '/events', stack.adminKey, { tenant_type: 'store', tenant_id: 'store-a', event_type: 'review-created', payload: { i } });
    expect(res.status).toBe(202);
  }
  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);
  await settle(page);
  await expect(page.locator('#skipped-count')).toContainText('3 events were not delivered while this webhook was off');

  await page.getByRole('switch').click();
  await expect(page.getByRole('switch')).toHaveAttribute('aria-checked', 'true');
  await page.getByRole('button', { name: 'Replay 3' }).click();
  await expect(page.locator('#replay-result')).toContainText('3 skipped events queued for delivery.');
  const ctx = await request.newContext();
  await expect.poll(async () => {
    const got: any[] = await (await ctx.get(`${stack.receiverURL}/_received`)).json();
    return got.filter((d) => d.path === '/replay').length;
  }, { timeout: 15_000 }).toBe(3);
  expect(errors).toEqual([]);
});

test('an admin filters delivery history across stores and sees totals per status', async ({ page }) => {
  const errors = watchConsole(page);
  const hook = await createWebhook('store-b', `${stack.receiverURL}/history`);
  for (let i = 0; i < 2; i++) {
    const res = await api('POST', '/events', stack.adminKey, { tenant_type: 'store', tenant_id: 'store-b', event_type: 'message-created', payload: { i } });
    expect(res.status).toBe(202);
  }
  const ctx = await request.newContext();
  await expect.poll(async () => {
    const got: any[] = await (await ctx.get(`${stack.receiverURL}/_received`)).json();
    return got.filter((d) => d.path === '/history').length;
  }, { timeout: 15_000 }).toBe(2);

  await signIn(page, stack.baseURL, 'admin@hookline.test');
  await page.getByRole('link', { name: 'Deliveries' }).click();
  await expect(page).toHaveURL(/\/admin\/deliveries$/);
  await page.getByLabel('Store').selectOption('store-b');
  await page.getByLabel('Event type').selectOption('message-created');
  // Other tests' webhooks of store-b get these events too: narrow to this one.
  await page.getByLabel('Webhook id').fill(hook);
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/store=store-b/);
  await expect(page.getByRole('table', { name: 'Deliveries' }).locator('tbody tr')).toHaveCount(2);
  await expect(page.getByLabel('Totals')).toContainText('2 deliveries');
  await expect(page.locator('.totals [data-status="succeeded"]')).toHaveText('succeeded: 2');

  await page.goto(`${stack.baseURL}/admin/deliveries?to=2024-02-31`);
  await expect(page.getByRole('alert')).toContainText('not a date');

  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.goto(`${stack.baseURL}/admin/deliveries`);
  await expect(page.getByRole('heading', { name: 'Not found' })).toBeVisible();
  expect(errors).toEqual([]);
});

test("a webhook's page charts the last day's attempts and filters its delivery log", async ({ page }) => {
  const errors = watchConsole(page);
  const id = await createWebhook('store-a', `${stack.receiverURL}/chart`);
  for (const eventType of ['review-created', 'review-created', 'message-created']) {
    const res = await api('POST', '/events', stack.adminKey, { tenant_type: 'store', tenant_id: 'store-a', event_type: eventType, payload: {} });
    expect(res.status).toBe(202);
  }
  const ctx = await request.newContext();
  await expect.poll(async () => {
    const got: any[] = await (await ctx.get(`${stack.receiverURL}/_received`)).json();
    return got.filter((d) => d.path === '/chart').length;
  }, { timeout: 15_000 }).toBe(3);

  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);
  await settle(page);
  await expect(page.locator('#health-summary')).toHaveText('3 successful and 0 failed attempts in the last 24 hours');
  await expect(page.getByRole('img', { name: /3 successful/ })).toBeVisible();
  await expect(page.locator('table.deliveries tbody tr')).toHaveCount(3);

  await page.getByLabel('Event type', { exact: true }).fill('message-created');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/event_type=message-created/);
  await expect(page.locator('table.deliveries tbody tr')).toHaveCount(1);
  await page.getByLabel('Status').selectOption('failed');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page.locator('table.deliveries')).toHaveCount(0);
  await page.getByRole('link', { name: 'Clear' }).click();
  await expect(page.locator('table.deliveries tbody tr')).toHaveCount(3);
  expect(errors).toEqual([]);
});

test('an admin installs an application on a store and disconnects it, which tells the application', async ({ page }) => {
  const errors = watchConsole(page);
  await signIn(page, stack.baseURL, 'admin@hookline.test');
  await page.goto(`${stack.baseURL}/admin/stores`);
  await settle(page);
  await page.getByLabel('New application: id').fill('app-e2e');
  await page.getByLabel('Application name').fill('Loyalty Partner');
  await page.getByRole('button', { name: 'Create application' }).click();
  const row = page.locator('tr[data-application-id="app-e2e"]');
  await expect(row).toContainText('Loyalty Partner');
  await expect(row).toContainText('None');

  await page.getByLabel('Application', { exact: true }).selectOption('app-e2e');
  await page.getByLabel('On store').selectOption('store-a');
  await page.getByRole('button', { name: 'Install', exact: true }).click();
  await expect(row).toContainText('store-a (Reviews)');

  // The application subscribes app-level to its disconnection.
  const made = await api('POST', '/api-keys', stack.adminKey, { name: 'partner', scope: 'application:app-e2e' });
  const key = made.body.key as string;
  const sub = await api('POST', '/webhooks', key, { url: `${stack.receiverURL}/disconnected`, event_types: ['integrations.applications.disconnected.v3'] });
  expect(sub.status).toBe(201);

  await row.getByRole('button', { name: 'Disconnect from store-a' }).click();
  await expect(row).toContainText('None');
  const ctx = await request.newContext();
  await expect.poll(async () => {
    const got: any[] = await (await ctx.get(`${stack.receiverURL}/_received`)).json();
    return got.filter((d) => d.path === '/disconnected').map((d) => JSON.parse(d.body).store);
  }, { timeout: 15_000 }).toEqual(['store-a']);
  expect(errors).toEqual([]);
});

test("each webhook row's actions menu sends a test event, rotates the secret, opens the editor and deletes", async ({ page }) => {
  const errors = watchConsole(page);
  const ctx = await request.newContext();
  await ctx.post(`${stack.receiverURL}/_config`, { data: { status: 200 } });
  const id = await createWebhook('store-a', `${stack.receiverURL}/menu`);
  await signIn(page, stack.baseURL, 'merchant@a.test');
  const row = page.locator(`li[data-webhook-id="${id}"]`);
  const open = async () => {
    await row.getByText('Actions').click();
  };

  await open();
  await row.getByRole('menuitem', { name: 'Send test event' }).click();
  await expect(row.locator('.row-result')).toContainText('Delivered: HTTP 200');

  await row.getByRole('menuitem', { name: 'Rotate secret' }).click();
  await expect(row.locator('.row-result')).toContainText('New secret created');

  await row.getByRole('menuitem', { name: 'Edit' }).click();
  await expect(page).toHaveURL(new RegExp(`/settings/api/webhooks/${id}\\?edit=1$`));
  await expect(page.getByLabel('Endpoint URL')).toHaveValue(`${stack.receiverURL}/menu`);

  await page.goto(`${stack.baseURL}/settings/api`);
  await settle(page);
  await open();
  await row.getByRole('menuitem', { name: 'Delete…' }).click();
  await row.getByRole('button', { name: 'Delete webhook' }).click();
  await expect(page.locator(`li[data-webhook-id="${id}"]`)).toHaveCount(0);
  expect((await api('GET', `/webhooks/${id}`, stack.adminKey)).status).toBe(404);
  expect(errors).toEqual([]);
});

test('an API key created before the WebAssembly has loaded is shown once after the form post', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.getByLabel('Key name').fill('Plain form key');
  await page.getByRole('button', { name: 'Create key' }).click();
  await expect(page).toHaveURL(/\/settings\/api\??$/);
  const shown = page.locator('#new-api-key');
  await expect(shown).toHaveText(/^hkl_/);
  const key = (await shown.textContent())!.trim();
  await expect(page.getByText('It will not be shown again.')).toBeVisible();
  expect((await api('GET', '/webhooks', key)).status).toBe(200);
  // Once: the next visit shows the key's row, not the key.
  await page.reload();
  await expect(page.getByRole('row', { name: /Plain form key/ })).toBeVisible();
  await expect(page.locator('#new-api-key')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText(key);
  await context.close();
});
