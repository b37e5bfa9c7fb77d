// "Why didn't it arrive?" in Chromium against the real server: from a webhook's delivery log to
// the event's page, which shows the event and what happened for every webhook of the store; and
// another store's merchant gets the not-found page.
import { test, expect, request } from '@playwright/test';
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

test('the delivery log leads to the event page, which says why for every webhook', async ({ page }) => {
  const errors = watchConsole(page);
  const sent = await api('POST', '/webhooks', { tenant_type: 'store', tenant_id: 'store-a', url: `${stack.receiverURL}/explained`, event_types: null });
  expect(sent.status).toBe(201);
  const other = await api('POST', '/webhooks', { tenant_type: 'store', tenant_id: 'store-a', url: `${stack.receiverURL}/messages`, event_types: ['message-created'] });
  expect(other.status).toBe(201);
  const published = await api('POST', '/events', { tenant_type: 'store', tenant_id: 'store-a', event_type: 'review-created', payload: { review: { id: 'rev_42', rating: 5 } }, ordering_key: 'order-42' });
  expect(published.status).toBe(202);
  const eventId = published.body.id as string;
  await expect.poll(async () => {
    const explained = await api('GET', `/events/${eventId}/explain`);
    return explained.body.items.find((i: any) => i.webhook_id === sent.body.id)?.outcome;
  }).toBe('delivered');

  await signIn(page, stack.baseURL, 'merchant@a.test');
  // The delivery's detail, opened from the webhook's log, links to its event's page.
  const explained = await api('GET', `/events/${eventId}/explain`);
  const deliveryId = explained.body.items.find((i: any) => i.webhook_id === sent.body.id).delivery_id;
  await page.goto(`${stack.baseURL}/settings/api/webhooks/${sent.body.id}?delivery=${deliveryId}`);
  await settle(page);
  await page.locator(`a.event-link[href="/events/${eventId}"]`).click();
  await expect(page).toHaveURL(new RegExp(`/events/${eventId}$`));
  await expect(page.getByRole('heading', { name: "Why didn't it arrive?" })).toBeVisible();
  await expect(page.locator('#event-id')).toHaveText(eventId);
  await expect(page.locator('#ordering-key')).toHaveText('order-42');
  await expect(page.locator('pre.body')).toContainText('rev_42');
  const delivered = page.locator(`#explain-table tr[data-webhook-id="${sent.body.id}"]`);
  await expect(delivered).toHaveAttribute('data-outcome', 'delivered');
  await expect(delivered).toContainText('Delivered');
  await expect(delivered).toContainText('HTTP 200');
  const notSubscribed = page.locator(`#explain-table tr[data-webhook-id="${other.body.id}"]`);
  await expect(notSubscribed).toHaveAttribute('data-outcome', 'not_subscribed');
  await expect(notSubscribed).toContainText('message-created');
  await expect(page.locator(`#key-timeline tr[data-event-id="${eventId}"]`)).toContainText('succeeded');
  await settle(page);
  expect(errors).toEqual([]);

  // Another store's merchant: the not-found page, nothing of the event.
  await page.context().clearCookies();
  await signIn(page, stack.baseURL, 'merchant@b.test');
  await page.goto(`${stack.baseURL}/events/${eventId}`);
  await expect(page.getByRole('heading', { name: 'Event not found' })).toBeVisible();
  await expect(page.locator('body')).not.toContainText('rev_42');
});
