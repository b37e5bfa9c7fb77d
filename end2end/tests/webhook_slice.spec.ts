// The foundation slice, as a merchant and a producer live it: sign in, create a webhook in
// Settings > API, publish an event over REST, see it arrive signed at a real receiver and in
// the webhook's delivery log; switch the webhook off and see deliveries stop.
import { test, expect, request } from '@playwright/test';
import { Stack, startStack, watchConsole, settle, signIn } from './support';

let stack: Stack;

test.beforeAll(async () => {
  stack = await startStack();
});

test.afterAll(() => stack?.stop());

async function publish(eventType: string, payload: unknown, tenant = 'store-a') {
  const api = await request.newContext();
  const res = await api.post(`${stack.baseURL}/api/v1/events`, {
    headers: { authorization: `Bearer ${stack.adminKey}` },
    data: { tenant_type: 'store', tenant_id: tenant, event_type: eventType, payload },
  });
  expect(res.status()).toBe(202);
  return (await res.json()).id as string;
}

async function received(): Promise<any[]> {
  const api = await request.newContext();
  return (await api.get(`${stack.receiverURL}/_received`)).json();
}

test('a merchant creates a webhook and sees a signed delivery in its log', async ({ page }) => {
  const errors = watchConsole(page);
  await signIn(page, stack.baseURL, 'merchant@a.test');

  await page.getByRole('link', { name: 'Create Webhook' }).click();
  const url = page.getByLabel('Endpoint URL');
  await url.fill('http://example.com/hooks');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.getByText('The URL must start with https://.')).toBeVisible();
  await expect(url).toHaveValue('http://example.com/hooks');

  await url.fill('https://169.254.169.254/latest');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.getByText(/169\.254\.169\.254, a private, loopback or link-local address/)).toBeVisible();

  const target = `${stack.receiverURL}/hooks/yotpo`;
  await url.fill(target);
  await page.getByLabel('Description').fill('Reviews to our CRM');
  await expect(page.getByLabel('All events')).toBeChecked();
  await page.getByRole('button', { name: 'Create', exact: true }).click();

  const row = page.locator('.webhook-row', { hasText: target });
  await expect(row).toBeVisible();
  await expect(row.getByText('All events')).toBeVisible();
  await expect(row.getByRole('switch')).toHaveAttribute('aria-checked', 'true');
  await expect(page.getByRole('link', { name: 'Add' })).toBeVisible();

  // The signing secret, revealed on the webhook's page, goes to the receiver.
  await row.getByRole('link', { name: target }).click();
  await settle(page);
  await page.getByRole('button', { name: 'Reveal' }).click();
  const secret = (await page.locator('#signing-secret').textContent())!.trim();
  expect(secret).toMatch(/^whsec_/);
  const api = await request.newContext();
  await api.post(`${stack.receiverURL}/_config`, { data: { secret } });

  const eventId = await publish('review-created', { type: 'review-created', data: { id: 'rev_1', rating: 5 } });
  await expect.poll(async () => (await received()).length).toBe(1);
  const [delivery] = await received();
  expect(delivery.verified, delivery.verify_error).toBe(true);
  const header = (name: string) => delivery.headers.find(([k]: [string]) => k === name)?.[1];
  expect(header('webhook-id')).toBe(eventId);
  expect(header('webhookmessageid')).toBe(eventId);
  expect(header('webhookmessageidpertarget')).toBeTruthy();
  expect(header('x-webhooks-event-type')).toBe('review-created');
  expect(header('x-webhooks-tenant-type')).toBe('store');
  expect(header('x-webhooks-tenant-id')).toBe('store-a');
  expect(header('x-webhooks-sequence')).toBe('1');
  expect(JSON.parse(delivery.body)).toEqual({ type: 'review-created', data: { id: 'rev_1', rating: 5 } });

  // The delivery and its attempt appear in the log.
  const succeeded = page.locator('tr[data-status="succeeded"]');
  await expect(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect(succeeded).toHaveCount(1, { timeout: 1000 });
  }).toPass();
  await expect(succeeded.locator('td.http')).toHaveText('200');
  await expect(succeeded.locator('td.duration')).toHaveText(/\d+ ms/);
  await expect(succeeded.locator('td.attempts')).toHaveText('1');
  await succeeded.getByRole('link').click();
  const detail = page.getByLabel('Delivery detail');
  await expect(detail.getByText(/Attempt 1 · .* · scheduled/)).toBeVisible();
  await expect(detail.getByText(/HTTP 200 in \d+ ms/)).toBeVisible();

  // Resend makes one more attempt, recorded as manual; a test event is one attempt more.
  await detail.getByRole('button', { name: 'Resend' }).click();
  await expect(page.getByRole('status').filter({ hasText: /Delivered: HTTP 200 in \d+ ms/ })).toBeVisible();
  await expect.poll(async () => (await received()).length).toBe(2);
  await expect(page.getByText(/Attempt 2 · .* · manual/)).toBeVisible();
  await page.getByRole('button', { name: 'Send test event' }).click();
  await expect(page.getByRole('status').filter({ hasText: /Delivered: HTTP 200/ }).first()).toBeVisible();
  await expect.poll(async () => (await received()).length).toBe(3);

  // Switching the webhook off stops its deliveries.
  await page.getByRole('link', { name: 'Settings › API' }).first().click();
  await settle(page);
  const toggle = page.locator('.webhook-row', { hasText: target }).getByRole('switch');
  await toggle.focus();
  await page.keyboard.press('Space');
  await expect(toggle).toHaveAttribute('aria-checked', 'false');
  await publish('review-updated', { type: 'review-updated', data: { id: 'rev_1' } });
  await page.waitForTimeout(1500);
  expect((await received()).length).toBe(3);
  await page.reload();
  await settle(page);
  await expect(page.locator('.webhook-row', { hasText: target }).getByRole('switch')).toHaveAttribute('aria-checked', 'false');

  expect(errors).toEqual([]);
});

