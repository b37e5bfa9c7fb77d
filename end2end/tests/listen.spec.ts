// From a new store to a verified event on localhost in under a minute: an admin makes a store
// and its API key, a developer runs `hookline listen` against the test receiver (as their local
// server) and `hookline trigger`, and the receiver verifies the event with the secret the CLI
// printed. While the CLI runs, Settings › API shows its listener; once it is killed, it is gone.
import { spawn, execFile, ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { test, expect, request } from '@playwright/test';
import { Stack, startStack, watchConsole, signIn, settle } from './support';

const hooklineBin = process.env.HOOKLINE_BIN ?? join(resolve(__dirname, '../..'), 'target/debug/hookline');
// The CLI reads no configuration file: it needs none.
const cliEnv = { ...process.env };
delete cliEnv.HOOKLINE_CONFIG;

let stack: Stack;
let listen: ChildProcess | undefined;

test.beforeAll(async () => {
  stack = await startStack();
});

test.afterAll(() => {
  listen?.kill('SIGKILL');
  stack?.stop();
});

/// The first match of `pattern` in what the child prints.
function printed(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((ok, fail) => {
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`hookline listen printed no ${pattern}: ${seen}`)), 20_000);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const m = seen.match(pattern);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => { seen += c.toString(); });
    child.on('exit', (code) => fail(new Error(`hookline listen exited with ${code}: ${seen}`)));
  });
}

test('a new store gets a verified event at a local receiver in under a minute', async ({ page }) => {
  const errors = watchConsole(page);
  const started = Date.now();
  const api = await request.newContext();
  const admin = { authorization: `Bearer ${stack.adminKey}` };

  // A new store and its API key.
  let res = await api.post(`${stack.baseURL}/api/v1/stores`, { headers: admin, data: { id: 'store-new', name: 'New Store' } });
  expect(res.status()).toBe(201);
  res = await api.post(`${stack.baseURL}/api/v1/api-keys`, { headers: admin, data: { name: 'laptop', scope: 'store:store-new' } });
  expect(res.status()).toBe(201);
  const key = (await res.json()).key as string;

  // The developer's terminal: listen, forwarding to the local receiver.
  listen = spawn(hooklineBin, ['listen', '--url', stack.baseURL, '--key', key, '--forward-to', `${stack.receiverURL}/local/webhooks`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: cliEnv,
  });
  const secret = await printed(listen, /Signing secret: (whsec_\S+)/);
  res = await api.post(`${stack.receiverURL}/_config`, { data: { secret } });
  expect(res.ok()).toBeTruthy();
  const line = printed(listen, /(\S+\s+review-created\s+\S+\s+-> 200 OK.*)/);

  // And another: trigger the catalog's example.
  const { stdout } = await promisify(execFile)(hooklineBin, ['trigger', 'review-created', '--url', stack.baseURL, '--key', key], {
    env: cliEnv,
  });
  const id = stdout.trim();
  expect(id).toMatch(/^[0-9a-f-]{36}$/);

  await expect
    .poll(async () => {
      const all: any[] = await (await api.get(`${stack.receiverURL}/_received`)).json();
      const got = all.find((r) => r.headers.some(([k, v]: [string, string]) => k === 'webhook-id' && v === id));
      return got && { verified: got.verified, path: got.path, error: got.verify_error };
    }, { timeout: 20_000 })
    .toEqual({ verified: true, path: '/local/webhooks', error: null });
  expect(await line).toContain(id);
  expect(Date.now() - started).toBeLessThan(60_000);

  // Settings › API shows the listener while it is connected...
  await signIn(page, stack.baseURL, 'admin@hookline.test');
  await page.goto(`${stack.baseURL}/settings/api?store=store-new`);
  await settle(page);
  const listening = page.getByRole('region', { name: 'Listening now' });
  await expect(listening).toContainText('hookline listen');
  await expect(listening).toContainText('events: all');

  // ...and not once the CLI is gone.
  const exited = new Promise((ok) => listen!.on('exit', ok));
  listen.kill('SIGKILL');
  await exited;
  await expect
    .poll(async () => {
      await page.reload();
      await settle(page);
      return page.getByRole('region', { name: 'Listening now' }).count();
    }, { timeout: 15_000 })
    .toBe(0);
  expect(errors).toEqual([]);
});
