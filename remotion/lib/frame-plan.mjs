// Static holds: the composition reports (from calculateMetadata) frame ranges [from, to]
// in which every frame looks exactly like frame `from`, e.g. a title after its entrance
// animation has settled. Capturing a 1080p frame costs Chromium about 50 ms of CPU even
// when nothing changed, so only `from` of each hold is captured and the encoder repeats
// it: renderMedia gets the captured frames as a list of frame ranges; in the ffmpeg that
// encodes them as they come, the `setts` bitstream filter gives each captured frame its
// own timestamp, and constant-frame-rate output fills each gap by repeating the frame
// before it. The output has every frame. (Remotion's ffmpeg is built without the
// setpts and fps filters; bitstream filters and -fps_mode are there.)

/**
 * Plans which frames to capture.
 * @param {number} durationInFrames frames in the composition
 * @param {number} fps the composition's frame rate
 * @param {unknown} holds [from, to] pairs (inclusive) from the composition; anything
 *   malformed is ignored, never trusted
 * @returns {{frameRange: [number, number][], captured: number, total: number, fps: number, timestamps: string} | null}
 *   null when nothing can be skipped
 */
export const planFrames = (durationInFrames, fps, holds) => {
	if (!Array.isArray(holds) || !Number.isInteger(durationInFrames) || durationInFrames < 2) return null;
	if (!Number.isInteger(fps) || fps <= 0) return null;
	const last = durationInFrames - 1;
	const valid = holds
		.filter((h) => Array.isArray(h) && h.length === 2 && Number.isInteger(h[0]) && Number.isInteger(h[1]))
		.map(([from, to]) => [from, to])
		.sort((a, b) => a[0] - b[0]);
	// Frames not captured, as inclusive ranges. A hold's own first frame is always
	// captured (it is the one repeated), and so is the composition's last frame: the fps
	// filter repeats a frame only up to the next captured one.
	const skipped = [];
	let coveredUpTo = -1;
	for (const [from, to] of valid) {
		if (from < 0 || from <= coveredUpTo) continue;
		const start = from + 1;
		// Where the next hold starts right after this one (a title's hold, then a colour card's,
		// no transition between), this hold's last frame is captured too: the next hold's
		// first frame alone between two gaps came out one frame early (cfr repeats it over
		// the frame before).
		const meets = valid.some(([nextFrom]) => nextFrom === to + 1);
		const end = Math.min(meets ? to - 1 : to, last - 1);
		if (end < start) continue;
		skipped.push([start, end]);
		coveredUpTo = end;
	}
	if (skipped.length === 0) return null;
	const frameRange = [];
	let next = 0;
	for (const [start, end] of skipped) {
		if (start > next) frameRange.push([next, start - 1]);
		next = end + 1;
	}
	frameRange.push([next, last]);
	// Captured frame N (0-based, in capture order) belongs at source frame
	// N + (frames skipped before it): one step term per gap.
	const terms = [];
	let captured = 0;
	for (let i = 0; i < frameRange.length; i++) {
		captured += frameRange[i][1] - frameRange[i][0] + 1;
		const following = frameRange[i + 1];
		// `\\,`: the comma is escaped because -bsf separates filters with commas.
		if (following) terms.push(`${following[0] - frameRange[i][1] - 1}*gte(N\\,${captured})`);
	}
	const timestamps = `(N+${terms.join('+')})/(${fps}*TB)`;
	return {frameRange, captured, total: durationInFrames, fps, timestamps};
};

/**
 * The captured frame that shows `frame`: the frame itself, or for a frame inside a hold the
 * hold's first frame.
 * @param {{frameRange: [number, number][]} | null} plan
 * @param {number} frame
 */
export const capturedFrameShowing = (plan, frame) => {
	if (!plan) return frame;
	let shown = 0;
	for (const [start, end] of plan.frameRange) {
		if (start > frame) break;
		shown = Math.min(frame, end);
	}
	return shown;
};

/**
 * The arguments of the ffmpeg that encodes frames as renderMedia pipes them in (Remotion's
 * "pre-stitcher"), tuned:
 * - it starts at the first frame: by default ffmpeg first reads 5 MB of the pipe to probe
 *   it (dozens of 1080p JPEGs, often the whole clip), so encoding only began after the
 *   last capture, serially, instead of alongside the captures;
 * - with a plan, static holds are restored: timestamps on input, constant frame rate on
 *   output;
 * - with a still, a second output copies the captured JPEG of that frame, byte for byte,
 *   to `still.path` (the thumbnail, at no cost: no extra tab, no extra capture).
 * `timestamped` and `stillWritten` are false when the arguments do not have the expected
 * shape; the caller then captures every frame and renders the still itself.
 * @param {(string | number)[]} args
 * @param {{fps: number, timestamps: string, frameRange: [number, number][]} | null} plan
 * @param {{path: string, frame: number, fps: number} | null} still
 * @returns {{args: (string | number)[], timestamped: boolean, stillWritten: boolean}}
 */
export const prestitcherArgs = (args, plan, still = null) => {
	const input = args.findIndex((a, i) => a === '-i' && args[i + 1] === '-');
	const jpegInput = args.some((a, i) => a === '-vcodec' && args[i + 1] === 'mjpeg' && i < input);
	if (input === -1) return {args, timestamped: false, stillWritten: false};
	const probe = args.some((a) => a === '-probesize' || a === '-analyzeduration')
		? []
		: ['-probesize', '32', '-analyzeduration', '0'];
	// Input `-r` would replace every timestamp with a counter; the demuxer's -framerate
	// sets the same rate and leaves the timestamps to the bitstream filter.
	const rate = args.findIndex((a, i) => a === '-r' && i < input);
	const timestamped =
		plan !== null && rate !== -1 && !args.some((a) => /^-(bsf|fps_mode|vsync|framerate)/.test(String(a)));
	const inputOptions = [...args.slice(0, input)];
	if (timestamped) {
		inputOptions.splice(rate, 2, '-framerate', String(plan.fps), '-bsf:v', `setts=ts=${plan.timestamps}`);
	}
	// The output stops at the composition's last frame: when two holds met, cfr also
	// stretched the last captured frame over the gap before it again (90 frames came out
	// as 117).
	const outputOptions = timestamped ? ['-fps_mode', 'cfr', '-r', String(plan.fps), '-frames:v', String(plan.total)] : [];
	// Packets carry source timestamps (frame / fps), with or without a plan; seek to half
	// a frame before the one wanted, since -ss keeps the first packet at or after it.
	const stillOutput =
		still && jpegInput && (timestamped || plan === null)
			? [
					'-map',
					'0:v:0',
					'-ss',
					((capturedFrameShowing(timestamped ? plan : null, still.frame) - 0.5) / still.fps).toFixed(6),
					'-frames:v',
					'1',
					'-c:v',
					'copy',
					'-f',
					'image2',
					'-update',
					'1',
					'-y',
					still.path,
				]
			: [];
	return {
		args: [...inputOptions, ...probe, '-i', '-', ...outputOptions, ...args.slice(input + 2), ...stillOutput],
		timestamped,
		stillWritten: stillOutput.length > 0,
	};
};
