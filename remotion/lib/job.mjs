// One render job of the host, as named steps: prepare (validate, directories), select the
// composition, plan the frames, render the video (with progress and the thumbnail), then
// probe and report `done`. The job's state lives in one context object.
import {mkdir, stat} from 'node:fs/promises';
import path from 'node:path';
import {makeCancelSignal, renderMedia, renderStill, selectComposition} from '@remotion/renderer';
import {classifyError} from './errors.mjs';
import {gifEveryNthFrame, retimeGif} from './gif-timing.mjs';
import {planFrames, prestitcherArgs} from './frame-plan.mjs';
import {probeFile} from './probe.mjs';
import {holdsShiftSound, startSoundPass} from './sound-pass.mjs';
import {DEFAULT_IMAGE_FORMAT, validateRequest} from './protocol.mjs';
import {CHROMIUM_OPTIONS, spreadTabs} from './browser.mjs';

const PROGRESS_INTERVAL_MS = 250;
const DEFAULT_JPEG_QUALITY = 80;

const cancelled = (job) => {
	if (job.cancelled) throw new Error('cancelled');
};

const nonEmptyFile = async (file) => {
	try {
		return (await stat(file)).size > 0;
	} catch {
		return false;
	}
};

/** Milliseconds per step: lap(name) records the time since the previous lap. */
const stopwatch = () => {
	const clock = {timings: {}, mark: performance.now()};
	clock.since = () => Math.round(performance.now() - clock.mark);
	clock.lap = (name) => {
		const now = performance.now();
		clock.timings[name] = Math.round(now - clock.mark);
		clock.mark = now;
	};
	return clock;
};

/** Step 1: the validated request, its defaults, the output directories. */
const prepare = async (host, req, job, cancelSignal) => {
	const started = performance.now();
	const codec = validateRequest(req);
	const ctx = {
		host, req, job, cancelSignal, codec, started,
		id: req.id,
		outputPath: req.outputPath,
		thumbnailPath: req.thumbnailPath ?? null,
		jpegQuality: req.jpegQuality ?? DEFAULT_JPEG_QUALITY,
		imageFormat: req.imageFormat ?? DEFAULT_IMAGE_FORMAT,
	};
	await mkdir(path.dirname(ctx.outputPath), {recursive: true});
	if (ctx.thumbnailPath) await mkdir(path.dirname(ctx.thumbnailPath), {recursive: true});
	return ctx;
};

/** Step 2: the composition at the requested size, and the encoder settings. */
const select = async (ctx) => {
	const {req, codec, host} = ctx;
	ctx.selected = await selectComposition({...ctx.common, id: req.compositionId ?? 'MainComposition'});
	ctx.clock.lap('selectMs');
	cancelled(ctx.job);
	const {width, height, fps} = ctx.selected;
	ctx.composition = {...ctx.selected, width: req.width ?? width, height: req.height ?? height, fps: req.fps ?? fps};
	// crf and videoBitrate are mutually exclusive in Remotion: crf wins. GIF takes neither,
	// ProRes neither (its profile sets the rate).
	const rateless = codec === 'gif' || codec === 'prores';
	ctx.crf = rateless ? null : (req.crf ?? null);
	ctx.videoBitrate = rateless ? null : (req.videoBitrate ?? null);
	if (ctx.crf != null && ctx.videoBitrate != null) {
		host.log(`job ${ctx.id}: both crf and videoBitrate given; using crf=${ctx.crf}, dropping videoBitrate=${ctx.videoBitrate}`);
		ctx.videoBitrate = null;
	}
	ctx.everyNthFrame = codec === 'gif' ? gifEveryNthFrame(ctx.composition.fps) : 1; // ~15 fps GIF
	// Progress counts frames of the output; Chromium may capture fewer (static holds).
	ctx.totalFrames = Math.ceil(ctx.composition.durationInFrames / ctx.everyNthFrame);
	ctx.framesToCapture = ctx.totalFrames;
};

/** Progress messages, at most one per PROGRESS_INTERVAL_MS unless forced (and changed). */
const progressEmitter = (send, id, totalFrames) => {
	let lastSent = 0;
	let sentAny = false;
	let lastProgress = -1;
	return (p, force = false) => {
		const now = performance.now();
		if (!force && sentAny && now - lastSent < PROGRESS_INTERVAL_MS) return;
		if (force && p.progress === lastProgress && sentAny) return;
		lastSent = now;
		sentAny = true;
		lastProgress = p.progress;
		send({type: 'progress', id, ...p, totalFrames});
	};
};

/**
 * The thumbnail is the captured JPEG of its frame, copied out by the encoder (see
 * prestitcherArgs). Where there is no such encoder (GIF, VP8/VP9, parallel encoding
 * off), it renders in its own tab while renderMedia runs, so it still adds no time
 * after the video. start() renders it in a tab (once).
 */
