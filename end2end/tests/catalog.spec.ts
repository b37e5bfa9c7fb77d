// The event catalog as a merchant's developer uses it: search it, read a type's schema and
// example, then send that type as a test event from the webhook page and find it in the
// delivery log.
import { test, expect, request, Page } from '@playwright/test';
import { join, resolve } from 'node:path';
import { Stack, startStack, watchConsole, settle, signIn } from './support';

let stack: Stack;

test.beforeAll(async () => {
  stack = await startStack();
});

test.afterAll(() => stack?.stop());

/// With HOOKLINE_SCREENSHOTS set, the README's picture of the catalog is written to docs/.
async function shoot(page: Page, name: string) {
  if (process.env.HOOKLINE_SCREENSHOTS) {
    await page.screenshot({ path: join(resolve(__dirname, '../../docs'), name), fullPage: true });
  }
}

test('a merchant searches the catalog and sends a chosen type as a test event', async ({ page }) => {
  const errors = watchConsole(page);
  await signIn(page, stack.baseURL, 'merchant@a.test');

  // Settings › API links to the catalog; a search narrows it.
  await page.getByRole('link', { name: 'Event catalog' }).click();
  await expect(page).toHaveURL(/\/settings\/api\/events$/);
  await settle(page);
  await expect(page.locator('article[data-event-type="review-created"]')).toBeVisible();
  await page.getByRole('searchbox', { name: 'Search' }).fill('sms clicks');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/\?q=sms\+clicks$/);
  const entries = page.locator('article.catalog-entry');
  await expect(entries).toHaveCount(1);
  const clicked = page.locator('article[data-event-type="communication.sms.clicked.v1"]');
  await clicked.getByText('JSON Schema').click();
  await expect(clicked.locator('pre.schema')).toContainText('"required"');
  await clicked.getByText('Example payload').click();
  await expect(clicked.locator('pre.example')).toContainText('part_of_campaign');

  // A webhook of two types: the test event's type is chosen among them.
  const api = await request.newContext();
  const target = `${stack.receiverURL}/hooks/catalog`;
  const created = await api.post(`${stack.baseURL}/api/v1/webhooks`, {
    headers: { authorization: `Bearer ${stack.adminKey}` },
    data: {
      tenant_type: 'store', tenant_id: 'store-a', url: target,
      event_types: ['review-created', 'communication.sms.clicked.v1'],
    },
  });
  expect(created.status()).toBe(201);
  const webhook = await created.json();
  await api.post(`${stack.receiverURL}/_config`, { data: { secret: webhook.secret } });

  await page.goto(`${stack.baseURL}/settings/api/webhooks/${webhook.id}`);
  await settle(page);
  const type = page.getByRole('combobox', { name: 'Event type to send' });
  await expect(type.locator('option')).toHaveText(['review-created', 'communication.sms.clicked.v1']);
  await type.selectOption('review-created');
  await page.getByRole('button', { name: 'Send test event' }).click();
  await expect(page.getByRole('status').filter({ hasText: /Delivered: HTTP 200/ })).toBeVisible();
  await type.selectOption('communication.sms.clicked.v1');
  await page.getByRole('button', { name: 'Send test event' }).click();

  // Both are in the delivery log, each with its type, and the receiver got the examples.
  const log = page.locator('table.deliveries tbody tr');
  await expect(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect(log).toHaveCount(2, { timeout: 1000 });
  }).toPass();
  await expect(log.nth(0).locator('td').nth(1)).toHaveText('communication.sms.clicked.v1');
  await expect(log.nth(1).locator('td').nth(1)).toHaveText('review-created');
  const got: any[] = await (await api.get(`${stack.receiverURL}/_received`)).json();
  const mine = got.filter((r) => r.path === '/hooks/catalog');
  const kinds = mine.map((r) => { const body = JSON.parse(r.body); return body.type ?? body.event_name; });
  expect(kinds).toEqual(['review-created', 'communication.sms.clicked.v1']);
  expect(mine.every((r) => r.verified)).toBe(true);

  // The public catalog needs no sign-in, and holds on a phone's width.
  const anonymous = await page.context().browser()!.newPage({ viewport: { width: 375, height: 900 } });
  await anonymous.goto(`${stack.baseURL}/docs/events`);
  await settle(anonymous);
  const overflow = await anonymous.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await anonymous.setViewportSize({ width: 1200, height: 900 });
  await anonymous.goto(`${stack.baseURL}/docs/events?q=review`);
  await expect(anonymous.locator('article[data-event-type="review-created"]')).toBeVisible();
  await expect(anonymous.locator('article[data-event-type="communication.sms.clicked.v1"]')).toHaveCount(0);
  const review = anonymous.locator('article[data-event-type="review-created"]');
  await review.getByText('JSON Schema').click();
  await review.getByText('Example payload').click();
  await shoot(anonymous, 'event-catalog.png');
  await anonymous.close();

  expect(errors).toEqual([]);
});
