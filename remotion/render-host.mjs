#!/usr/bin/env node
// Long-lived Remotion render host speaking JSON lines over stdio.
// stdin: one JSON request per line. stdout: one JSON message per line, nothing else.
// All logs go to stderr. The protocol is documented in README.md.

// Must stay the first import: it takes stdout away from everything but the protocol.
import {protocolWrite} from './lib/stdio-guard.mjs';
import {accessSync, constants as fsConstants, existsSync, readFileSync, statSync} from 'node:fs';
import {mkdir, readFile, rm, stat} from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import {fileURLToPath} from 'node:url';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const CONFIGURED_BROWSER = process.env.REMOTION_BROWSER_EXECUTABLE || '/usr/bin/chromium-headless-shell';
const BUNDLE_CACHE = process.env.RENDER_BUNDLE_CACHE || path.join(ROOT, '.bundle-cache');
const ASSET_DIR = process.env.RENDER_ASSET_DIR || null;
const LOG_LEVEL = process.env.REMOTION_LOG_LEVEL || 'warn';
// Chromium runs as root here; Remotion adds --no-sandbox itself. Software GL is
// enough for these compositions (no WebGL), so keep Remotion's default.
const CHROMIUM_OPTIONS = {};
const PROGRESS_INTERVAL_MS = 250;
const SHUTDOWN_GRACE_MS = 15000;
const CODECS = new Set(['h264', 'vp8', 'vp9', 'gif']);
const X264_PRESETS = new Set(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow', 'placebo']);
const IMAGE_FORMATS = new Set(['jpeg', 'png']);
const PIXEL_FORMATS = new Set(['yuv420p', 'yuv422p', 'yuv444p', 'yuv420p10le', 'yuv422p10le', 'yuv444p10le']);
const GIF_EVERY_NTH_FRAME = 2; // 30 fps composition -> 15 fps GIF

const log = (...args) => console.error('[render-host]', ...args);

/**
 * Debian's /usr/bin/chromium-headless-shell is a `#!/bin/sh` wrapper that runs
 * the real binary as a child (no exec). Remotion's `setpriv --pdeathsig` then
 * only guards the shell, so a SIGKILLed host would leave Chromium running.
 * Launch the wrapped binary directly when the wrapper is that trivial.
 */
const resolveBrowserExecutable = (configured) => {
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
const BROWSER_EXECUTABLE = resolveBrowserExecutable(CONFIGURED_BROWSER);
if (BROWSER_EXECUTABLE !== CONFIGURED_BROWSER) log(`browser: ${CONFIGURED_BROWSER} wraps ${BROWSER_EXECUTABLE}; launching the latter`);
const send = (msg) => protocolWrite(`${JSON.stringify(msg)}\n`);

let remotionVersion = 'unknown';
try {
	remotionVersion = JSON.parse(await readFile(path.join(ROOT, 'node_modules/remotion/package.json'), 'utf8')).version;
} catch {
	// reported as unknown
}

// ---- fatal handling ------------------------------------------------------
let browserPromise = null;
let dying = false;
const die = (err) => {
	if (dying) return;
	dying = true;
	const e = err instanceof Error ? err : new Error(String(err));
	log('fatal:', e.stack ?? e.message);
	try {
		send({type: 'fatal', error: {reason: 'INTERNAL', message: e.message, stack: e.stack ?? '', retryable: true}});
	} catch {
		// stdout gone
	}
	const closing = browserPromise
		? browserPromise.then((b) => b.close({silent: true})).catch(() => {})
		: Promise.resolve();
	Promise.race([closing, new Promise((r) => setTimeout(r, 2000))]).finally(() => process.exit(1));
};
process.on('uncaughtException', die);
process.on('unhandledRejection', die);

// ---- dependencies: loaded after the fatal handlers so a broken install is reported as fatal
let startAssetServer, ensureBundle, HostError, classifyError, probeFile, planFrames, prestitcherArgs;
let openBrowser, selectComposition, renderMedia, renderStill, makeCancelSignal;
try {
	({startAssetServer} = await import('./lib/asset-server.mjs'));
	({ensureBundle} = await import('./lib/bundle-cache.mjs'));
	({HostError, classifyError} = await import('./lib/errors.mjs'));
	({probeFile} = await import('./lib/probe.mjs'));
	({planFrames, prestitcherArgs} = await import('./lib/frame-plan.mjs'));
	({openBrowser, selectComposition, renderMedia, renderStill, makeCancelSignal} = await import('@remotion/renderer'));
} catch (err) {
	die(err);
	await new Promise(() => {}); // die() exits
}

const launchBrowser = () => {
	const p = openBrowser('chrome', {
		browserExecutable: BROWSER_EXECUTABLE,
		chromiumOptions: CHROMIUM_OPTIONS,
		logLevel: LOG_LEVEL,
	});
	p.then(
		(browser) => {
			// Remotion does not reject in-flight renders when Chromium dies; watch the
			// DevTools websocket and fail the affected jobs ourselves.
			browser.connection?.transport?.websocket?.addEventListener?.('close', () => onBrowserGone(p));
		},
		(err) => log('could not open browser:', err?.message ?? err),
	);
	return p;
};

const onBrowserGone = (which) => {
	if (which === browserPromise) browserPromise = null;
	if (shuttingDown) return;
	let affected = 0;
	for (const job of jobs.values()) {
		if (job.browser === which && !job.cancelled) {
			job.crashed = true;
			job.cancel();
			affected++;
		}
	}
	log(`browser connection closed; ${affected} job(s) affected`);
	which.then((b) => b.close({silent: true})).catch(() => {});
};

/** The shared browser; reopened if it died or failed to launch. */
const getBrowser = async () => {
	if (browserPromise) {
		try {
			const browser = await browserPromise;
			await Promise.race([
				browser.connection.send('Browser.getVersion'),
				new Promise((_, reject) => setTimeout(() => reject(new Error('browser health check timed out')), 10000)),
			]);
			return browser;
		} catch (err) {
			log('browser unusable, relaunching:', err?.message ?? err);
			dropBrowser();
		}
	}
	browserPromise = launchBrowser();
	return browserPromise;
};

const dropBrowser = (which = browserPromise) => {
	if (!which) return;
	if (which === browserPromise) browserPromise = null;
	which.then((b) => b.close({silent: true})).catch(() => {});
};

// ---- jobs ----------------------------------------------------------------
/** @type {Map<string, {id: string, cancel: () => void, cancelled: boolean, timedOut: boolean, done: Promise<void>}>} */
const jobs = new Map();
let shuttingDown = false;
let serveUrl = null;

const isPositiveInt = (v, max) => Number.isInteger(v) && v > 0 && v <= max;

const validateRequest = (req) => {
	const bad = (msg) => {
		throw new HostError('INVALID_INPUT', msg);
	};
	if (req.compositionId !== undefined && typeof req.compositionId !== 'string') bad('compositionId must be a string');
	if (!req.inputProps || typeof req.inputProps !== 'object' || Array.isArray(req.inputProps)) bad('inputProps must be an object');
	const codec = req.codec ?? 'h264';
	if (!CODECS.has(codec)) bad(`codec must be one of ${[...CODECS].join(', ')}`);
	if (typeof req.outputPath !== 'string' || !path.isAbsolute(req.outputPath)) bad('outputPath must be an absolute path');
	if (req.thumbnailPath != null && (typeof req.thumbnailPath !== 'string' || !path.isAbsolute(req.thumbnailPath))) bad('thumbnailPath must be an absolute path or null');
	for (const k of ['width', 'height']) {
		if (req[k] != null && !isPositiveInt(req[k], 7680)) bad(`${k} must be an integer 1..7680`);
		if (req[k] != null && codec !== 'gif' && req[k] % 2 !== 0) bad(`${k} must be even for ${codec}`);
	}
	if (req.crf != null && (typeof req.crf !== 'number' || !Number.isFinite(req.crf))) bad('crf must be a number or null');
	if (req.jpegQuality != null && !(Number.isInteger(req.jpegQuality) && req.jpegQuality >= 1 && req.jpegQuality <= 100)) bad('jpegQuality must be an integer 1..100');
	if (req.videoBitrate != null && !(typeof req.videoBitrate === 'string' && /^\d+(\.\d+)?[KkMm]?$/.test(req.videoBitrate))) bad('videoBitrate must look like "5M", "800K" or null');
	if (req.concurrency != null && !isPositiveInt(req.concurrency, 64)) bad('concurrency must be a positive integer or null');
	if (req.timeoutMs != null && !isPositiveInt(req.timeoutMs, 24 * 3600 * 1000)) bad('timeoutMs must be a positive integer (ms) or null');
	if (req.thumbnailFrame != null && !(Number.isInteger(req.thumbnailFrame) && req.thumbnailFrame >= 0)) bad('thumbnailFrame must be a non-negative integer or null');
	if (req.x264Preset != null && !X264_PRESETS.has(req.x264Preset)) bad(`x264Preset must be one of ${[...X264_PRESETS].join(', ')}`);
	if (req.imageFormat != null && !IMAGE_FORMATS.has(req.imageFormat)) bad(`imageFormat must be one of ${[...IMAGE_FORMATS].join(', ')}`);
	if (req.pixelFormat != null && !PIXEL_FORMATS.has(req.pixelFormat)) bad(`pixelFormat must be one of ${[...PIXEL_FORMATS].join(', ')}`);
	if (req.skipStaticFrames != null && typeof req.skipStaticFrames !== 'boolean') bad('skipStaticFrames must be a boolean or null');
	return codec;
};

const nonEmptyFile = async (file) => {
	try {
		return (await stat(file)).size > 0;
	} catch {
		return false;
	}
};

const removeQuietly = async (file) => {
	if (file) await rm(file, {force: true}).catch((err) => log(`could not remove ${file}: ${err.message}`));
};

const runJob = async (req, job, cancelSignal) => {
	const started = performance.now();
	const {id} = req;
	const codec = validateRequest(req);
	const outputPath = req.outputPath;
	const thumbnailPath = req.thumbnailPath ?? null;
	const jpegQuality = req.jpegQuality ?? 80;
	const imageFormat = req.imageFormat ?? 'jpeg';
	await mkdir(path.dirname(outputPath), {recursive: true});
	if (thumbnailPath) await mkdir(path.dirname(thumbnailPath), {recursive: true});

	let browser = await getBrowser();
	const browserAtStart = browserPromise;
	job.browser = browserAtStart;
	if (job.cancelled) throw new Error('cancelled');
	const common = {
		serveUrl,
		inputProps: req.inputProps,
		puppeteerInstance: browser,
		browserExecutable: BROWSER_EXECUTABLE,
		chromiumOptions: CHROMIUM_OPTIONS,
		logLevel: LOG_LEVEL,
	};
	try {
		const timings = {};
		let mark = performance.now();
		const lap = (name) => {
			const now = performance.now();
			timings[name] = Math.round(now - mark);
			mark = now;
		};
		const selected = await selectComposition({...common, id: req.compositionId ?? 'MainComposition'});
		lap('selectMs');
		if (job.cancelled) throw new Error('cancelled');
		const composition = {
			...selected,
			width: req.width ?? selected.width,
			height: req.height ?? selected.height,
		};

		// crf and videoBitrate are mutually exclusive in Remotion: crf wins. GIF takes neither.
		let crf = req.crf ?? null;
		let videoBitrate = req.videoBitrate ?? null;
		if (codec === 'gif') {
			crf = null;
			videoBitrate = null;
		} else if (crf != null && videoBitrate != null) {
			log(`job ${id}: both crf and videoBitrate given; using crf=${crf}, dropping videoBitrate=${videoBitrate}`);
			videoBitrate = null;
		}
		const everyNthFrame = codec === 'gif' ? GIF_EVERY_NTH_FRAME : 1;

		// Progress counts frames of the output; Chromium may capture fewer (static holds).
		const totalFrames = Math.ceil(composition.durationInFrames / everyNthFrame);
		let framesToCapture = totalFrames;
		let lastSent = 0;
		let sentAny = false;
		let lastProgress = -1;
		const emitProgress = (p, force = false) => {
			const now = performance.now();
			if (!force && sentAny && now - lastSent < PROGRESS_INTERVAL_MS) return;
			if (force && p.progress === lastProgress && sentAny) return;
			lastSent = now;
			sentAny = true;
			lastProgress = p.progress;
			send({type: 'progress', id, ...p, totalFrames});
		};

		// The thumbnail is the captured JPEG of its frame, copied out by the encoder (see
		// prestitcherArgs). Where there is no such encoder (GIF, VP8/VP9, parallel encoding
		// off), it renders in its own tab while renderMedia runs, so it still adds no time
		// after the video.
		const thumbnailFrame = Math.min(req.thumbnailFrame ?? 0, composition.durationInFrames - 1);
		let thumbnailError = null;
		let thumbPromise = null;
		const renderThumbnail = () => {
			thumbPromise ??= renderStill({
				...common,
				composition,
				output: thumbnailPath,
				overwrite: true,
				frame: thumbnailFrame,
				imageFormat: 'jpeg', // the thumbnail is a .jpg whatever the frames are
				jpegQuality,
				cancelSignal,
			}).catch((err) => {
				// A cancelled job fails through renderMedia; the thumbnail just stops.
				if (job.cancelled) return;
				thumbnailError = String(err?.message ?? err);
				log(`job ${id}: thumbnail failed: ${thumbnailError}`);
			});
			return thumbPromise;
		};
		const still = thumbnailPath ? {path: thumbnailPath, frame: thumbnailFrame, fps: composition.fps} : null;
		let stillFromEncoder = false;

		// Static holds are skipped only where renderMedia pipes frames into one ffmpeg as it
		// goes (parallel encoding, h264): that is where their timestamps are restored.
		// Otherwise (GIF, VP8/VP9, too little memory for parallel encoding) every frame is
		// captured.
		const holdsPlan =
			codec === 'h264' && everyNthFrame === 1 && req.skipStaticFrames !== false
				? planFrames(composition.durationInFrames, composition.fps, selected.props?.staticHolds)
				: null;
		const renderVideo = async (plan) => {
			// Own cancel signal per attempt, so that a plan that cannot apply can be dropped.
			const attempt = makeCancelSignal();
			cancelSignal(() => attempt.cancel());
			let timestamped = false;
			let dropPlan = false;
			stillFromEncoder = false;
			try {
				await renderMedia({
					...common,
					composition,
					codec,
					outputLocation: outputPath,
					overwrite: true,
					crf,
					videoBitrate,
					jpegQuality,
					imageFormat,
					pixelFormat: codec === 'gif' ? undefined : (req.pixelFormat ?? undefined),
					// x264's speed/size trade-off (h264 only); Remotion's default is "medium".
					x264Preset: codec === 'h264' ? (req.x264Preset ?? null) : null,
					everyNthFrame,
					frameRange: plan ? plan.frameRange : null,
					ffmpegOverride: ({type, args}) => {
						if (type !== 'pre-stitcher') return args;
						const tuned = prestitcherArgs(args, plan, still);
						timestamped = tuned.timestamped;
						stillFromEncoder = tuned.stillWritten;
						return tuned.args;
					},
					concurrency: req.concurrency ?? null,
					cancelSignal: attempt.cancelSignal,
					onStart: ({frameCount}) => {
						// The pre-stitcher is spawned before the first frame: if it could not
						// restore the holds, stop now (nothing captured yet), capture every frame.
						if (plan && !timestamped) {
							dropPlan = true;
							attempt.cancel();
							return;
						}
						if (still && !stillFromEncoder) renderThumbnail();
						if (frameCount) framesToCapture = frameCount;
						timings.startMs ??= Math.round(performance.now() - mark);
					},
					onProgress: ({renderedFrames, encodedFrames}) => {
						if (dropPlan) return;
						if (renderedFrames > 0) timings.firstFrameMs ??= Math.round(performance.now() - mark);
						if (renderedFrames >= framesToCapture) timings.allFramesMs ??= Math.round(performance.now() - mark);
						const stage = renderedFrames < framesToCapture ? 'rendering' : 'encoding';
						// Remotion's own weighting (70% capture, 30% encoding), with the two counted
						// against their own totals (they differ with holds: encodedFrames are
						// output frames).
						const captured = Math.min(1, renderedFrames / framesToCapture);
						const encoded = Math.min(1, encodedFrames / totalFrames);
						const share = Math.round(70 * captured + 30 * encoded) / 100;
						emitProgress(
							{
								stage,
								progress: share,
								renderedFrames: Math.min(totalFrames, Math.round(captured * totalFrames)),
								encodedFrames: Math.min(totalFrames, encodedFrames),
							},
							share >= 1,
						);
					},
				});
			} catch (err) {
				if (dropPlan && !job.cancelled) {
					log(`job ${id}: the encoder could not restore static holds; capturing every frame`);
					return renderVideo(null);
				}
				throw err;
			}
		};
		await renderVideo(holdsPlan);
		if (job.cancelled) throw new Error('cancelled');
		lap('renderMediaMs');
		emitProgress({stage: 'encoding', progress: 1, renderedFrames: totalFrames, encodedFrames: totalFrames}, true);
		if (still && stillFromEncoder && !(await nonEmptyFile(thumbnailPath))) {
			log(`job ${id}: the encoder wrote no thumbnail; rendering it`);
			renderThumbnail();
		}

		const [probe] = await Promise.all([probeFile(outputPath), thumbPromise ?? Promise.resolve()]);
		if (job.cancelled) throw new Error('cancelled');
		lap('thumbnailAndProbeMs');
		const msg = {
			type: 'done',
			id,
			outputPath,
			thumbnailPath: thumbnailPath && !thumbnailError ? thumbnailPath : null,
			probe,
			renderMs: Math.round(performance.now() - started),
			// Frames Chromium captured; the others repeat a static hold (see lib/frame-plan.mjs).
			frames: {captured: framesToCapture, total: totalFrames},
			timings,
		};
		if (thumbnailError) msg.thumbnailError = thumbnailError;
		send(msg);
	} catch (err) {
		const c = classifyError(err, job);
		if (c.reason === 'BROWSER_CRASHED') dropBrowser(browserAtStart);
		throw err;
	} finally {
		browser = null;
	}
};

const startJob = (req) => {
	const id = req.id;
	if (typeof id !== 'string' || !id) {
		send({type: 'error', id: id ?? null, error: {reason: 'INVALID_INPUT', message: 'render request needs a string id', stack: '', retryable: false}});
		return;
	}
	if (jobs.has(id)) {
		send({type: 'error', id, error: {reason: 'DUPLICATE_ID', message: `job ${id} is already running`, stack: '', retryable: false}});
		return;
	}
	if (shuttingDown) {
		send({type: 'error', id, error: {reason: 'SHUTTING_DOWN', message: 'render host is shutting down', stack: '', retryable: true}});
		return;
	}
	const {cancelSignal, cancel} = makeCancelSignal();
	const job = {id, cancelled: false, timedOut: false, crashed: false, browser: null, cancel: () => {}, done: null};
	job.cancel = () => {
		if (job.cancelled) return;
		job.cancelled = true;
		cancel();
	};
	const timeoutMs = Number.isInteger(req.timeoutMs) && req.timeoutMs > 0 ? req.timeoutMs : 30 * 60 * 1000;
	const timer = setTimeout(() => {
		log(`job ${id}: timed out after ${timeoutMs} ms`);
		job.timedOut = true;
		job.cancel();
	}, timeoutMs);
	jobs.set(id, job);
	job.done = (async () => {
		try {
			await runJob(req, job, cancelSignal);
		} catch (err) {
			await removeQuietly(typeof req.outputPath === 'string' && path.isAbsolute(req.outputPath) ? req.outputPath : null);
			await removeQuietly(typeof req.thumbnailPath === 'string' && path.isAbsolute(req.thumbnailPath) ? req.thumbnailPath : null);
			const {reason, retryable, message, stack} = classifyError(err, job);
			log(`job ${id}: ${reason}: ${message}`);
			send({
				type: 'error',
				id,
				error: {
					reason,
					message: reason === 'CANCELLED' ? `render ${id} was cancelled` : message,
					stack,
					retryable,
				},
			});
		} finally {
			clearTimeout(timer);
			jobs.delete(id);
		}
	})();
};

// ---- shutdown --------------------------------------------------------------
let assetServer = null;
let shutdownPromise = null;
const shutdown = (why) => {
	if (shutdownPromise) return shutdownPromise;
	shuttingDown = true;
	log(`shutting down (${why}), cancelling ${jobs.size} job(s)`);
	shutdownPromise = (async () => {
		const pending = [...jobs.values()].map((j) => {
			j.cancel();
			return j.done;
		});
		await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS))]);
		if (browserPromise) {
			await Promise.race([
				browserPromise.then((b) => b.close({silent: true})).catch(() => {}),
				new Promise((r) => setTimeout(r, 5000)),
			]);
		}
		if (assetServer) await assetServer.close();
		process.exit(0);
	})();
	return shutdownPromise;
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
// Nobody is listening any more (EPIPE): wind down like on stdin EOF.
process.stdout.on('error', (err) => {
	log(`stdout error: ${err.message}`);
	shutdown('stdout closed');
});
process.on('SIGINT', () => shutdown('SIGINT'));

