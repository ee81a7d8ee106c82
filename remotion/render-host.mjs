#!/usr/bin/env node
// Long-lived Remotion render host speaking JSON lines over stdio.
// stdin: one JSON request per line. stdout: one JSON message per line, nothing else.
// All logs go to stderr. The protocol: protocol/host-protocol.schema.json (and README.md).
// This file dispatches; the parts are lib/browser.mjs (Chromium), lib/protocol.mjs
// (messages, validation) and lib/job.mjs (one render as named steps).

// Must stay the first import: it takes stdout away from everything but the protocol.
import {protocolWrite} from './lib/stdio-guard.mjs';
import {existsSync} from 'node:fs';
import {readFile, rm} from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import {fileURLToPath} from 'node:url';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const CONFIGURED_BROWSER = process.env.REMOTION_BROWSER_EXECUTABLE || '/usr/bin/chromium-headless-shell';
const BUNDLE_CACHE = process.env.RENDER_BUNDLE_CACHE || path.join(ROOT, '.bundle-cache');
const ASSET_DIR = process.env.RENDER_ASSET_DIR || null;
const LOG_LEVEL = process.env.REMOTION_LOG_LEVEL || 'warn';
// Capture frames with HeadlessExperimental.beginFrame (lib/begin-frame-capture.mjs); 0 = as Remotion does.
const BEGIN_FRAME_CAPTURE = process.env.RENDER_BEGIN_FRAME_CAPTURE !== '0';
// Browsers a render's tabs are spread over (lib/browser.mjs createBrowsers).
const BROWSERS = Math.max(1, Number.parseInt(process.env.RENDER_HOST_BROWSERS ?? '2', 10) || 1);
const SHUTDOWN_GRACE_MS = 15000;
const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

const log = (...args) => console.error('[render-host]', ...args);
const send = (msg) => protocolWrite(`${JSON.stringify(msg)}\n`);

/** Everything that changes while the host runs. */
const state = {
	/** @type {Map<string, {id: string, cancel: () => void, cancelled: boolean, timedOut: boolean, crashed: boolean, browsers: Promise<any>[], done: Promise<void> | null}>} */
	jobs: new Map(),
	browser: null, // lib/browser.mjs createBrowsers(), once the modules are loaded
	serveUrl: null,
	assetServer: null,
	bundleServer: null, // serves the bundle to Chromium (lib/bundle-server.mjs)
	dying: false,
	shuttingDown: false,
	shutdownPromise: null,
};

// ---- fatal handling ------------------------------------------------------
const die = (err) => {
	if (state.dying) return;
	state.dying = true;
	const e = err instanceof Error ? err : new Error(String(err));
	log('fatal:', e.stack ?? e.message);
	try {
		send({type: 'fatal', error: {reason: 'INTERNAL', message: e.message, stack: e.stack ?? '', retryable: true}});
	} catch {
		// stdout gone
	}
	const closing = state.browser ? state.browser.close(2000) : Promise.resolve();
	Promise.race([closing, new Promise((r) => setTimeout(r, 2000))]).finally(() => process.exit(1));
};
process.on('uncaughtException', die);
process.on('unhandledRejection', die);

// ---- dependencies: loaded after the fatal handlers so a broken install is reported as fatal
const loadParts = async () => {
	try {
		const parts = await Promise.all(
			['./lib/asset-server.mjs', './lib/bundle-cache.mjs', './lib/bundle-server.mjs', './lib/errors.mjs', './lib/browser.mjs', './lib/protocol.mjs', './lib/job.mjs'].map((m) => import(m)),
		);
		const {makeCancelSignal} = await import('@remotion/renderer');
		return Object.assign({makeCancelSignal}, ...parts);
	} catch (err) {
		die(err);
		return new Promise(() => {}); // die() exits
	}
};
const lib = await loadParts();

const remotionVersion = await readFile(path.join(ROOT, 'node_modules/remotion/package.json'), 'utf8')
	.then((text) => JSON.parse(text).version)
	.catch(() => 'unknown');

const BROWSER_EXECUTABLE = lib.resolveBrowserExecutable(CONFIGURED_BROWSER);
if (BROWSER_EXECUTABLE !== CONFIGURED_BROWSER) log(`browser: ${CONFIGURED_BROWSER} wraps ${BROWSER_EXECUTABLE}; launching the latter`);

/** Fails the jobs running on a browser that died; returns how many. */
const failJobsOn = (which) => {
	let affected = 0;
	for (const job of state.jobs.values()) {
		if (job.browsers.includes(which) && !job.cancelled) {
			job.crashed = true;
			job.cancel();
			affected++;
		}
	}
	return affected;
};

state.browser = lib.createBrowsers({
	count: BROWSERS,
	executable: BROWSER_EXECUTABLE,
	logLevel: LOG_LEVEL,
	log,
	isShuttingDown: () => state.shuttingDown,
	onGone: failJobsOn,
	beginFrameCapture: BEGIN_FRAME_CAPTURE,
});

// ---- jobs ----------------------------------------------------------------
const removeQuietly = async (file) => {
	if (file) await rm(file, {force: true}).catch((err) => log(`could not remove ${file}: ${err.message}`));
};
const absoluteOrNull = (p) => (typeof p === 'string' && path.isAbsolute(p) ? p : null);

/** A refusal before anything starts, or null when the job may start. */
const refuse = (id) => {
	if (typeof id !== 'string' || !id) return lib.refusal(id ?? null, 'INVALID_INPUT', 'render request needs a string id');
	if (state.jobs.has(id)) return lib.refusal(id, 'DUPLICATE_ID', `job ${id} is already running`);
	if (state.shuttingDown) return lib.refusal(id, 'SHUTTING_DOWN', 'render host is shutting down', true);
	return null;
};

