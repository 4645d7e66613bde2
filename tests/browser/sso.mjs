// Single sign-on in real headless Chromium, as a person does it: open an app
// page without a session, land on Gatehouse's sign-in page (one button per
// provider next to the password form), click "Sign in with Corp SSO", log in
// on the provider's own page, consent, and arrive back at the app page with
// Gatehouse's identity header; then the same with Partner SSO in a fresh
// browser. Screenshots go to $SCREENSHOTS.
//
// Run by tests/browser.rs, which starts the two OpenID providers and
// Gatehouse and passes:
//   GATEHOUSE_URL, SCREENSHOTS, CHROMIUM,
//   CORP_ISSUER, PARTNER_ISSUER (the providers' origins, http://127.0.0.1:PORT)
import { check, env, launch } from './common.mjs';
import { mkdirSync, rmSync } from 'node:fs';

const base = env('GATEHOUSE_URL');
const shots = env('SCREENSHOTS');
const corpIssuer = env('CORP_ISSUER');
const partnerIssuer = env('PARTNER_ISSUER');
mkdirSync(shots, { recursive: true });
// Left by an earlier failed run; written again only if this run fails.
rmSync(`${shots}/sso-failure.png`, { force: true });

const appPage = `${base}/app/page`;

/** The JSON a page shows (Chromium renders application/json in a <pre>). */
async function pageJson(page, what) {
  const text = await page.locator('pre').first().textContent();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not JSON (${e.message}): ${text}`);
  }
}

/**
 * From a fresh browser: the app page, the sign-in page, the provider's
 * login and consent pages, and back at the app page signed in as `login`.
 * `shoot` names the screenshots to take on the way (or null).
 */
async function signInWith(page, { display, issuer, login, shoot }) {
  const response = await page.goto(appPage);
  const at = new URL(page.url());
  check(
    at.origin === base && at.pathname === '/_auth/login',
    `the app page sends a stranger to Gatehouse's sign-in page (${page.url()})`,
  );
  const rd = at.searchParams.get('rd') ?? '';
  check(rd === appPage || rd === '/app/page', `the sign-in page keeps the app page as rd (${rd})`);
  check(
    response.status() === 200,
    'the sign-in page (with rd) answers 200',
    `${response.status()}: ${(await page.locator('body').innerText()).slice(0, 500)}`,
  );

  const corpButton = page.locator('a.provider', { hasText: 'Sign in with Corp SSO' });
  const partnerButton = page.locator('a.provider', { hasText: 'Sign in with Partner SSO' });
  check(await corpButton.isVisible(), 'a "Sign in with Corp SSO" button');
  check(await partnerButton.isVisible(), 'a "Sign in with Partner SSO" button');
  check(
    (await page.isVisible('#username')) && (await page.isVisible('#password'))
      && (await page.isVisible('form button[type=submit]')),
    'the password form next to them',
  );
  check((await page.title()).includes('Acme'), `the portal title (${await page.title()})`);
  if (shoot) await page.screenshot({ path: `${shots}/${shoot.login}`, fullPage: true });

  // To the provider: its own development login page.
  await Promise.all([
    page.waitForURL((url) => url.origin === issuer && url.pathname.startsWith('/interaction/')),
    page.locator('a.provider', { hasText: `Sign in with ${display}` }).click(),
  ]);
  check(await page.isVisible('input[name=login]'), `${display}'s login page (${page.url()})`);
  if (shoot) await page.screenshot({ path: `${shots}/${shoot.provider}`, fullPage: true });
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'any password will do');
  await Promise.all([
    page.waitForSelector('input[name=prompt][value=consent]', { state: 'attached' }),
    page.click('button[type=submit]'),
  ]);
  check(new URL(page.url()).origin === issuer, `${display} asks for consent (${page.url()})`);
  if (shoot) await page.screenshot({ path: `${shots}/${shoot.consent}`, fullPage: true });

  // Continue: the provider → Gatehouse's callback → the app page.
  await Promise.all([
    page.waitForURL(appPage, { timeout: 15_000 }),
    page.click('button[type=submit]'),
  ]);
  check(page.url() === appPage, `back at ${appPage} after signing in at ${display}`);
  const echoed = await pageJson(page, 'the app page');
  if (shoot) await page.screenshot({ path: `${shots}/${shoot.app}`, fullPage: true });
  check(echoed.path === '/app/page', `the app got /app/page (${echoed.path})`);
  check(
    echoed.headers?.['remote-user'] === login,
    `the app sees remote-user: ${login}`,
    `headers ${JSON.stringify(echoed.headers)}`,
  );
}

/** `/_auth/api/me` as the browser sees it, opened like a page. */
async function me(page) {
  const response = await page.goto(`${base}/_auth/api/me`);
  check(response.status() === 200, `api/me answers 200 (${response.status()})`);
  return pageJson(page, 'api/me');
}

const browser = await launch();
let page;
try {
  // 1. alice at Corp SSO, the way the README shows it.
  let context = await browser.newContext({ viewport: { width: 900, height: 760 } });
  page = await context.newPage();
  await signInWith(page, {
    display: 'Corp SSO',
    issuer: corpIssuer,
    login: 'alice',
    shoot: {
      login: 'sso-login.png',
      provider: 'sso-provider-login.png',
      consent: 'sso-provider-consent.png',
      app: 'sso-app.png',
    },
  });
  let who = await me(page);
  check(who.username === 'alice', 'api/me: username alice', JSON.stringify(who));
  check(who.sso?.provider === 'corp', 'api/me: signed in through provider corp', JSON.stringify(who));
  check(who.sso?.display_name === 'Corp SSO', 'api/me: the provider is shown as "Corp SSO"');
  check(who.role === 'admin', `api/me: the group admins maps to role admin (${who.role})`);
  check(who.auth_method === 'session', `api/me: by a session cookie (${who.auth_method})`);
  await page.screenshot({ path: `${shots}/sso-me.png`, fullPage: true });
  await context.close();

  // 2. dave at Partner SSO, in a fresh browser (both providers live on
  // 127.0.0.1, and cookies ignore the port, so one browser would mix their
  // sessions).
  context = await browser.newContext({ viewport: { width: 900, height: 760 } });
  page = await context.newPage();
  await signInWith(page, {
    display: 'Partner SSO',
    issuer: partnerIssuer,
    login: 'dave',
    shoot: null,
  });
  who = await me(page);
  check(who.username === 'dave', 'api/me: username dave', JSON.stringify(who));
  check(who.sso?.provider === 'partner', 'api/me: signed in through provider partner', JSON.stringify(who));
  check(who.role === 'user', `api/me: no mapped group, the default role user (${who.role})`);
  await context.close();
  console.log('browser test passed');
} catch (e) {
  console.error(`sso.mjs: FAILED: ${e.message}`);
  if (page && !page.isClosed()) {
    console.error(`  at ${page.url()}`);
    await page.screenshot({ path: `${shots}/sso-failure.png`, fullPage: true }).catch(() => {});
    console.error(`  screenshot: ${shots}/sso-failure.png`);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