// ---- stdin -------------------------------------------------------------------
const handleLine = (line) => {
	if (!line.trim()) return;
	let msg;
	try {
		msg = JSON.parse(line);
	} catch {
		log(`ignoring unparsable line: ${line.slice(0, 200)}`);
		send({type: 'error', id: null, error: {reason: 'INVALID_INPUT', message: 'request is not valid JSON', stack: '', retryable: false}});
		return;
	}
	switch (msg?.type) {
		case 'render':
			startJob(msg);
			break;
		case 'cancel': {
			const job = jobs.get(msg.id);
			if (job) {
				log(`job ${msg.id}: cancel requested`);
				job.cancel();
			} else {
				log(`cancel for unknown job ${msg.id} ignored`);
			}
			break;
		}
		case 'ping':
			send({type: 'pong', id: msg.id ?? null});
			break;
		case 'shutdown':
			shutdown('shutdown request');
			break;
		default:
			log(`ignoring message of unknown type ${JSON.stringify(msg?.type)}`);
			send({type: 'error', id: msg?.id ?? null, error: {reason: 'INVALID_INPUT', message: `unknown message type ${JSON.stringify(msg?.type)}`, stack: '', retryable: false}});
	}
};

// ---- start -----------------------------------------------------------------
const main = async () => {
	if (!existsSync(BROWSER_EXECUTABLE)) {
		log(`warning: browser executable ${BROWSER_EXECUTABLE} does not exist`);
	}
	// Launch the browser while bundling; jobs wait for it.
	browserPromise = launchBrowser();
	let bundleInfo;
	try {
		[bundleInfo, assetServer] = await Promise.all([
			ensureBundle({rootDir: ROOT, cacheDir: BUNDLE_CACHE, log}),
			startAssetServer({rootDir: ASSET_DIR, log}),
		]);
	} catch (err) {
		const {message, stack} = classifyError(err);
		dying = true;
		send({type: 'fatal', error: {reason: 'BUNDLE_FAILED', message, stack, retryable: false}});
		log('bundling failed:', stack || message);
		dropBrowser();
		setTimeout(() => process.exit(1), 200);
		return;
	}
	serveUrl = bundleInfo.serveUrl;
	log(`bundle ${bundleInfo.hash} ${bundleInfo.cached ? 'cached' : 'built'} in ${bundleInfo.bundleMs} ms; assets ${ASSET_DIR ?? '(none)'} at ${assetServer.baseUrl}`);
	const rl = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
	rl.on('line', handleLine);
	rl.on('close', () => shutdown('stdin closed'));
	send({
		type: 'ready',
		bundleHash: bundleInfo.hash,
		bundleMs: bundleInfo.bundleMs,
		cached: bundleInfo.cached,
		assetBaseUrl: assetServer.baseUrl,
		remotionVersion,
		pid: process.pid,
	});
};

main().catch(die);
