// Bulk replay on the webhook page, in Chromium against the real server and receiver: check
// the count and a sample, start the replay, watch it finish, and see the receiver get the same
// webhook-ids again. Once with the page's WebAssembly, once without JavaScript at all.
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

/// A store-a webhook to the receiver at `path` with `n` events delivered to it.
async function delivered(path: string, n: number): Promise<{ id: string; eventIds: string[] }> {
  const made = await api('POST', '/webhooks', { tenant_type: 'store', tenant_id: 'store-a', url: `${stack.receiverURL}${path}`, event_types: ['review-created'] });
  expect(made.status).toBe(201);
  const eventIds: string[] = [];
  for (let i = 0; i < n; i++) {
    const published = await api('POST', '/events', { tenant_type: 'store', tenant_id: 'store-a', event_type: 'review-created', payload: { review: { id: `rev_${i}` } } });
    expect(published.status).toBe(202);
    eventIds.push(published.body.id);
  }
  await expect.poll(async () => (await receivedAt(path)).length).toBe(n);
  // Settled: the delivery log says so once each attempt is recorded.
  await expect.poll(async () => {
    const log = await api('GET', `/webhooks/${made.body.id}/deliveries`);
    return log.body.items.filter((d: any) => d.status === 'succeeded').length;
  }).toBe(n);
  return { id: made.body.id, eventIds };
}

async function receivedAt(path: string): Promise<string[]> {
  const ctx = await request.newContext();
  const all: any[] = await (await ctx.get(`${stack.receiverURL}/_received`)).json();
  return all.filter((r) => r.path === path).map((r) => r.headers.find(([k]: [string, string]) => k === 'webhook-id')[1]);
}

test('a merchant checks, starts and watches a replay; the receiver gets the same webhook-ids', async ({ page }) => {
  const errors = watchConsole(page);
  const { id, eventIds } = await delivered('/replayed', 3);
  await signIn(page, stack.baseURL, 'merchant@a.test');
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);
  await settle(page);

  const panel = page.locator('section#replays');
  await expect(panel.getByRole('heading', { name: 'Replay deliveries' })).toBeVisible();
  await panel.getByLabel('Ended as').selectOption('succeeded');
  await panel.getByRole('button', { name: 'Check deliveries' }).click();
  await expect(page.locator('#replay-count')).toHaveText('3 deliveries match.');
  await expect(page.locator('#replay-check tbody tr')).toHaveCount(3);
  await settle(page);

  await page.getByRole('button', { name: 'Replay 3 deliveries' }).click();
  await expect(page.locator('#replay-list tr.replay')).toHaveCount(1);
  await expect.poll(async () => {
    await page.locator('#refresh-replays').click();
    return page.locator('#replay-list tr.replay').first().getAttribute('data-state');
  }, { timeout: 15_000 }).toBe('finished');
  await expect(page.locator('#replay-list .replay-progress').first()).toHaveText('3 of 3 queued');
  await expect.poll(async () => (await receivedAt('/replayed')).length).toBe(6);
  expect((await receivedAt('/replayed')).slice(3).sort()).toEqual([...eventIds].sort());
  expect(errors).toEqual([]);
});

test('the replay form works before the WebAssembly loads', async ({ browser }) => {
  const { id, eventIds } = await delivered('/replayed-plain', 2);
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${stack.baseURL}/login`);
  await page.getByLabel('Email').fill('merchant@a.test');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/settings\/api$/);
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);

  await page.getByRole('button', { name: 'Check deliveries' }).click();
  await expect(page.locator('#replay-count')).toHaveText('2 deliveries match.');
  await page.getByRole('button', { name: 'Replay 2 deliveries' }).click();
  // Back on the page, the replay is listed; reloading shows it finish.
  await expect.poll(async () => {
    await page.goto(`${stack.baseURL}/settings/api/webhooks/${id}`);
    return page.locator('#replay-list tr.replay').first().getAttribute('data-state');
  }, { timeout: 15_000 }).toBe('finished');
  await expect.poll(async () => (await receivedAt('/replayed-plain')).length).toBe(4);
  expect((await receivedAt('/replayed-plain')).slice(2).sort()).toEqual([...eventIds].sort());
  await context.close();
});
