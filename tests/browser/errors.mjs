// Gatehouse's error pages in real headless Chromium, at desktop (1280x800)
// and phone (390x844) widths: 403 (signed in without the permission), 429
// (a banned name sent with Basic), 502 (the app is down), 400 (an address
// with a NUL in it), 404 under the portal prefix, and the closed setup page.
// Each must show its way out, and nothing may be wider than a phone's
// screen. Screenshots go to $SCREENSHOTS/error-<which>-<desktop|phone>.png.
// Then "Sign in as someone else" on the 403 page signs out and brings the
// sign-in page back to where the user was.
//
// Run by tests/browser.rs, which starts Gatehouse (its app down, the name
// in $BANNED_USER already banned) and passes:
//   GATEHOUSE_URL, USER_NAME, USER_PASSWORD, BANNED_USER, SCREENSHOTS, CHROMIUM
import { bodyText, browserTest, check, env, screenshots, submit } from './common.mjs';

const base = env('GATEHOUSE_URL');
const user = env('USER_NAME');
const password = env('USER_PASSWORD');
const banned = env('BANNED_USER');
const { shots, failureShot } = screenshots('errors-failure.png');

const WIDTHS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

// Open `path` at both widths: the status, the heading, the way out (a link
// with this label, visible), no sideways scrolling on the phone; one
// screenshot per width.
async function visit(page, which, path, status, wayOut) {
  for (const [name, size] of Object.entries(WIDTHS)) {
    await page.setViewportSize(size);
    const response = await page.goto(`${base}${path}`);
    check(response.status() === status, `${which} at ${name} width answers ${status}`, response.status());
    const heading = (await page.locator('h1').textContent()).trim();
    check(/^[A-Z]/.test(heading), `${which} at ${name} width has a heading in words: "${heading}"`);
    const link = page.getByRole('link', { name: wayOut, exact: true });
    check(await link.isVisible(), `${which} at ${name} width offers "${wayOut}"`, await bodyText(page));
    check(await page.getByRole('link', { name: 'Go to the home page' }).isVisible(),
      `${which} at ${name} width links home`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `${which} at ${name} width fits the screen`, `${overflow}px too wide`);
    const logo = await page.evaluate(() => document.querySelector('img.logo')?.naturalWidth ?? 0);
    check(logo > 0, `${which} at ${name} width shows the logo`);
    await page.screenshot({ path: `${shots}/error-${which}-${name}.png`, fullPage: true });
  }
  return page;
}

await browserTest(failureShot, async (browser, shown) => {
  let page;
  // Nobody signed in: 404 under the prefix, setup closed, 400.
  const stranger = await browser.newContext();
  page = shown(await stranger.newPage());
  await visit(page, '404', '/_auth/no-such-page', 404, 'Sign in');
  await visit(page, 'setup', '/_auth/setup', 403, 'Sign in');
  await visit(page, '400', '/files/%00', 400, 'Go to the home page');

  // A banned name, sent with Basic: 429 in minutes.
  const basic = Buffer.from(`${banned}:not-the-password`).toString('base64');
  const bannedContext = await browser.newContext({ extraHTTPHeaders: { authorization: `Basic ${basic}` } });
  page = shown(await bannedContext.newPage());
  await visit(page, '429', '/app', 429, 'Reset your password');
  check(/Try again in \d+ minutes?\./.test(await bodyText(page)), 'the 429 page says when, in minutes', await bodyText(page));

  // Signed in without the permission: 403 names the user; the app is down: 502.
  const signedIn = await browser.newContext();
  page = shown(await signedIn.newPage());
  await page.goto(`${base}/admin/tools`);
  check(page.url().includes('/_auth/login?rd='), 'a stranger is sent to sign in', page.url());
  await page.fill('#username', user);
  await page.fill('#password', password);
  await submit(page, 'button[type=submit]');
  await visit(page, '403', '/admin/tools', 403, 'Sign in as someone else');
  check((await bodyText(page)).includes(`Signed in as ${user}.`), 'the 403 page says who is signed in', await bodyText(page));
  check(await page.getByRole('link', { name: 'Sign out', exact: true }).isVisible(), 'the 403 page offers to sign out');
  await visit(page, '502', '/app/report', 502, 'Try again');

  // The way out of the 403 page: sign out, then sign in again and come back.
  await page.goto(`${base}/admin/tools`);
  await submit(page, 'text=Sign in as someone else');
  check(page.url().includes('/_auth/logout?rd='), 'to the sign-out page, remembering the page', page.url());
  await submit(page, 'button[type=submit]');
  check(page.url().includes('/_auth/login?rd=') && decodeURIComponent(page.url()).includes('/admin/tools'),
    'then to sign in, to come back to the page', page.url());
  const me = await page.request.get(`${base}/_auth/api/me`);
  check(me.status() === 401, 'and the session has ended', me.status());
});
