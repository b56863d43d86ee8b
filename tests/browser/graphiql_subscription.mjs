// GraphiQL, as `GET /graphql` serves it, runs a subscription in a real browser (Chromium):
// the page loads, the subscription goes over WebSocket with the token from the headers tab,
// a mutation made elsewhere shows up in the result pane.
//
// Run through `run.sh`, which starts the server. Needs CRM_URL and CRM_TOKEN.
import { readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const base = process.env.CRM_URL;
const token = process.env.CRM_TOKEN;
if (!base || !token) {
  console.error('CRM_URL and CRM_TOKEN must be set (run.sh sets them)');
  process.exit(2);
}

// The page takes GraphiQL and React from unpkg.com. This machine may be offline, so the
// browser gets the same files from the npm packages installed here.
const fromNpm = {
  '/react@18/umd/react.development.js': 'react/umd/react.development.js',
  '/react-dom@18/umd/react-dom.development.js': 'react-dom/umd/react-dom.development.js',
  '/graphiql@4/graphiql.min.css': 'graphiql/graphiql.min.css',
  '/graphiql@4/graphiql.min.js': 'graphiql/graphiql.min.js',
};

const name = `Browser ${Date.now()}`;
const subscription = 'subscription { customerChanged { op customer { name } } }';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
let failed = null;
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.route('https://unpkg.com/**', async (route) => {
    const local = fromNpm[new URL(route.request().url()).pathname];
    if (!local) {
      return route.fulfill({ status: 404, body: '' });
    }
    const body = await readFile(new URL(`node_modules/${local}`, import.meta.url));
    const contentType = local.endsWith('.css') ? 'text/css' : 'application/javascript';
    return route.fulfill({ body, contentType });
  });
  await page.route('https://graphql.org/**', (route) => route.fulfill({ status: 404, body: '' }));

  // What the WebSocket carried, to check the protocol and not only the rendered text.
  const frames = { sent: [], received: [], url: null };
  page.on('websocket', (ws) => {
    frames.url = ws.url();
    ws.on('framesent', (f) => frames.sent.push(String(f.payload)));
    ws.on('framereceived', (f) => frames.received.push(String(f.payload)));
  });

  // A first-time user's editors: the subscription typed in, the token in the headers tab.
  await page.addInitScript(
    ([query, headers]) => {
      if (!localStorage.getItem('graphiql:tabState')) {
        localStorage.setItem('graphiql:query', query);
        localStorage.setItem('graphiql:headers', headers);
      }
    },
    [subscription, JSON.stringify({ Authorization: `Bearer ${token}` })],
  );
  await page.goto(`${base}/graphql`, { waitUntil: 'load' });
  await page.waitForSelector('.graphiql-execute-button', { timeout: 30000 });
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

  const init = frames.sent.map((f) => JSON.parse(f)).find((m) => m.type === 'connection_init');
  const next = frames.received.map((f) => JSON.parse(f)).find((m) => m.type === 'next');
  const checks = [
    [frames.url?.startsWith('ws://'), `subscription went over WebSocket (${frames.url})`],
    [init?.payload?.Authorization === `Bearer ${token}`, 'connection_init carried the headers tab'],
    [next?.payload?.data?.customerChanged?.customer?.name === name, 'a `next` message carried the change'],
    [shown.includes('"CREATED"'), 'the result pane shows the change'],
    [pageErrors.length === 0, `no page errors (${pageErrors.join('; ')})`],
  ];
  for (const [ok, what] of checks) {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failed = what;
  }
  console.log(`result pane:\n${shown}`);
} catch (err) {
  failed = err.message;
  console.error(err);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