const thumbnail = (ctx) => {
	const frame = Math.min(ctx.req.thumbnailFrame ?? 0, ctx.composition.durationInFrames - 1);
	const thumb = {
		still: ctx.thumbnailPath ? {path: ctx.thumbnailPath, frame, fps: ctx.composition.fps} : null,
		fromEncoder: false,
		error: null,
		promise: null,
	};
	thumb.start = () => {
		thumb.promise ??= renderStill({
			...ctx.common,
			composition: ctx.composition,
			output: ctx.thumbnailPath,
			overwrite: true,
			frame,
			imageFormat: 'jpeg', // the thumbnail is a .jpg whatever the frames are
			jpegQuality: ctx.jpegQuality,
			cancelSignal: ctx.cancelSignal,
		}).catch((err) => {
			// A cancelled job fails through renderMedia; the thumbnail just stops.
			if (ctx.job.cancelled) return;
			thumb.error = String(err?.message ?? err);
			ctx.host.log(`job ${ctx.id}: thumbnail failed: ${thumb.error}`);
		});
		return thumb.promise;
	};
	return thumb;
};

/**
 * Step 3: the static holds to skip. Only where renderMedia pipes frames into one ffmpeg
 * as it goes (parallel encoding, h264): that is where their timestamps are restored.
 * Otherwise (GIF, VP8/VP9, too little memory for parallel encoding) every frame is captured.
 */
const planHolds = (ctx) =>
	ctx.codec === 'h264' && ctx.everyNthFrame === 1 && ctx.req.skipStaticFrames !== false
		? planFrames(ctx.composition.durationInFrames, ctx.composition.fps, ctx.selected.props?.staticHolds)
		: null;

/** renderMedia's onStart: drop a plan the encoder cannot apply, start the thumbnail tab. */
const onStart = (ctx, attempt) => ({frameCount}) => {
	// The pre-stitcher is spawned before the first frame: if it could not
	// restore the holds, stop now (nothing captured yet), capture every frame.
	if (attempt.plan && !attempt.timestamped) {
		attempt.dropPlan = true;
		attempt.cancel();
		return;
	}
	if (ctx.thumb.still && !ctx.thumb.fromEncoder) ctx.thumb.start();
	if (frameCount) ctx.framesToCapture = frameCount;
	ctx.clock.timings.startMs ??= ctx.clock.since();
};

/** renderMedia's onProgress: timings, and the progress message. */
const onProgress = (ctx, attempt) => ({renderedFrames, encodedFrames}) => {
	if (attempt.dropPlan) return;
	const {clock, framesToCapture, totalFrames} = ctx;
	if (renderedFrames > 0) clock.timings.firstFrameMs ??= clock.since();
	if (renderedFrames >= framesToCapture) clock.timings.allFramesMs ??= clock.since();
	const stage = renderedFrames < framesToCapture ? 'rendering' : 'encoding';
	// Remotion's own weighting (70% capture, 30% encoding), with the two counted
	// against their own totals (they differ with holds: encodedFrames are output frames).
	const captured = Math.min(1, renderedFrames / framesToCapture);
	const encoded = Math.min(1, encodedFrames / totalFrames);
	const share = Math.round(70 * captured + 30 * encoded) / 100;
	const frames = {renderedFrames: Math.min(totalFrames, Math.round(captured * totalFrames)), encodedFrames: Math.min(totalFrames, encodedFrames)};
	ctx.emitProgress({stage, progress: share, ...frames}, share >= 1);
};

/** renderMedia's options for one attempt (with or without a plan, with or without sound). */
const mediaOptions = (ctx, attempt) => {
	const {req, codec, thumb} = ctx;
	return {
		...ctx.common,
		puppeteerInstance: spreadTabs(ctx.browsers),
		composition: ctx.composition,
		codec,
		outputLocation: attempt.sound ? attempt.sound.videoPath : ctx.outputPath,
		muted: attempt.sound !== null,
		overwrite: true,
		crf: ctx.crf,
		videoBitrate: ctx.videoBitrate,
		jpegQuality: ctx.jpegQuality,
		imageFormat: ctx.imageFormat,
		pixelFormat: codec === 'gif' ? undefined : (req.pixelFormat ?? undefined),
		proResProfile: codec === 'prores' ? (req.proResProfile ?? undefined) : undefined,
		// x264's speed/size trade-off (h264 only); Remotion's default is "medium".
		x264Preset: codec === 'h264' ? (req.x264Preset ?? null) : null,
		everyNthFrame: ctx.everyNthFrame,
		frameRange: attempt.plan ? attempt.plan.frameRange : null,
		ffmpegOverride: ({type, args}) => {
			if (type !== 'pre-stitcher') return args;
			const tuned = prestitcherArgs(args, attempt.plan, thumb.still);
			attempt.timestamped = tuned.timestamped;
			thumb.fromEncoder = tuned.stillWritten;
			return tuned.args;
		},
		concurrency: req.concurrency ?? null,
		cancelSignal: attempt.cancelSignal,
		onStart: onStart(ctx, attempt),
		onProgress: onProgress(ctx, attempt),
	};
};

