// Unit tests of lib/frame-plan.mjs: which frames are captured, and the encoder's arguments.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {capturedFrameShowing, planFrames, prestitcherArgs} from '../lib/frame-plan.mjs';

// The reference sample's holds (title 29-44, text 64-79, color card 125-149).
const REFERENCE_HOLDS = [
	[29, 44],
	[64, 79],
	[125, 149],
];
const PRESTITCHER = ['-r', 30, '-f', 'image2pipe', '-s', '1920x1080', '-vcodec', 'mjpeg', '-i', '-', '-c:v', 'libx264', '-crf', 18, '-y', '/tmp/pre.mp4'];

test('captures the first frame of each hold and the last frame, skips the rest', () => {
	const plan = planFrames(150, 30, REFERENCE_HOLDS);
	assert.deepEqual(plan.frameRange, [
		[0, 29],
		[45, 64],
		[80, 125],
		[149, 149],
	]);
	assert.equal(plan.captured, 30 + 20 + 46 + 1);
	assert.equal(plan.total, 150);
	assert.equal(plan.timestamps, '(N+15*gte(N\\,30)+15*gte(N\\,50)+23*gte(N\\,96))/(30*TB)');
});

test('the timestamp expression puts every captured frame back at its own frame', () => {
	const plan = planFrames(150, 30, REFERENCE_HOLDS);
	const captured = plan.frameRange.flatMap(([a, b]) => Array.from({length: b - a + 1}, (_, i) => a + i));
	const expr = plan.timestamps.replaceAll('\\,', ',').replace('/(30*TB)', '');
	const gte = (a, b) => (a >= b ? 1 : 0);
	captured.forEach((frame, N) => {
		assert.equal(new Function('N', 'gte', `return ${expr}`)(N, gte), frame, `captured #${N}`);
	});
});

test('nothing to skip, malformed or hostile holds: no plan, or only the sound parts', () => {
	assert.equal(planFrames(150, 30, []), null);
	assert.equal(planFrames(150, 30, undefined), null);
	assert.equal(planFrames(150, 30, [[10, 10]]), null, 'a one-frame hold skips nothing');
	assert.equal(planFrames(1, 30, [[0, 0]]), null);
	assert.equal(planFrames(150, 0, REFERENCE_HOLDS), null);
	assert.equal(planFrames(150, 30, [['0', '9'], [1.5, 9], 'x', [3], null]), null);
	// Out of range and overlapping holds are clamped or dropped, never trusted.
	const plan = planFrames(20, 30, [[-5, 3], [2, 8], [5, 12], [15, 400]]);
	assert.deepEqual(plan.frameRange, [
		[0, 2],
		[9, 15],
		[19, 19],
	]);
});

test('capturedFrameShowing maps a skipped frame to its hold start', () => {
	const plan = planFrames(150, 30, REFERENCE_HOLDS);
	assert.equal(capturedFrameShowing(plan, 0), 0);
	assert.equal(capturedFrameShowing(plan, 29), 29);
	assert.equal(capturedFrameShowing(plan, 30), 29);
	assert.equal(capturedFrameShowing(plan, 44), 29);
	assert.equal(capturedFrameShowing(plan, 45), 45);
	assert.equal(capturedFrameShowing(plan, 148), 125);
	assert.equal(capturedFrameShowing(plan, 149), 149);
	assert.equal(capturedFrameShowing(null, 77), 77);
});

test('planFrames: holds that meet keep the first one\'s last frame captured', () => {
	const plan = planFrames(60, 30, [[29, 39], [40, 59]]);
	assert.deepEqual(plan.frameRange, [[0, 29], [39, 40], [59, 59]]);
	assert.equal(plan.captured, 33);
});

test('prestitcherArgs: probes at once, restores holds, copies the still out', () => {
	const plan = planFrames(150, 30, REFERENCE_HOLDS);
	const {args, timestamped, stillWritten} = prestitcherArgs(PRESTITCHER, plan, {path: '/tmp/t.jpg', frame: 30, fps: 30});
	assert.ok(timestamped && stillWritten);
	assert.deepEqual(args.slice(0, 14), [
		'-framerate', '30',
		'-bsf:v', `setts=ts=${plan.timestamps}`,
		'-f', 'image2pipe', '-s', '1920x1080', '-vcodec', 'mjpeg',
		'-probesize', '32', '-analyzeduration', '0',
	]);
	assert.deepEqual(args.slice(14, 22), ['-i', '-', '-fps_mode', 'cfr', '-r', '30', '-frames:v', '150']);
	assert.deepEqual(args.slice(22, 28), ['-c:v', 'libx264', '-crf', 18, '-y', '/tmp/pre.mp4']);
	// Frame 30 is inside the title hold: its picture is frame 29's capture.
	assert.deepEqual(args.slice(28), ['-map', '0:v:0', '-ss', (28.5 / 30).toFixed(6), '-frames:v', '1', '-c:v', 'copy', '-f', 'image2', '-update', '1', '-y', '/tmp/t.jpg']);
});

test('prestitcherArgs without a plan keeps the counter timestamps', () => {
	const {args, timestamped, stillWritten} = prestitcherArgs(PRESTITCHER, null, null);
	assert.equal(timestamped, false);
	assert.equal(stillWritten, false);
	assert.deepEqual(args, ['-r', 30, '-f', 'image2pipe', '-s', '1920x1080', '-vcodec', 'mjpeg', '-probesize', '32', '-analyzeduration', '0', ...PRESTITCHER.slice(8)]);
});

test('prestitcherArgs leaves arguments it does not understand alone', () => {
	const plan = planFrames(150, 30, REFERENCE_HOLDS);
	const noPipe = ['-i', 'frames/%04d.jpeg', '-c:v', 'libx264', 'out.mp4'];
	assert.deepEqual(prestitcherArgs(noPipe, plan, {path: '/t.jpg', frame: 0, fps: 30}), {args: noPipe, timestamped: false, stillWritten: false});
	const filtered = [...PRESTITCHER.slice(0, 10), '-vsync', 'vfr', ...PRESTITCHER.slice(10)];
	const res = prestitcherArgs(filtered, plan, {path: '/t.jpg', frame: 0, fps: 30});
	assert.equal(res.timestamped, false, 'an existing sync option: no holds');
	assert.equal(res.stillWritten, false, 'packets then carry counter timestamps that do not match the plan');
	const png = PRESTITCHER.map((a) => (a === 'mjpeg' ? 'png' : a));
	assert.equal(prestitcherArgs(png, null, {path: '/t.jpg', frame: 0, fps: 30}).stillWritten, false, 'only JPEG frames are copied out as the thumbnail');
});
