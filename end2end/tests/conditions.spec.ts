// The webhook form's delivery-control fields and the conditions test bench, in Chromium
// against the real server: once hydrated, and before any script has run (plain form posts).
import { test, expect, request } from '@playwright/test';
import { Stack, startStack, watchConsole, settle, signIn, PASSWORD } from './support';

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

async function publish(total: number) {
  const res = await api('POST', '/events', {
    tenant_type: 'store', tenant_id: 'store-a', event_type: 'review-created',
    payload: { order: { id: `o${total}`, total }, country: 'US' },
  });
  expect(res.status).toBe(202);
}

test('the edit form sets conditions, rate limit and fields, and the bench shows what would match', async ({ page }) => {
  const errors = watchConsole(page);
  const made = await api('POST', '/webhooks', { tenant_type: 'store', tenant_id: 'store-a', url: `${stack.receiverURL}/picky`, event_types: ['review-created'] });
  expect(made.status).toBe(201);
  const id = made.body.id as string;
  for (const total of [10, 200, 300]) await publish(total);

  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}?edit`);
  await settle(page);
  const form = page.getByRole('form', { name: 'Edit webhook' });
  await form.getByLabel('Payload conditions').fill('{"path": "order.total", "gtt": 100}');
  await form.getByLabel('Rate limit').fill('5');
  await form.getByLabel('Fields sent').fill('order.id, order.total');
  await form.getByRole('button', { name: 'Save' }).click();
  // The error is named beside its field, and nothing was saved.
  await expect(form.locator('.delivery-control')).toContainText('unknown operator "gtt"');
  await form.getByLabel('Payload conditions').fill('{"path": "order.total", "gt": 100}');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('#fact-rate-limit')).toHaveText('5 per second');
  await expect(page.locator('#fact-include-fields')).toHaveText('order.id, order.total');
  await expect(page.locator('#fact-conditions')).toContainText('"gt": 100');
  const saved = await api('GET', `/webhooks/${id}`);
  expect(saved.body.conditions).toEqual({ path: 'order.total', gt: 100 });
  expect(saved.body.rate_limit).toBe(5);

  // The bench starts from the webhook's conditions.
  const bench = page.locator('#conditions-bench');
  await bench.getByText('Try conditions on recent events').click();
  await expect(bench.locator('#bench-conditions')).toHaveValue(/"gt": 100/);
  await bench.getByLabel('review-created').check();
  await bench.getByRole('button', { name: 'Test conditions' }).click();
  await expect(bench.locator('#bench-summary')).toHaveText('2 of 3 events match.');
  await expect(bench.locator('tr[data-matches="false"]')).toContainText('filtered out: order.total > 100');
  expect(page.url()).not.toContain('bench=');
  expect(errors).toEqual([]);
});

test('before the script runs, the forms post and the bench answers on the page', async ({ browser }) => {
  const made = await api('POST', '/webhooks', { tenant_type: 'store', tenant_id: 'store-a', url: `${stack.receiverURL}/plain`, event_types: ['review-created'] });
  const id = made.body.id as string;
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${stack.baseURL}/login`);
  await page.getByLabel('Email').fill('merchant@a.test');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/settings\/api$/);

  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}?edit`);
  const form = page.getByRole('form', { name: 'Edit webhook' });
  await form.getByLabel('Keep order').check();
  await form.getByLabel('Rate limit').fill('12');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect.poll(async () => (await api('GET', `/webhooks/${id}`)).body.rate_limit).toBe(12);
  expect((await api('GET', `/webhooks/${id}`)).body.ordering).toBe(true);

  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);
  const bench = page.locator('#conditions-bench');
  await bench.getByText('Try conditions on recent events').click();
  await bench.locator('#bench-conditions').fill('{"path": "order.total", "lt": 100}');
  await bench.getByRole('button', { name: 'Test conditions' }).click();
  await expect(page).toHaveURL(/bench=1/);
  await expect(page.locator('#bench-summary')).toHaveText('1 of 3 events match.');
  await expect(page.locator('#bench-conditions')).toHaveValue('{"path": "order.total", "lt": 100}');
  await context.close();
});