/** The job's cancel state: cancelled by request, timeout, crash or shutdown. */
const newJob = (id, timeoutMs) => {
	const {cancelSignal, cancel} = lib.makeCancelSignal();
	const job = {id, cancelled: false, timedOut: false, crashed: false, browsers: [], cancel: () => {}, done: null, cancelSignal};
	job.cancel = () => {
		if (job.cancelled) return;
		job.cancelled = true;
		cancel();
	};
	job.timer = setTimeout(() => {
		log(`job ${id}: timed out after ${timeoutMs} ms`);
		job.timedOut = true;
		job.cancel();
	}, timeoutMs);
	return job;
};

const failJob = async (req, job, err) => {
	await removeQuietly(absoluteOrNull(req.outputPath));
	await removeQuietly(absoluteOrNull(req.thumbnailPath));
	const {reason, retryable, message, stack} = lib.classifyError(err, job);
	log(`job ${job.id}: ${reason}: ${message}`);
	const text = reason === 'CANCELLED' ? `render ${job.id} was cancelled` : message;
	send({type: 'error', id: job.id, error: lib.hostError(reason, text, retryable, stack)});
};

const startJob = (req) => {
	const refused = refuse(req.id);
	if (refused) return send(refused);
	const timeoutMs = Number.isInteger(req.timeoutMs) && req.timeoutMs > 0 ? req.timeoutMs : DEFAULT_TIMEOUT_MS;
	const job = newJob(req.id, timeoutMs);
	state.jobs.set(job.id, job);
	const host = {send, log, browser: state.browser, serveUrl: state.serveUrl, logLevel: LOG_LEVEL};
	job.done = lib
		.runJob(host, req, job, job.cancelSignal)
		.catch((err) => failJob(req, job, err))
		.finally(() => {
			clearTimeout(job.timer);
			state.jobs.delete(job.id);
		});
};

// ---- shutdown --------------------------------------------------------------
const shutdown = (why) => {
	if (state.shutdownPromise) return state.shutdownPromise;
	state.shuttingDown = true;
	log(`shutting down (${why}), cancelling ${state.jobs.size} job(s)`);
	state.shutdownPromise = (async () => {
		const pending = [...state.jobs.values()].map((j) => {
			j.cancel();
			return j.done;
		});
		await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS))]);
		await state.browser.close(5000);
		if (state.assetServer) await state.assetServer.close();
		if (state.bundleServer) await state.bundleServer.close();
		process.exit(0);
	})();
	return state.shutdownPromise;
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
// Nobody is listening any more (EPIPE): wind down like on stdin EOF.
process.stdout.on('error', (err) => {
	log(`stdout error: ${err.message}`);
	shutdown('stdout closed');
});
process.on('SIGINT', () => shutdown('SIGINT'));

// ---- stdin -------------------------------------------------------------------
const cancelJob = (id) => {
	const job = state.jobs.get(id);
	if (!job) return log(`cancel for unknown job ${id} ignored`);
	log(`job ${id}: cancel requested`);
	job.cancel();
};

const handleLine = (line) => {
	if (!line.trim()) return;
	let msg;
	try {
		msg = JSON.parse(line);
	} catch {
		log(`ignoring unparsable line: ${line.slice(0, 200)}`);
		return send(lib.refusal(null, 'INVALID_INPUT', 'request is not valid JSON'));
	}
	switch (msg?.type) {
		case 'render':
			return startJob(msg);
		case 'cancel':
			return cancelJob(msg.id);
		case 'ping':
			return send({type: 'pong', id: msg.id ?? null});
		case 'shutdown':
			return void shutdown('shutdown request');
		default:
			log(`ignoring message of unknown type ${JSON.stringify(msg?.type)}`);
			send(lib.refusal(msg?.id ?? null, 'INVALID_INPUT', `unknown message type ${JSON.stringify(msg?.type)}`));
	}
};

// ---- start -----------------------------------------------------------------
const bundlingFailed = (err) => {
	const {message, stack} = lib.classifyError(err);
	state.dying = true;
	send({type: 'fatal', error: lib.hostError('BUNDLE_FAILED', message, false, stack)});
	log('bundling failed:', stack || message);
	state.browser.drop();
	setTimeout(() => process.exit(1), 200);
};

const main = async () => {
	if (!existsSync(BROWSER_EXECUTABLE)) log(`warning: browser executable ${BROWSER_EXECUTABLE} does not exist`);
	// Launch the browsers while bundling; jobs wait for them.
	state.browser.launch();
	let bundleInfo;
	try {
		[bundleInfo, state.assetServer] = await Promise.all([
			lib.ensureBundle({rootDir: ROOT, cacheDir: BUNDLE_CACHE, log}),
			lib.startAssetServer({rootDir: ASSET_DIR, log}),
		]);
	} catch (err) {
		return bundlingFailed(err);
	}
	// Over our own HTTP server, cacheable: Remotion's answers no-store (lib/bundle-server.mjs).
	state.bundleServer = await lib.startBundleServer({log});
	state.serveUrl = state.bundleServer.add(bundleInfo.hash, bundleInfo.serveUrl);
	const {assetServer} = state;
	log(`bundle ${bundleInfo.hash} ${bundleInfo.cached ? 'cached' : 'built'} in ${bundleInfo.bundleMs} ms; assets ${ASSET_DIR ?? '(none)'} at ${assetServer.baseUrl}`);
	const rl = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
	rl.on('line', handleLine);
	rl.on('close', () => shutdown('stdin closed'));
	const {hash: bundleHash, bundleMs, cached} = bundleInfo;
	send({type: 'ready', bundleHash, bundleMs, cached, assetBaseUrl: assetServer.baseUrl, remotionVersion, pid: process.pid});
};

main().catch(die);
