// GraphiQL, as `GET /graphql` serves it, in a real browser (Chromium) with no network but
// the server's: the page loads from the server's own files, the docs explorer lists the
// Query type's fields, a query runs, and a subscription (over WebSocket, with the token
// from the headers tab) shows a mutation made elsewhere.
//
// Every request to another host is aborted and fails the check, as does any violation of
// the page's Content-Security-Policy. The whole session runs twice: on the server's own
// http:// address, then through a local TLS-terminating proxy (self-signed, made here with
// openssl; it sets X-Forwarded-Proto/Host), where the subscription must go over wss://.
//
// Run through `run.sh`, which starts the server. Needs CRM_URL and CRM_TOKEN.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.CRM_URL;
const token = process.env.CRM_TOKEN;
if (!base || !token) {
  console.error('CRM_URL and CRM_TOKEN must be set (run.sh sets them)');
  process.exit(2);
}
const server = new URL(base);

const query = '{ viewer { subject scopes } customers(first: 1) { totalCount } }';
const subscription = 'subscription { customerChanged { op customer { name } } }';

/// An https:// proxy on a free port of 127.0.0.1 in front of `target`, as a load balancer
/// that terminates TLS would be: HTTP and WebSocket upgrades, with X-Forwarded-Proto/Host.
async function tlsProxy(target) {
  const dir = mkdtempSync(join(tmpdir(), 'crm-tls-'));
  let key;
  let cert;
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    key = readFileSync(join(dir, 'key.pem'));
    cert = readFileSync(join(dir, 'cert.pem'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const forwarded = (req) => ({ 'x-forwarded-proto': 'https', 'x-forwarded-host': req.headers.host });
  const proxy = https.createServer({ key, cert }, (req, res) => {
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url,
        headers: { ...req.headers, ...forwarded(req) } },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  proxy.on('upgrade', (req, socket, head) => {
    const upstream = net.connect(Number(target.port), target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      }
      for (const [k, v] of Object.entries(forwarded(req))) lines.push(`${k}: ${v}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return { proxy, url: `https://127.0.0.1:${proxy.address().port}` };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-background-networking',
    // Below the routing, too: no other host even resolves.
    `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${server.hostname}`,
  ],
});

/// One first-time user's session with GraphiQL at `pageBase`; true when every check held.
async function session(pageBase, label) {
  console.log(`-- ${label}: ${pageBase}/graphql`);
  const origin = new URL(pageBase);
  const secure = origin.protocol === 'https:';
  const name = `Browser ${label} ${Date.now()}`;
  const context = await browser.newContext({ ignoreHTTPSErrors: secure });
  let page = null;
  const pageErrors = [];
  try {
    // Anything not for the server is aborted, and remembered.
    const foreign = [];
    const own = (url) => {
      const u = new URL(url);
      return u.host === origin.host && (secure ? ['https:', 'wss:'] : ['http:', 'ws:']).includes(u.protocol);
    };
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (own(url)) return route.continue();
      foreign.push(url);
      return route.abort('blockedbyclient');
    });
    context.on('request', (req) => {
      const url = req.url();
      if (!url.startsWith('data:') && !own(url) && !foreign.includes(url)) foreign.push(url);
    });

    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const failedRequests = [];
    page.on('requestfailed', (req) => failedRequests.push(`${req.url()}: ${req.failure()?.errorText}`));
    const assets = [];
    page.on('response', (res) => {
      if (new URL(res.url()).pathname.startsWith('/graphql/assets/')) {
        assets.push(`${res.status()} ${new URL(res.url()).pathname}`);
      }
    });
    // Without the token, the server refuses GraphiQL's introspection (400, and the browser
    // logs the failed load); nothing else may fail.
    const refused = [];
    page.on('response', (res) => {
      const req = res.request();
      const anonymous = req.method() === 'POST' && !req.headers().authorization && res.status() === 400;
      if (res.status() >= 400 && !anonymous) refused.push(`${res.status()} ${req.method()} ${res.url()}`);
    });
    const consoleErrors = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
        consoleErrors.push(msg.text());
      }
    });

    // What the WebSocket carried, to check the protocol and not only the rendered text.
    const frames = { sent: [], received: [], url: null };
    page.on('websocket', (ws) => {
      frames.url = ws.url();
      if (!own(ws.url())) foreign.push(ws.url());
      ws.on('framesent', (f) => frames.sent.push(String(f.payload)));
      ws.on('framereceived', (f) => frames.received.push(String(f.payload)));
    });

    // A record of anything the Content-Security-Policy refused.
    await page.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`),
      );
    });

    const response = await page.goto(`${pageBase}/graphql`, { waitUntil: 'load' });
    const csp = response.headers()['content-security-policy'] ?? '';
    await page.waitForSelector('.graphiql-execute-button', { timeout: 30000 });

    // Replaces an editor's text the way typing would, then lets GraphiQL parse it.
    const setEditor = async (selector, text) => {
      await page.$eval(selector, (el, t) => el.CodeMirror.setValue(t), text);
      await page.waitForTimeout(500);
    };
    // What a first-time user does: paste the token into the Headers tab, re-fetch the schema.
    await page.click('.graphiql-editor-tools button:text-is("Headers")');
    await setEditor(
      '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror',
      JSON.stringify({ Authorization: `Bearer ${token}` }),
    );
    await page.click('button[aria-label="Re-fetch GraphQL schema"]');

    // The docs explorer, from the sidebar: the root types, then Query's fields.
    await page.click('button[aria-label="Show Documentation Explorer"]');
    await page
      .locator('.graphiql-doc-explorer-content a.graphiql-doc-explorer-type-name', { hasText: /^Query$/ })
      .first()
      .click({ timeout: 15000 });
    await page.waitForSelector('.graphiql-doc-explorer-field-name:text-is("customers")', { timeout: 15000 });
    const docs = await page.$$eval('.graphiql-doc-explorer-field-name', (els) => els.map((e) => e.textContent));

    // The query, over HTTP.
    const editor = '.graphiql-query-editor .CodeMirror';
    await setEditor(editor, query);
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(
      () => document.querySelector('.result-window')?.textContent.includes('totalCount'),
      null,
      { timeout: 15000 },
    );
    const queried = await page.textContent('.result-window');

    // The subscription, over WebSocket, in the same editor.
    await setEditor(editor, subscription);
    await page.click('.graphiql-execute-button');
    // Wait until the server acknowledged the subscription's connection.
    const deadline = Date.now() + 15000;
    while (!frames.received.some((f) => f.includes('connection_ack'))) {
      if (Date.now() > deadline) throw new Error(`no connection_ack; frames: ${JSON.stringify(frames)}`);
      await page.waitForTimeout(100);
    }
    await page.waitForTimeout(500);

    // A change made elsewhere: straight to the server, not through the page.
    const res = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: 'mutation($name: String!) { createCustomer(input: {name: $name}) { customer { id } } }',
        variables: { name },
      }),
    });
    if (!res.ok) throw new Error(`mutation answered ${res.status}`);

    await page.waitForFunction(
      (expected) => document.querySelector('.result-window')?.textContent.includes(expected),
      name,
      { timeout: 15000 },
    );
    const shown = await page.textContent('.result-window');
    await page.screenshot({ path: new URL(`graphiql-${label}.png`, import.meta.url).pathname });
    const violations = await page.evaluate(() => window.__cspViolations);

    const socket = `${secure ? 'wss' : 'ws'}://${origin.host}`;
    const connectSrc = (csp.split(';').map((d) => d.trim().split(/\s+/)).find((d) => d[0] === 'connect-src') ?? []).slice(1);
    const init = frames.sent.map((f) => JSON.parse(f)).find((m) => m.type === 'connection_init');
    const next = frames.received.map((f) => JSON.parse(f)).find((m) => m.type === 'next');
    const checks = [
      [foreign.length === 0, `no request to any other host (${foreign.join(', ')})`],
      [
        assets.length === 4 && assets.every((a) => a.startsWith('200 ')),
        `the page's four files came from the server (${assets.join(', ')})`,
      ],
      [
        /default-src 'none'/.test(csp) && connectSrc[0] === "'self'" && connectSrc.includes(socket),
        `the page's Content-Security-Policy allows ${socket} (${csp})`,
      ],
      [violations.length === 0, `no Content-Security-Policy violation (${violations.join('; ')})`],
      [docs.includes('customers') && docs.includes('viewer'), `the docs explorer lists Query's fields (${docs.join(', ')})`],
      [queried.includes('"totalCount"') && queried.includes('"subject"'), 'the query ran and its result shows'],
      [frames.url === `${socket}/graphql`, `subscription went over WebSocket to the server (${frames.url})`],
      [init?.payload?.Authorization === `Bearer ${token}`, 'connection_init carried the headers tab'],
      [next?.payload?.data?.customerChanged?.customer?.name === name, 'a `next` message carried the change'],
      [shown.includes('"CREATED"') && shown.includes(name), 'the result pane shows the change'],
      [pageErrors.length === 0, `no page errors (${pageErrors.join('; ')})`],
      [failedRequests.length === 0, `no failed requests (${failedRequests.join('; ')})`],
      [refused.length === 0, `no error status but the anonymous introspection's (${refused.join('; ')})`],
      [consoleErrors.length === 0, `no console errors (${consoleErrors.join('; ')})`],
    ];
    let ok = true;
    for (const [held, what] of checks) {
      console.log(`${held ? 'ok  ' : 'FAIL'} ${what}`);
      ok &&= Boolean(held);
    }
    console.log(`query result:\n${queried}`);
    console.log(`subscription result:\n${shown}`);
    return ok;
  } catch (err) {
    console.error(err);
    // What the page showed and said, to tell why.
    const shown = await page?.textContent('.result-window').catch(() => null);
    const violations = await page?.evaluate(() => window.__cspViolations).catch(() => null);
    console.error(`result pane: ${shown}\nCSP violations: ${JSON.stringify(violations)}\npage errors: ${pageErrors.join('; ')}`);
    await page?.screenshot({ path: new URL(`graphiql-${label}-failure.png`, import.meta.url).pathname }).catch(() => {});
    return false;
  } finally {
    await context.close();
  }
}

let passed = false;
let tls = null;
try {
  passed = await session(base, 'http');
  tls = await tlsProxy(server);
  passed = (await session(tls.url, 'https')) && passed;
} catch (err) {
  console.error(err);
  passed = false;
} finally {
  tls?.proxy.close();
  await browser.close();
}
console.log(passed ? 'PASS' : 'FAIL');
process.exit(passed ? 0 : 1);
