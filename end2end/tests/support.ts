// Starts real processes for the browser tests: Hookline (`serve`, on a fresh SQLite file)
// and the test receiver, which verifies signatures with the standardwebhooks crate.
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Page, expect } from '@playwright/test';

const root = resolve(__dirname, '../..');
const hooklineBin = process.env.HOOKLINE_BIN ?? join(root, 'target/debug/hookline');
const receiverBin = process.env.RECEIVER_BIN ?? join(root, 'target/debug/test-receiver');

export const PASSWORD = 'correct horse battery';

export interface Stack {
  baseURL: string;
  receiverURL: string;
  adminKey: string;
  stop(): void;
}

function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  return new Promise((ok, fail) => {
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`${what} did not start: ${seen}`)), 30_000);
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
    child.on('exit', (code) => fail(new Error(`${what} exited with ${code}: ${seen}`)));
  });
}

export async function startStack(): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'hookline-e2e-'));
  const env = {
    ...process.env,
    HOOKLINE_DATABASE_URL: `sqlite://${join(dir, 'hookline.db')}?mode=rwc`,
    HOOKLINE_LISTEN: '127.0.0.1:0',
    HOOKLINE_ALLOW_NETWORKS: '127.0.0.0/8',
    HOOKLINE_ALLOW_HTTP: 'true',
    HOOKLINE_RETRY_SCHEDULE: '200ms,400ms,800ms',
    HOOKLINE_SITE_ROOT: process.env.HOOKLINE_SITE_ROOT ?? join(root, 'target/site'),
  };
  const cli = (args: string[], password?: string) =>
    execFileSync(hooklineBin, args, { env: { ...env, HOOKLINE_ADMIN_PASSWORD: password ?? '' } }).toString().trim();
  cli(['create-store', '--id', 'store-a', '--name', 'Store A']);
  cli(['create-store', '--id', 'store-b', '--name', 'Store B']);
  cli(['create-user', '--email', 'merchant@a.test', '--store', 'store-a'], PASSWORD);
  cli(['create-user', '--email', 'merchant@b.test', '--store', 'store-b'], PASSWORD);
  cli(['create-admin', '--email', 'admin@hookline.test'], PASSWORD);
  const adminKey = cli(['create-api-key', '--scope', 'admin', '--name', 'e2e']);

  const receiver = spawn(receiverBin, ['127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const receiverURL = await waitForLine(receiver, /listening on (http:\/\/\S+)/, 'the receiver');
  const server = spawn(hooklineBin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  // The server's log, for reading after a failure.
  mkdirSync(join(__dirname, '..', 'test-results'), { recursive: true });
  server.stderr?.on('data', (c: Buffer) => appendFileSync(join(__dirname, '..', 'test-results', 'hookline-server.log'), c));
  const baseURL = await waitForLine(server, /listening on (http:\/\/\S+)/, 'Hookline');
  return {
    baseURL,
    receiverURL,
    adminKey,
    stop() {
      server.kill('SIGTERM');
      receiver.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/// Collects browser console errors. A server function that answers a user mistake with a
/// 4xx shows up as a failed resource load; that is the expected answer, not a page error.
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    if (/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) return;
    errors.push(`${m.type()} at ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/// Waits until the page is hydrated: the WebAssembly has loaded and the network is quiet.
export async function settle(page: Page) {
  await page.waitForLoadState('networkidle');
}

export async function signIn(page: Page, baseURL: string, email: string) {
  await page.goto(`${baseURL}/login`);
  await settle(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/settings\/api$/);
  await settle(page);
}
