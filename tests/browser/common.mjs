// What every browser script here shares (tests/browser/*.mjs, run by
// tests/browser.rs): its settings from the environment, checks that say what
// passed, form submission, and the browser itself.
import { chromium } from 'playwright-core';
import { mkdirSync, rmSync } from 'node:fs';
import { basename } from 'node:path';

/** The environment variable `name`; without it the script exits 2, saying so. */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${basename(process.argv[1])}: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

/**
 * Where screenshots go ($SCREENSHOTS, created), and the path of the one taken
 * if this run fails (`failureName`; an earlier run's is removed).
 */
export function screenshots(failureName) {
  const shots = env('SCREENSHOTS');
  mkdirSync(shots, { recursive: true });
  const failureShot = `${shots}/${failureName}`;
  rmSync(failureShot, { force: true });
  return { shots, failureShot };
}

/** `detail` (what was seen instead) is only printed when the check fails. */
export function check(condition, what, detail) {
  if (!condition) throw new Error(`expected: ${what}${detail === undefined ? '' : `\n  got: ${detail}`}`);
  console.log(`ok: ${what}`);
}

/** The start of the page's text, to show when a check fails. */
export const bodyText = async (page) => (await page.locator('body').innerText()).slice(0, 1200);

/** Click `selector` and wait for the page it leads to. */
export async function submit(page, selector) {
  const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return response;
}

/**
 * Launches the browser, runs `steps(browser, shown)` and says `browser test
 * passed`. On a failure: prints it, screenshots the page last handed to
 * `shown` (which returns it) to `failureShot`, and sets exit code 1.
 */
export async function browserTest(failureShot, steps) {
  const browser = await launch();
  let last;
  const shown = (page) => (last = page);
  try {
    await steps(browser, shown);
    console.log('browser test passed');
  } catch (e) {
    if (last) await last.screenshot({ path: failureShot, fullPage: true }).catch(() => {});
    console.error(e);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

/** Headless Chromium: $CHROMIUM, else Debian's. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
