// The render host's Chromium browsers: where the binary is, launching them, checking they are
// alive before a job, noticing when one dies (Remotion does not fail in-flight renders then),
// and spreading a render's tabs over them.
import {accessSync, constants as fsConstants, existsSync, readFileSync, statSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {openBrowser} from '@remotion/renderer';
import {attachBeginFrameCapture} from './begin-frame-capture.mjs';

// Chromium runs as root here; Remotion adds --no-sandbox itself. Software GL is
// enough for these compositions (no WebGL), so keep Remotion's default.
export const CHROMIUM_OPTIONS = {};
const HEALTH_TIMEOUT_MS = 10000;
// The executable that adds the begin-frame flags to the binary in RENDER_HOST_CHROMIUM.
const BEGIN_FRAME_WRAPPER = fileURLToPath(new URL('../bin/chromium-begin-frame', import.meta.url));

/**
 * Opens Chromium. With `beginFrameCapture`, it is launched with the begin-frame flags and frames
 * are captured by HeadlessExperimental.beginFrame (lib/begin-frame-capture.mjs); otherwise
 * as Remotion opens it.
 */
const launchBrowser = async ({executable, logLevel, log, beginFrameCapture}) => {
	if (!beginFrameCapture) return openBrowser('chrome', {browserExecutable: executable, chromiumOptions: CHROMIUM_OPTIONS, logLevel});
	process.env.RENDER_HOST_CHROMIUM = executable;
	const browser = await openBrowser('chrome', {browserExecutable: BEGIN_FRAME_WRAPPER, chromiumOptions: CHROMIUM_OPTIONS, logLevel});
	browser.beginFrameCapture = attachBeginFrameCapture(browser, {log});
	return browser;
};

/**
 * Debian's /usr/bin/chromium-headless-shell is a `#!/bin/sh` wrapper that runs
 * the real binary as a child (no exec). Remotion's `setpriv --pdeathsig` then
 * only guards the shell, so a SIGKILLed host would leave Chromium running.
 * Launch the wrapped binary directly when the wrapper is that trivial.
 */
export const resolveBrowserExecutable = (configured) => {
	try {
		const st = statSync(configured);
		if (!st.isFile() || st.size > 4096) return configured;
		const text = readFileSync(configured, 'utf8');
		if (!text.startsWith('#!')) return configured;
		const lines = text.split('\n').slice(1).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
		const m = lines.length === 1 ? /^(?:exec\s+)?(\/[^\s"']+)\s+"\$@"$/.exec(lines[0]) : null;
		if (m && existsSync(m[1])) {
			accessSync(m[1], fsConstants.X_OK);
			return m[1];
		}
	} catch {
		// fall through: use what was configured
	}
	return configured;
};

const closeQuietly = (which) => which.then((b) => b.close({silent: true})).catch(() => {});

const healthy = async (browser) => {
	await Promise.race([
		browser.connection.send('Browser.getVersion'),
		new Promise((_, reject) => setTimeout(() => reject(new Error('browser health check timed out')), HEALTH_TIMEOUT_MS)),
	]);
	return browser;
};

/**
 * The shared browser, as a promise (`current`), reopened on demand when it died or
 * failed to launch. `onGone(which)` is called when a browser's DevTools connection
 * closes (unless `isShuttingDown()`); it fails the jobs on that browser and returns
 * how many there were. `beginFrameCapture` (default on): see launchBrowser.
 */
export const createBrowser = ({executable, logLevel, log, isShuttingDown, onGone, beginFrameCapture = true}) => {
	const self = {
		/** @type {Promise<any> | null} */
		current: null,
		executable,
		launch() {
			const p = launchBrowser({executable, logLevel, log, beginFrameCapture});
			p.then(
				(browser) => browser.connection?.transport?.websocket?.addEventListener?.('close', () => gone(p)),
				(err) => log('could not open browser:', err?.message ?? err),
			);
			self.current = p;
			return p;
		},
		/** The browser, health-checked; relaunched if unusable. */
		async get() {
			if (self.current) {
				try {
					return await healthy(await self.current);
				} catch (err) {
					log('browser unusable, relaunching:', err?.message ?? err);
					self.drop();
				}
			}
			return self.launch();
		},
		/** Forget a browser (the current one by default) and close it. */
		drop(which = self.current) {
			if (!which) return;
			if (which === self.current) self.current = null;
			closeQuietly(which);
		},
		/** Close the current browser, waiting at most `waitMs`. */
		async close(waitMs) {
			if (!self.current) return;
			await Promise.race([closeQuietly(self.current), new Promise((r) => setTimeout(r, waitMs))]);
		},
	};
	const gone = (which) => {
		if (which === self.current) self.current = null;
		if (isShuttingDown()) return;
		const affected = onGone(which);
		log(`browser connection closed; ${affected} job(s) affected`);
		closeQuietly(which);
	};
	return self;
};

/**
 * The host's `count` browsers, each a createBrowser (the same options). A render's tabs are
 * spread over them (spreadTabs): with begin-frame capture a browser draws one frame at a time
 * (lib/begin-frame-capture.mjs), so two tabs in one browser wait for each other's frames, in
 * two browsers they do not. The first also selects compositions and renders stills.
 */
export const createBrowsers = ({count = 1, ...options}) => {
	const members = Array.from({length: Math.max(1, count)}, () => createBrowser(options));
	return {
		executable: options.executable,
		/** Launch every browser (at start, while the bundle is made). */
		launch() {
			for (const member of members) member.launch();
		},
		/**
		 * Every browser, health-checked (relaunched where unusable): `browsers`, and `launches`,
		 * the promises they came from (what onGone is called with).
		 */
		async get() {
			const browsers = await Promise.all(members.map((m) => m.get()));
			return {browsers, launches: members.map((m) => m.current)};
		},
		/** Forget and close the browsers of `launches` (a crashed render's), or every browser. */
		drop(launches = members.map((m) => m.current)) {
			for (const member of members) {
				if (launches.includes(member.current)) member.drop();
			}
		},
		/** Close every browser, waiting at most `waitMs`. */
		async close(waitMs) {
			await Promise.all(members.map((m) => m.close(waitMs)));
		},
	};
};

/**
 * `browsers` as the one browser Remotion's renderMedia takes: its tab N opens in browser
 * N mod count. renderMedia calls newPage, pages and (replacing a crashed browser) close.
 */
export const spreadTabs = (browsers) =>
	browsers.length === 1
		? browsers[0]
		: {
				newPage: (options) => browsers[(options?.pageIndex ?? 0) % browsers.length].newPage(options),
				pages: async () => (await Promise.all(browsers.map((b) => b.pages()))).flat(),
				close: async (options) => {
					await Promise.all(browsers.map((b) => b.close(options)));
				},
			};
