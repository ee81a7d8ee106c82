// Begin-frame capture (lib/begin-frame-capture.mjs) against Page.captureScreenshot, each in
// its own host on real Chromium: the same clip must come out the same.
import assert from 'node:assert/strict';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';
import {frameHashes} from './frame-hashes.mjs';
import {REMOTION_DIR, startHost} from './host-client.mjs';

const outDir = mkdtempSync(path.join(tmpdir(), 'capture-modes-test-'));
const hosts = {};

before(async () => {
	hosts.beginFrame = startHost({stderr: 'ignore'});
	hosts.screenshot = startHost({env: {RENDER_BEGIN_FRAME_CAPTURE: '0'}, stderr: 'ignore'});
	for (const host of Object.values(hosts)) {
		const ready = await host.waitFor((m) => m.type === 'ready' || m.type === 'fatal', 120000);
		assert.equal(ready.type, 'ready', JSON.stringify(ready));
	}
});

after(async () => {
	for (const host of Object.values(hosts)) {
		if (host.child.exitCode !== null) continue;
		host.send({type: 'shutdown'});
		const res = await Promise.race([host.exited, new Promise((r) => setTimeout(() => r('timeout'), 20000))]);
		if (res === 'timeout') host.child.kill('SIGKILL');
	}
	rmSync(outDir, {recursive: true, force: true});
});

const render = async (host, id, props, extra = {}) => {
	host.send({
		type: 'render', id, compositionId: 'MainComposition', inputProps: props, codec: 'h264',
		outputPath: path.join(outDir, `${id}.mp4`), width: 640, height: 360, crf: 23, jpegQuality: 80,
		imageFormat: 'jpeg', pixelFormat: 'yuv420p', videoBitrate: null, concurrency: 2, timeoutMs: 120000,
		thumbnailPath: path.join(outDir, `${id}.jpg`), thumbnailFrame: 6, ...extra,
	});
	const res = await host.finished(id, 120000);
	assert.equal(res.type, 'done', JSON.stringify(res));
	return res;
};

test('samples/tiny.json: the same file, frames and thumbnail either way', async () => {
	const props = JSON.parse(readFileSync(path.join(REMOTION_DIR, 'samples', 'tiny.json'), 'utf8'));
	const [a, b] = await Promise.all([render(hosts.beginFrame, 'bf', props), render(hosts.screenshot, 'shot', props)]);
	assert.deepEqual(await frameHashes(a.outputPath), await frameHashes(b.outputPath));
	assert.deepEqual(readFileSync(a.outputPath), readFileSync(b.outputPath), 'byte for byte');
	assert.deepEqual(readFileSync(a.thumbnailPath), readFileSync(b.thumbnailPath));
});

test('a GIF, whose thumbnail renders in a tab of its own: the same frames and thumbnail', async () => {
	const props = {
		projectId: 'capture-modes',
		scenes: [
			{type: 'color', durationInFrames: 10, props: {color: '#0f766e'}, transition: {type: 'wipe', durationInFrames: 4}},
			{type: 'gradient', durationInFrames: 14, props: {from: '#f59e0b', to: '#7c3aed'}, transition: {type: 'slide', durationInFrames: 4}},
			{type: 'color', durationInFrames: 8, props: {color: 'rgb(30, 41, 59)'}},
		],
	};
	const gif = (id) => ({codec: 'gif', crf: null, outputPath: path.join(outDir, `${id}.gif`)});
	const [a, b] = await Promise.all([render(hosts.beginFrame, 'bf-gif', props, gif('bf-gif')), render(hosts.screenshot, 'shot-gif', props, gif('shot-gif'))]);
	assert.deepEqual(a.frames, {captured: 12, total: 12}, 'every second frame of 24');
	assert.deepEqual(await frameHashes(a.outputPath), await frameHashes(b.outputPath));
	assert.deepEqual(readFileSync(a.thumbnailPath), readFileSync(b.thumbnailPath));
});
