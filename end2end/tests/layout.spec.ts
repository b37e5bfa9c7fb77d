// The main pages hold at 375 px wide (no sideways scrolling), and, when HOOKLINE_SCREENSHOTS is
// set, their screenshots are written to docs/ for the README.
import { test, expect, request, Page } from '@playwright/test';
import { join, resolve } from 'node:path';
import { Stack, startStack, watchConsole, settle, signIn } from './support';

let stack: Stack;
let webhookId: string;

test.beforeAll(async () => {
  stack = await startStack();
  const api = await request.newContext();
  const made = await api.post(`${stack.baseURL}/api/v1/webhooks`, {
    headers: { authorization: `Bearer ${stack.adminKey}` },
    data: { tenant_type: 'store', tenant_id: 'store-a', url: `${stack.receiverURL}/orders`, description: 'Order service', event_types: ['review-created', 'review-updated'] },
  });
  webhookId = (await made.json()).id;
  await api.post(`${stack.baseURL}/api/v1/webhooks`, {
    headers: { authorization: `Bearer ${stack.adminKey}` },
    data: { tenant_type: 'store', tenant_id: 'store-a', url: 'https://crm.example.com/hooks/yotpo', description: 'CRM sync' },
  });
  for (let i = 0; i < 6; i++) {
    await api.post(`${stack.baseURL}/api/v1/events`, {
      headers: { authorization: `Bearer ${stack.adminKey}` },
      data: { tenant_type: 'store', tenant_id: 'store-a', event_type: 'review-created', payload: { review: { id: 100 + i, rating: 5 } } },
    });
  }
});

test.afterAll(() => stack?.stop());

const docs = resolve(__dirname, '../../docs');

async function fitsWidth(page: Page) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
}

async function shoot(page: Page, name: string) {
  if (process.env.HOOKLINE_SCREENSHOTS) {
    await page.screenshot({ path: join(docs, name), fullPage: true });
  }
}

for (const width of [375, 1200]) {
  test(`the main pages hold at ${width} px`, async ({ browser }) => {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    const errors = watchConsole(page);
    await page.goto(`${stack.baseURL}/login`);
    await settle(page);
    await fitsWidth(page);
    if (width > 400) await shoot(page, 'login.png');

    await signIn(page, stack.baseURL, 'merchant@a.test');
    await expect(page.getByText('Order service')).toBeVisible();
    await fitsWidth(page);
    await shoot(page, width > 400 ? 'settings-api.png' : 'settings-api-mobile.png');

    await page.goto(`${stack.baseURL}/settings/api/webhooks/${webhookId}`);
    await settle(page);
    await expect(page.locator('table.deliveries tbody tr').first()).toBeVisible();
    await fitsWidth(page);
    await shoot(page, width > 400 ? 'webhook.png' : 'webhook-mobile.png');

    await signIn(page, stack.baseURL, 'admin@hookline.test');
    await page.goto(`${stack.baseURL}/admin/deliveries`);
    await settle(page);
    await expect(page.getByLabel('Totals')).toBeVisible();
    await fitsWidth(page);
    if (width > 400) await shoot(page, 'admin-deliveries.png');
    expect(errors).toEqual([]);
    await page.close();
  });
}
