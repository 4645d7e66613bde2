// Two-factor authentication in real headless Chromium, as a person does it:
// sign in, enrol from the account page (reading the secret off the page and
// computing the code like an authenticator app), sign out, sign in with a
// code, then with a recovery code. Screenshots go to $SCREENSHOTS.
//
// Run by tests/browser.rs, which starts Gatehouse and passes:
//   GATEHOUSE_URL, GATEHOUSE_USER, GATEHOUSE_PASSWORD, SCREENSHOTS, CHROMIUM
import { launch } from './common.mjs';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';

const base = process.env.GATEHOUSE_URL;
const user = process.env.GATEHOUSE_USER;
const password = process.env.GATEHOUSE_PASSWORD;
const shots = process.env.SCREENSHOTS;
mkdirSync(shots, { recursive: true });

/** RFC 4648 base32 → bytes. */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const out = [];
  for (const ch of text.replace(/=+$/, '').toUpperCase()) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP, SHA-1, 6 digits, 30 s — what an authenticator app shows at `seconds`. */
function totp(secret, seconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

const now = () => Date.now() / 1000;

function check(condition, what) {
  if (!condition) throw new Error(`expected: ${what}`);
  console.log(`ok: ${what}`);
}

async function signIn(page, expectPath) {
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`**${expectPath}`), page.click('button[type=submit]')]);
}

async function me(page) {
  const r = await page.request.get(`${base}/_auth/api/me`);
  return { status: r.status(), body: r.ok() ? await r.json() : null };
}

async function signOut(page) {
  await page.goto(`${base}/_auth/logout`);
  await Promise.all([page.waitForURL('**/_auth/login'), page.click('button[type=submit]')]);
  check((await me(page)).status === 401, 'signed out: api/me is 401');
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 900, height: 760 } });
  const page = await context.newPage();

  // 1. The account page wants a session: to the sign-in page and back.
  await page.goto(`${base}/_auth/account`);
  check(page.url().includes('/_auth/login?rd='), 'the account page sends a stranger to sign in');
  await page.screenshot({ path: `${shots}/login.png` });
  await signIn(page, '/_auth/account');
  check(await page.isVisible('#enable-2fa'), 'signed in, two-factor is off');

  // 2. Enrol: QR code and secret on the page; confirm with the app's code.
  await page.click('#enable-2fa');
  await page.waitForSelector('#qr svg');
  const secret = (await page.textContent('#secret')).trim();
  check(/^[A-Z2-7]{32}$/.test(secret), `a base32 secret is shown (${secret.length} chars)`);
  await page.screenshot({ path: `${shots}/account-enrol.png`, fullPage: true });
  await page.fill('#code', totp(secret, now()));
  await page.click('#confirm-2fa');
  await page.waitForSelector('#recovery-codes li');
  const recovery = (await page.$$eval('#recovery-codes li', (lis) => lis.map((li) => li.textContent.trim())));
  check(recovery.length === 10, '10 recovery codes are shown');
  await page.screenshot({ path: `${shots}/recovery-codes.png`, fullPage: true });
  check((await me(page)).body.two_factor_enabled === true, 'api/me says two_factor_enabled');

  // 3. Sign out, sign in again: password, then the 2fa page wants a code.
  await signOut(page);
  await page.goto(`${base}/_auth/login?rd=/_auth/account`);
  await signIn(page, '/_auth/2fa');
  check((await me(page)).status === 401, 'no session between password and code');
  await page.fill('#code', '000000' === totp(secret, now()) ? '111111' : '000000');
  await page.click('button[type=submit]');
  await page.waitForSelector('.error');
  check((await page.textContent('.error')).includes('not valid'), 'a wrong code is refused');
  await page.screenshot({ path: `${shots}/two-factor.png` });
  // The confirming code's step is spent; the next step is one of drift.
  await page.fill('#code', totp(secret, now() + 30));
  await Promise.all([page.waitForURL('**/_auth/account'), page.click('button[type=submit]')]);
  const signedIn = await me(page);
  check(signedIn.status === 200 && signedIn.body.username === user, 'signed in with a code');
  check(signedIn.body.auth_method === 'session', 'by a session cookie');

  // 4. Lost the phone: a recovery code signs in once.
  await signOut(page);
  await page.goto(`${base}/_auth/login?rd=/_auth/account`);
  await signIn(page, '/_auth/2fa');
  await page.fill('#code', recovery[0]);
  await Promise.all([page.waitForURL('**/_auth/account'), page.click('button[type=submit]')]);
  check((await me(page)).status === 200, 'signed in with a recovery code');
  check((await page.textContent('#two-factor')).includes('9 recovery codes left'), 'one recovery code spent');
  await page.screenshot({ path: `${shots}/account.png`, fullPage: true });

  await signOut(page);
  await page.goto(`${base}/_auth/login`);
  await signIn(page, '/_auth/2fa');
  await page.fill('#code', recovery[0]);
  await page.click('button[type=submit]');
  await page.waitForSelector('.error');
  check((await me(page)).status === 401, 'the same recovery code does not work twice');
  console.log('browser test passed');
} finally {
  await browser.close();
}
