// Self-service accounts in real headless Chromium, as a person does it:
// register, follow the mailed activation link and press its button, sign in;
// then forget the password, follow the mailed reset link, set a new one and
// sign in with it. Screenshots go to $SCREENSHOTS.
//
// The mail is read by tests/browser.rs (from a real SMTP server's Maildir),
// so it runs this script once per phase, in a fresh browser each time, and
// hands it the link the mail held:
//   PHASE=register       the form; "Check your mail"; no sign-in yet
//   PHASE=activate       LINK (the activation link): the button, "Account
//                        activated", "Sign in", signed in; keeps the session
//                        in $STATE
//   PHASE=reset-request  the "forgot" form; "Check your mail"
//   PHASE=reset-confirm  LINK (the reset link): the new password, "Password
//                        changed"; the session in $STATE has ended; the old
//                        password fails, the new one signs in
// Always: GATEHOUSE_URL, SCREENSHOTS, CHROMIUM, ACCOUNT_USER, ACCOUNT_EMAIL,
// ACCOUNT_PASSWORD, STATE; for reset-confirm also NEW_PASSWORD.
import { env, launch } from './common.mjs';
import { existsSync, mkdirSync, rmSync } from 'node:fs';

const phase = env('PHASE');
const base = env('GATEHOUSE_URL');
const shots = env('SCREENSHOTS');
const user = env('ACCOUNT_USER');
const email = env('ACCOUNT_EMAIL');
const password = env('ACCOUNT_PASSWORD');
const state = env('STATE');
mkdirSync(shots, { recursive: true });
const failureShot = `${shots}/accounts-${phase}-failure.png`;
// Left by an earlier failed run; written again only if this run fails.
rmSync(failureShot, { force: true });

/** `detail` (what was seen instead) is only printed when the check fails. */
function check(condition, what, detail) {
  if (!condition) throw new Error(`expected: ${what}${detail === undefined ? '' : `\n  got: ${detail}`}`);
  console.log(`ok [${phase}]: ${what}`);
}

const heading = async (page) => (await page.locator('h1').first().textContent()).trim();
const bodyText = async (page) => (await page.locator('body').innerText()).slice(0, 800);

/** Click `button` and wait for the page its form posts to. */
async function submit(page, button) {
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.locator('button[type=submit]', { hasText: button }).click(),
  ]);
  return response;
}

/** `/_auth/api/me` as this browser sees it: { status, body }. */
async function me(context) {
  const r = await context.request.get(`${base}/_auth/api/me`);
  return { status: r.status(), body: r.ok() ? await r.json() : await r.text() };
}

/** On the sign-in page: the form filled and sent. */
async function signIn(page, secret) {
  check(new URL(page.url()).pathname === '/_auth/login', `on the sign-in page (${page.url()})`);
  await page.fill('#username', user);
  await page.fill('#password', secret);
  await submit(page, 'Sign in');
}

async function expectRefused(page, secret, what) {
  await page.goto(`${base}/_auth/login`);
  await signIn(page, secret);
  check(new URL(page.url()).pathname === '/_auth/login', `${what}: still on the sign-in page`, page.url());
  const error = await page.locator('.error').textContent().catch(() => '');
  check(error.includes('Invalid username or password'), `${what}: "Invalid username or password"`, error);
  check((await me(page.context())).status === 401, `${what}: no session (api/me 401)`);
}

/** Signed in as `user`: the landing page (the app, by way of the gate), api/me, the account page. */
async function expectSignedIn(page, what, shot) {
  const at = new URL(page.url());
  check(at.origin === base && at.pathname === '/', `${what}: lands on the app (${page.url()})`, await bodyText(page));
  const echoed = JSON.parse(await page.locator('pre').first().textContent());
  check(
    echoed.headers?.['remote-user'] === user,
    `${what}: the app sees remote-user: ${user}`,
    JSON.stringify(echoed.headers),
  );
  const who = await me(page.context());
  check(who.status === 200 && who.body.username === user, `${what}: api/me says ${user}`, JSON.stringify(who));
  check(who.body.email === email, `${what}: api/me has the e-mail ${email}`, JSON.stringify(who.body));
  check(who.body.auth_method === 'session', `${what}: by a session cookie`, who.body.auth_method);
  await page.goto(`${base}/_auth/account`);
  check(new URL(page.url()).pathname === '/_auth/account', `${what}: the account page opens`, page.url());
  check((await page.textContent('#account-username')).trim() === user, `${what}: the account page shows ${user}`);
  if (shot) await page.screenshot({ path: `${shots}/${shot}`, fullPage: true });
}

