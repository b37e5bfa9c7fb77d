// The embeddable portal as a partner's site uses it: a page on another origin frames a
// one-time portal link, the merchant creates a webhook through the frame and sends it a test
// event; nothing outside the portal's store is reachable from the frame (not another store's
// webhook, not the dashboard, not with a dashboard user's cookie in the same browser); and a
// site that is not on the store's allow-list cannot frame the portal at all.
import { test, expect, request, Frame, Page } from '@playwright/test';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { Stack, startStack, watchConsole, settle, signIn } from './support';

let stack: Stack;
/// The partner's site (on the allow-list) and another site (not on it): each serves one page
/// with an iframe of whatever `src` it is given.
let partner: Site;
let stranger: Site;

interface Site {
  origin: string;
  server: Server;
  frameSrc: string;
}

async function site(): Promise<Site> {
  const s: Site = { origin: '', server: createServer(), frameSrc: 'about:blank' };
  s.server.on('request', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!DOCTYPE html><html><head><title>Partner app</title></head><body>
      <h1>Partner app</h1>
      <iframe id="portal" src="${s.frameSrc}" style="width:100%;height:700px;border:1px solid #ccc"></iframe>
    </body></html>`);
  });
  await new Promise<void>((ok) => s.server.listen(0, '127.0.0.1', ok));
  s.origin = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
  return s;
}

/// With HOOKLINE_SCREENSHOTS set, the README's picture of the portal is written to docs/.
async function shoot(page: Page, name: string) {
  if (process.env.HOOKLINE_SCREENSHOTS) {
    await page.screenshot({ path: join(resolve(__dirname, '../../docs'), name), fullPage: true });
  }
}

async function api(method: string, path: string, data?: unknown) {
  const ctx = await request.newContext();
  const res = await ctx.fetch(`${stack.baseURL}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.adminKey}` },
    data,
  });
  return { status: res.status(), body: res.status() === 204 ? null : await res.json() };
}

/// A fresh one-time link to store-a's portal.
async function portalLink(): Promise<string> {
  const { status, body } = await api('POST', '/portal-sessions', { tenant_type: 'store', tenant_id: 'store-a' });
  expect(status).toBe(201);
  return body.url as string;
}

/// The portal's frame in the partner page, once its first page has loaded.
async function portalFrame(page: Page): Promise<Frame> {
  await page.waitForLoadState('load');
  const frame = page.frames().find((f) => f !== page.mainFrame());
  expect(frame, 'the page has a frame').toBeTruthy();
  return frame!;
}

test.beforeAll(async () => {
  stack = await startStack();
  partner = await site();
  stranger = await site();
  const { status } = await api('PUT', '/stores/store-a/portal-origins', { origins: [partner.origin] });
  expect(status).toBe(200);
});

test.afterAll(() => {
  stack?.stop();
  partner?.server.close();
  stranger?.server.close();
});

test('a partner site frames the portal, creates a webhook through it, and reaches nothing else', async ({ page }) => {
  const errors = watchConsole(page);
  // Another store's webhook, and a dashboard user of that store signed in in the same browser.
  const theirs = await api('POST', '/webhooks', {
    tenant_type: 'store', tenant_id: 'store-b', url: `${stack.receiverURL}/hooks/store-b`,
  });
  expect(theirs.status).toBe(201);
  await signIn(page, stack.baseURL, 'merchant@b.test');

  const link = await portalLink();
  partner.frameSrc = link;
  await page.goto(partner.origin);
  const frame = await portalFrame(page);
  const portal = page.frameLocator('#portal');
  await expect(portal.getByRole('heading', { name: 'Webhooks' })).toBeVisible();
  await expect(portal.locator('#portal-title')).toHaveText('Store store-a');
  expect(frame.url()).toMatch(/\/portal\/[^/]+\/webhooks$/);
  const session = new URL(frame.url()).pathname.split('/')[2];
  await frame.waitForLoadState('networkidle');

  // Create a webhook through the frame: the form posts to the portal's own origin.
  await portal.getByRole('link', { name: 'Create Webhook' }).click();
  const target = `${stack.receiverURL}/hooks/portal`;
  await portal.getByLabel('Endpoint URL').fill(target);
  await portal.getByLabel('Description').fill('Made in the portal');
  await portal.getByRole('button', { name: 'Create', exact: true }).click();
  const row = portal.locator('.webhook-row', { hasText: target });
  await expect(row).toBeVisible();
  const made = await api('GET', `/webhooks/${await row.getAttribute('data-webhook-id')}`);
  await shoot(page, 'portal.png');
  expect([made.body.tenant_id, made.body.description]).toEqual(['store-a', 'Made in the portal']);

  // Its page: the secret, a test event and the delivery log.
  await row.getByRole('link', { name: target, exact: true }).click();
  await expect(portal.getByRole('heading', { name: target })).toBeVisible();
  await frame.waitForLoadState('networkidle');
  await portal.getByRole('button', { name: 'Reveal' }).click();
  await expect(portal.locator('#signing-secret')).toHaveText(/^whsec_/);
  await portal.getByRole('button', { name: 'Send test event' }).click();
  await expect(portal.getByRole('status').filter({ hasText: /Delivered|Failed/ })).toBeVisible();
  await expect(portal.locator('tr[data-delivery-id]')).toHaveCount(1);

  // The other store's webhook is not found, by the portal's pages or its server functions,
  // although the browser holds a cookie of that store's merchant.
  await frame.goto(`${stack.baseURL}/portal/${session}/webhooks/${theirs.body.id}`);
  await expect(portal.getByRole('heading', { name: 'Webhook not found' })).toBeVisible();
  await expect(portal.getByText('store-b')).toHaveCount(0);
  const status = await frame.evaluate(async ([s, id]) => {
    const res = await fetch('/ui/portal_reveal_secret', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ session: s, id }).toString(),
    });
    return res.status;
  }, [session, theirs.body.id as string]);
  expect(status).toBe(404);

  // The dashboard's pages refuse to load in the frame (frame-ancestors 'none').
  for (const path of ['/settings/api', '/admin/stores']) {
    await frame.goto(`${stack.baseURL}${path}`).catch(() => undefined);
    await expect(portal.getByRole('heading', { name: 'API' })).toHaveCount(0);
    await expect(portal.getByText('API keys')).toHaveCount(0);
    await expect(portal.getByText('Store B')).toHaveCount(0);
  }

  // The link was one-time: opened again, it says so.
  await page.goto(link);
  await expect(page.getByText('This portal link was already opened.')).toBeVisible();
  expect(errors.filter((e) => !/ERR_BLOCKED_BY_RESPONSE|frame-ancestors|Refused to (frame|display)/.test(e))).toEqual([]);
});

test('a site not on the allow-list cannot frame the portal', async ({ page }) => {
  stranger.frameSrc = await portalLink();
  await page.goto(stranger.origin);
  await portalFrame(page);
  await expect(page.getByRole('heading', { name: 'Partner app' })).toBeVisible();
  // Chromium replaced the refused page with its own error page: nothing of the portal shows.
  await expect(page.frameLocator('#portal').locator('#portal-title')).toHaveCount(0);
  await expect(page.frameLocator('#portal').getByRole('heading', { name: 'Webhooks' })).toHaveCount(0);

  // The same link kind, framed by the partner (on the list), shows the portal: the refusal
  // above is the allow-list's doing.
  partner.frameSrc = await portalLink();
  await page.goto(partner.origin);
  await expect(page.frameLocator('#portal').locator('#portal-title')).toHaveText('Store store-a');
});