test("a merchant who opens another store's webhook by its address gets a not-found page", async ({ page }) => {
  const errors = watchConsole(page);
  const api = await request.newContext();
  const created = await api.post(`${stack.baseURL}/api/v1/webhooks`, {
    headers: { authorization: `Bearer ${stack.adminKey}` },
    data: { tenant_type: 'store', tenant_id: 'store-b', url: 'https://store-b.example.com/hook' },
  });
  expect(created.status()).toBe(201);
  const { id } = await created.json();

  await signIn(page, stack.baseURL, 'merchant@a.test');
  const res = await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);
  expect(res?.status()).toBe(404);
  await settle(page);
  await expect(page.getByRole('heading', { name: 'Webhook not found' })).toBeVisible();
  await expect(page.getByText('store-b.example.com')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('a wrong password keeps the merchant on the sign-in page with a message', async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto(`${stack.baseURL}/login`);
  await settle(page);
  await page.getByLabel('Email').fill('merchant@a.test');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('That email and password do not match.');
  await expect(page).toHaveURL(/\/login$/);
  const res = await page.goto(`${stack.baseURL}/settings/api`);
  await expect(page).toHaveURL(/\/login$/);
  expect(res?.ok()).toBe(true);
  expect(errors).toEqual([]);
});

test('the sign-in form works before the WebAssembly has loaded', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${stack.baseURL}/login`);
  await page.getByLabel('Email').fill('merchant@a.test');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/settings\/api$/);
  await expect(page.getByRole('heading', { name: 'Webhooks' })).toBeVisible();
  await context.close();
});

test('creating a webhook and switching it off work before the WebAssembly has loaded', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page, stack.baseURL, 'merchant@b.test');
  // "Create Webhook", or "Add" when other tests gave store-b a webhook first.
  await page.locator('#add-webhook').click();
  const target = `${stack.receiverURL}/hooks/plain-form`;
  await page.getByLabel('Endpoint URL').fill(target);
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  const row = page.locator('.webhook-row', { hasText: target });
  await expect(row).toBeVisible();
  await expect(row.getByRole('switch')).toHaveAttribute('aria-checked', 'true');
  await row.getByRole('switch').click();
  await expect(page.locator('.webhook-row', { hasText: target }).getByRole('switch')).toHaveAttribute('aria-checked', 'false');
  await context.close();
});