const browser = await launch();
let page;
try {
  const context = await browser.newContext({ viewport: { width: 900, height: 760 } });
  page = await context.newPage();

  if (phase === 'register') {
    const response = await page.goto(`${base}/_auth/register`);
    check(response.status() === 200, `the registration page answers 200 (${response.status()})`);
    check((await page.title()).includes('Acme'), `the portal title (${await page.title()})`);
    check((await heading(page)) === 'Create an account', 'the heading "Create an account"');
    check(
      (await bodyText(page)).includes('We will mail you a link to activate the account'),
      'the page says an activation link will be mailed',
      await bodyText(page),
    );
    check(await page.locator('#email').getAttribute('required') !== null, 'the e-mail is required');
    await page.screenshot({ path: `${shots}/accounts-register.png`, fullPage: true });
    await page.fill('#username', user);
    await page.fill('#email', email);
    await page.fill('#password', password);
    await submit(page, 'Create account');
    check((await heading(page)) === 'Check your mail', 'registered: "Check your mail"', await bodyText(page));
    check(
      (await bodyText(page)).includes('Follow it to activate your account'),
      'the page says to follow the mailed link',
      await bodyText(page),
    );
    await page.screenshot({ path: `${shots}/accounts-check-mail.png`, fullPage: true });
    // Not before the link is followed.
    await expectRefused(page, password, 'signing in before activation');
  } else if (phase === 'activate') {
    const link = env('LINK');
    const response = await page.goto(link);
    check(response.status() === 200, `the activation link answers 200 (${response.status()})`);
    check((await heading(page)) === 'Activate your account', 'the heading "Activate your account"');
    const button = page.locator('button[type=submit]', { hasText: 'Activate my account' });
    check(await button.isVisible(), 'an "Activate my account" button');
    await page.screenshot({ path: `${shots}/accounts-activate.png`, fullPage: true });
    // Opening the link (as a mail scanner does) activates nothing.
    const stranger = await browser.newContext();
    await stranger.request.get(link);
    const early = await stranger.request.post(`${base}/_auth/api/login`, {
      data: { username: user, password },
    });
    check(early.status() === 401, `only opening the link activates nothing (api/login ${early.status()})`);
    await stranger.close();

    await submit(page, 'Activate my account');
    check((await heading(page)) === 'Account activated', 'pressed: "Account activated"', await bodyText(page));
    await page.screenshot({ path: `${shots}/accounts-activated.png`, fullPage: true });
    await Promise.all([page.waitForURL('**/_auth/login'), page.locator('a', { hasText: 'Sign in' }).click()]);
    await signIn(page, password);
    await expectSignedIn(page, 'after activation', 'accounts-signed-in.png');
    // This session must end when the password is reset.
    await context.storageState({ path: state });
  } else if (phase === 'reset-request') {
    // Forgot the password: from the sign-in page's world, a fresh browser.
    const response = await page.goto(`${base}/_auth/reset`);
    check(response.status() === 200, `the reset page answers 200 (${response.status()})`);
    check((await heading(page)) === 'Reset your password', 'the heading "Reset your password"');
    check(!(await page.isVisible('#new_password')), 'no new-password field without a link');
    await page.screenshot({ path: `${shots}/accounts-reset.png`, fullPage: true });
    await page.fill('#email', email);
    await submit(page, 'Send the link');
    check((await heading(page)) === 'Check your mail', 'asked: "Check your mail"', await bodyText(page));
    check(
      (await bodyText(page)).includes('a link to set a new password is on its way'),
      'the page says the link is on its way',
      await bodyText(page),
    );
    await page.screenshot({ path: `${shots}/accounts-reset-sent.png`, fullPage: true });
  } else if (phase === 'reset-confirm') {
    const link = env('LINK');
    const newPassword = env('NEW_PASSWORD');
    check(existsSync(state), `the session kept by the activate phase (${state})`);
    const old = await browser.newContext({ storageState: state });
    check((await me(old)).status === 200, 'the session from before the reset is still signed in');

    const response = await page.goto(link);
    check(response.status() === 200, `the reset link answers 200 (${response.status()})`);
    check((await heading(page)) === 'Reset your password', 'the heading "Reset your password"');
    check(await page.isVisible('#new_password'), 'a new-password field');
    check(!(await page.isVisible('#email')), 'no e-mail field with a link');
    await page.screenshot({ path: `${shots}/accounts-reset-new-password.png`, fullPage: true });
    // Too short: refused by the server, and the link still works.
    await page.evaluate(() => document.querySelector('#new_password').removeAttribute('minlength'));
    await page.fill('#new_password', 'short');
    await submit(page, 'Set the new password');
    const weak = await page.locator('.error').textContent().catch(() => '');
    check(/at least \d+/.test(weak) || weak.includes('8'), `a too short password is refused ("${weak.trim()}")`, await bodyText(page));
    check(await page.isVisible('#new_password'), 'the form is offered again, with the same link');
    await page.fill('#new_password', newPassword);
    await submit(page, 'Set the new password');
    check((await heading(page)) === 'Password changed', 'set: "Password changed"', await bodyText(page));
    await page.screenshot({ path: `${shots}/accounts-password-changed.png`, fullPage: true });

    // Every other session has ended.
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      gone = (await me(old)).status === 401;
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    check(gone, 'the session from before the reset has ended (api/me 401)');
    await old.close();

    // The old password no longer signs in; the new one does.
    await expectRefused(page, password, 'the old password');
    await page.goto(`${base}/_auth/login`);
    await signIn(page, newPassword);
    await expectSignedIn(page, 'with the new password', 'accounts-reset-signed-in.png');

    // The link is spent.
    await page.goto(link);
    await page.fill('#new_password', 'yet another password');
    await submit(page, 'Set the new password');
    const spent = await page.locator('.error').textContent().catch(() => '');
    check(spent.includes('unknown, used already, or expired'), 'the link works once', spent);
  } else {
    throw new Error(`unknown PHASE ${phase}`);
  }
  console.log(`browser phase ${phase} passed`);
} catch (e) {
  console.error(`accounts.mjs [${phase}]: FAILED: ${e.stack || e.message}`);
  if (page && !page.isClosed()) {
    console.error(`  at ${page.url()}`);
    await page.screenshot({ path: failureShot, fullPage: true }).catch(() => {});
    console.error(`  screenshot: ${failureShot}`);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
