// User administration in real headless Chromium, as an administrator does
// it: sign in, list users, create one; that user signs in in a browser of
// their own; the administrator disables them; their open session is refused
// at once. Screenshots of the users list and the edit page go to $SCREENSHOTS.
//
// Run by tests/browser.rs, which starts Gatehouse and passes:
//   GATEHOUSE_URL, ADMIN_USER, ADMIN_PASSWORD, SCREENSHOTS, CHROMIUM
import { bodyText, browserTest, check, env, screenshots, submit } from './common.mjs';

const base = env('GATEHOUSE_URL');
const admin = env('ADMIN_USER');
const adminPassword = env('ADMIN_PASSWORD');
const { shots, failureShot } = screenshots('admin-failure.png');

async function signIn(page, user, password) {
  await page.fill('#username', user);
  await page.fill('#password', password);
  return submit(page, 'button[type=submit]');
}

async function me(page) {
  const r = await page.request.get(`${base}/_auth/api/me`);
  return r.status();
}

await browserTest(failureShot, async (browser, shown) => {
  let page;
  const adminContext = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  page = shown(await adminContext.newPage());

  // 1. The admin pages want a session: to the sign-in page and back.
  await page.goto(`${base}/_auth/admin`);
  check(page.url().includes('/_auth/login?rd='), 'the admin pages send a stranger to sign in', page.url());
  await signIn(page, admin, adminPassword);
  check(page.url().endsWith('/_auth/admin/users'), 'back on the users list after signing in', page.url());
  check((await page.locator('#users tbody tr').count()) >= 2, 'the list shows the users', await bodyText(page));
  await page.screenshot({ path: `${shots}/admin-users.png`, fullPage: true });

  // 2. Create a user with the form.
  await submit(page, '#new-user');
  await page.fill('#username', 'nina');
  await page.fill('#email', 'nina@acme.test');
  await page.fill('#name', 'Nina Example');
  await page.selectOption('#role', 'user');
  await page.fill('#password', 'nina-password-1');
  const created = await submit(page, '#create');
  check(created.status() === 200 && (await page.locator('h1').textContent()).includes('nina'),
    'the new user\'s page after creating', await bodyText(page));
  check((await page.locator('.notice').textContent()).includes('User created'), 'it says the user was created');

  // 3. Search finds her.
  await page.goto(`${base}/_auth/admin/users`);
  await page.fill('#q', 'NINA@acme');
  await submit(page, '#search');
  check((await page.locator('#users tbody tr').count()) === 1, 'searching by address finds one user', await bodyText(page));

  // 4. Nina signs in, in a browser of her own.
  const ninaContext = await browser.newContext();
  const nina = await ninaContext.newPage();
  await nina.goto(`${base}/_auth/login`);
  await signIn(nina, 'nina', 'nina-password-1');
  check((await me(nina)) === 200, 'nina is signed in');

  // 5. The administrator sees her session, and disables her.
  await page.goto(`${base}/_auth/admin/users/nina`);
  check((await page.locator('#sessions tbody tr').count()) === 1, 'her session is listed', await bodyText(page));
  await page.screenshot({ path: `${shots}/admin-user-edit.png`, fullPage: true });
  await submit(page, '#disable');
  check((await page.locator('#user-status').textContent()).trim() === 'disabled', 'her status is disabled', await bodyText(page));

  // 6. Her open session is refused.
  check((await me(nina)) === 401, 'her open session is refused once she is disabled');
  await nina.goto(`${base}/_auth/account`);
  check(nina.url().includes('/_auth/login'), 'her account page sends her to sign in again', nina.url());

  // 7. Enabled again, then deleted (with the confirmation box).
  await submit(page, '#enable');
  check((await page.locator('#user-status').textContent()).trim() === 'enabled', 'enabled again');
  await page.check('#confirm-delete');
  await submit(page, '#delete');
  check(page.url().endsWith('/_auth/admin/users'), 'back on the list after deleting', page.url());
  check(!(await bodyText(page)).includes('nina'), 'nina is gone from the list');
});
