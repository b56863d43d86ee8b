// GraphiQL, as `GET /graphql` serves it, in a real browser (Chromium) with no network but
// the server's: the page loads from the server's own files, the docs explorer lists the
// Query type's fields, a query runs, and a subscription (over WebSocket, with the token
// from the headers tab) shows a mutation made elsewhere.
//
// Every request to another host is aborted and fails the check, as does any violation of
// the page's Content-Security-Policy.
//
// Run through `run.sh`, which starts the server. Needs CRM_URL and CRM_TOKEN.
import { chromium } from 'playwright-core';

const base = process.env.CRM_URL;
const token = process.env.CRM_TOKEN;
if (!base || !token) {
  console.error('CRM_URL and CRM_TOKEN must be set (run.sh sets them)');
  process.exit(2);
}
const server = new URL(base);

const name = `Browser ${Date.now()}`;
const query = '{ viewer { subject scopes } customers(first: 1) { totalCount } }';
const subscription = 'subscription { customerChanged { op customer { name } } }';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-background-networking',
    // Below the routing, too: no other host even resolves.
    `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${server.hostname}`,
  ],
});
let failed = null;
let page = null;
const pageErrors = [];
try {
  const context = await browser.newContext();
  // Anything not for the server is aborted, and remembered.
  const foreign = [];
  const ownOrigin = (url) => {
    const u = new URL(url);
    return u.host === server.host && ['http:', 'ws:'].includes(u.protocol);
  };
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (ownOrigin(url)) return route.continue();
    foreign.push(url);
    return route.abort('blockedbyclient');
  });
  context.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith('data:') && !ownOrigin(url) && !foreign.includes(url)) foreign.push(url);
  });

  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  const consoleErrors = [];
  const failedRequests = [];
  page.on('requestfailed', (req) => failedRequests.push(`${req.url()}: ${req.failure()?.errorText}`));
  const assets = [];
  page.on('response', (res) => {
    if (new URL(res.url()).pathname.startsWith('/graphql/assets/')) {
      assets.push(`${res.status()} ${new URL(res.url()).pathname}`);
    }
  });

  // What the WebSocket carried, to check the protocol and not only the rendered text.
  const frames = { sent: [], received: [], url: null };
  page.on('websocket', (ws) => {
    frames.url = ws.url();
    if (!ownOrigin(ws.url())) foreign.push(ws.url());
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
  // Until the token is in, the server refuses GraphiQL's introspection (400); after that,
  // nothing may fail.
  let tokenIn = false;
  const refused = [];
  page.on('response', (res) => {
    const req = res.request();
    const expected = !tokenIn && req.method() === 'POST' && res.status() === 400;
    if (res.status() >= 400 && !expected) refused.push(`${res.status()} ${req.method()} ${res.url()}`);
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error' && tokenIn) consoleErrors.push(msg.text());
  });

  const response = await page.goto(`${base}/graphql`, { waitUntil: 'load' });
  const csp = response.headers()['content-security-policy'] ?? '';
  await page.waitForSelector('.graphiql-execute-button', { timeout: 30000 });

  // What a first-time user does: paste the token into the Headers tab, re-fetch the schema.
  const setEditor = (selector, text) => page.$eval(selector, (el, t) => el.CodeMirror.setValue(t), text);
  await page.click('.graphiql-editor-tools button:text-is("Headers")');
  tokenIn = true;
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
  await page.screenshot({ path: new URL('graphiql-subscription.png', import.meta.url).pathname });
  const violations = await page.evaluate(() => window.__cspViolations);

  const init = frames.sent.map((f) => JSON.parse(f)).find((m) => m.type === 'connection_init');
  const next = frames.received.map((f) => JSON.parse(f)).find((m) => m.type === 'next');
  const checks = [
    [foreign.length === 0, `no request to any other host (${foreign.join(', ')})`],
    [
      assets.length === 4 && assets.every((a) => a.startsWith('200 ')),
      `the page's four files came from the server (${assets.join(', ')})`,
    ],
    [/default-src 'none'/.test(csp) && /connect-src 'self'/.test(csp), 'the page has its Content-Security-Policy'],
    [violations.length === 0, `no Content-Security-Policy violation (${violations.join('; ')})`],
    [docs.includes('customers') && docs.includes('viewer'), `the docs explorer lists Query's fields (${docs.join(', ')})`],
    [queried.includes('"totalCount"') && queried.includes('"subject"'), 'the query ran and its result shows'],
    [frames.url === `ws://${server.host}/graphql`, `subscription went over WebSocket to the server (${frames.url})`],
    [init?.payload?.Authorization === `Bearer ${token}`, 'connection_init carried the headers tab'],
    [next?.payload?.data?.customerChanged?.customer?.name === name, 'a `next` message carried the change'],
    [shown.includes('"CREATED"'), 'the result pane shows the change'],
    [pageErrors.length === 0, `no page errors (${pageErrors.join('; ')})`],
    [failedRequests.length === 0, `no failed requests (${failedRequests.join('; ')})`],
    [refused.length === 0, `no error status once the token is in (${refused.join('; ')})`],
    [consoleErrors.length === 0, `no console errors (${consoleErrors.join('; ')})`],
  ];
  for (const [ok, what] of checks) {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failed = what;
  }
  console.log(`query result:\n${queried}`);
  console.log(`subscription result:\n${shown}`);
} catch (err) {
  failed = err.message;
  console.error(err);
  // What the page showed and said, to tell why.
  const shown = await page?.textContent('.result-window').catch(() => null);
  const violations = await page?.evaluate(() => window.__cspViolations).catch(() => null);
  console.error(`result pane: ${shown}\nCSP violations: ${JSON.stringify(violations)}\npage errors: ${pageErrors.join('; ')}`);
  await page?.screenshot({ path: new URL('graphiql-failure.png', import.meta.url).pathname }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