/** Step 4: the video. A plan that cannot apply is dropped and every frame captured. */
const renderVideo = async (ctx, plan) => {
	// Own cancel signal per attempt, so that a plan that cannot apply can be dropped.
	const attempt = {...makeCancelSignal(), plan, timestamped: false, dropPlan: false, sound: null};
	ctx.cancelSignal(() => attempt.cancel());
	ctx.thumb.fromEncoder = false;
	if (holdsShiftSound(ctx, plan)) attempt.sound = startSoundPass(ctx, attempt.cancelSignal);
	try {
		await renderMedia(mediaOptions(ctx, attempt));
		if (attempt.sound) await attempt.sound.mux();
	} catch (err) {
		if (attempt.sound) attempt.cancel(); // the sound pass stops with its picture
		if (attempt.dropPlan && !ctx.job.cancelled) {
			ctx.host.log(`job ${ctx.id}: the encoder could not restore static holds; capturing every frame`);
			return renderVideo(ctx, null);
		}
		throw err;
	}
};

/** A GIF's frame delays made to add up to the clip's length (lib/gif-timing.mjs). */
const retime = async (ctx) => {
	const {fps, durationInFrames} = ctx.composition;
	const total = await retimeGif(ctx.outputPath, {fps, everyNthFrame: ctx.everyNthFrame, durationInFrames});
	if (total === null) ctx.host.log(`job ${ctx.id}: unexpected GIF frame count; delays left as encoded`);
};

/** Step 5: the thumbnail (if the encoder wrote none) and the probe; then `done`. */
const finish = async (ctx) => {
	const {thumb, totalFrames, thumbnailPath} = ctx;
	ctx.emitProgress({stage: 'encoding', progress: 1, renderedFrames: totalFrames, encodedFrames: totalFrames}, true);
	if (thumb.still && thumb.fromEncoder && !(await nonEmptyFile(thumbnailPath))) {
		ctx.host.log(`job ${ctx.id}: the encoder wrote no thumbnail; rendering it`);
		thumb.start();
	}
	const [probe] = await Promise.all([probeFile(ctx.outputPath), thumb.promise ?? Promise.resolve()]);
	cancelled(ctx.job);
	ctx.clock.lap('thumbnailAndProbeMs');
	const msg = {
		type: 'done',
		id: ctx.id,
		outputPath: ctx.outputPath,
		thumbnailPath: thumbnailPath && !thumb.error ? thumbnailPath : null,
		probe,
		renderMs: Math.round(performance.now() - ctx.started),
		// Frames Chromium captured; the others repeat a static hold (see lib/frame-plan.mjs).
		frames: {captured: ctx.framesToCapture, total: totalFrames},
		timings: ctx.clock.timings,
	};
	if (thumb.error) msg.thumbnailError = thumb.error;
	ctx.host.send(msg);
};

/**
 * Runs one render request to its `done` message; throws on failure (the caller sends
 * the error). `host` is {send, log, browser, serveUrl, logLevel}, its `browser` a
 * createBrowsers; `job` the job's cancel state, whose `browsers` are set to the launches of the
 * browsers it runs on.
 */
export const runJob = async (host, req, job, cancelSignal) => {
	const ctx = await prepare(host, req, job, cancelSignal);
	const {browsers, launches} = await host.browser.get();
	job.browsers = launches;
	ctx.browsers = browsers;
	cancelled(job);
	ctx.common = {
		serveUrl: host.serveUrl,
		inputProps: req.inputProps,
		puppeteerInstance: browsers[0], // selectComposition, renderStill; renderMedia gets all
		browserExecutable: host.browser.executable,
		chromiumOptions: CHROMIUM_OPTIONS,
		logLevel: host.logLevel,
	};
	try {
		ctx.clock = stopwatch();
		await select(ctx);
		ctx.emitProgress = progressEmitter(host.send, ctx.id, ctx.totalFrames);
		ctx.thumb = thumbnail(ctx);
		await renderVideo(ctx, planHolds(ctx));
		cancelled(job);
		if (ctx.codec === 'gif') await retime(ctx);
		ctx.clock.lap('renderMediaMs');
		await finish(ctx);
	} catch (err) {
		if (classifyError(err, job).reason === 'BROWSER_CRASHED') host.browser.drop(launches);
		throw err;
	}
};
