// End-to-end tests of render-host.mjs: one host process for the whole file.
import assert from 'node:assert/strict';
import {existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';
import {isHostMessage} from '../lib/protocol.mjs';
import {frameHashes} from './frame-hashes.mjs';
import {REMOTION_DIR, startHost} from './host-client.mjs';

const sample = (name) => JSON.parse(readFileSync(path.join(REMOTION_DIR, 'samples', `${name}.json`), 'utf8'));
const outDir = mkdtempSync(path.join(tmpdir(), 'render-host-test-'));
const assetDir = mkdtempSync(path.join(tmpdir(), 'render-host-assets-'));
writeFileSync(path.join(assetDir, 'hello.txt'), 'hello world');

const baseRequest = (id, inputProps, extra = {}) => ({
	type: 'render',
	id,
	compositionId: 'MainComposition',
	inputProps,
	codec: 'h264',
	outputPath: path.join(outDir, `${id}.mp4`),
	width: 640,
	height: 360,
	crf: 23,
	jpegQuality: 80,
	// As the worker sends them (render_common/presets.py); Remotion's defaults.
	imageFormat: 'jpeg',
	pixelFormat: 'yuv420p',
	videoBitrate: null,
	concurrency: 2,
	timeoutMs: 120000,
	thumbnailPath: null,
	thumbnailFrame: null,
	...extra,
});

let host;
let ready;

before(async () => {
	host = startHost({env: {RENDER_ASSET_DIR: assetDir}});
	ready = await host.waitFor((m) => m.type === 'ready' || m.type === 'fatal', 90000);
});

after(async () => {
	if (host && host.child.exitCode === null) {
		host.send({type: 'shutdown'});
		const res = await Promise.race([host.exited, new Promise((r) => setTimeout(() => r('timeout'), 20000))]);
		if (res === 'timeout') host.child.kill('SIGKILL');
	}
	rmSync(outDir, {recursive: true, force: true});
	rmSync(assetDir, {recursive: true, force: true});
});

test('ready message', () => {
	assert.equal(ready.type, 'ready', JSON.stringify(ready));
	assert.match(ready.bundleHash, /^[0-9a-f]{16}$/);
	assert.equal(typeof ready.bundleMs, 'number');
	assert.equal(typeof ready.cached, 'boolean');
	assert.equal(ready.remotionVersion, '4.0.527');
	assert.match(ready.assetBaseUrl, /^http:\/\/127\.0\.0\.1:\d+\/assets\/$/);
});

test('ping / pong', async () => {
	host.send({type: 'ping', id: 'p-1'});
	const pong = await host.waitFor((m) => m.type === 'pong' && m.id === 'p-1', 5000);
	assert.deepEqual(pong, {type: 'pong', id: 'p-1'});
});

test('asset server: serves files with ranges, refuses traversal', async () => {
	const url = ready.assetBaseUrl;
	const full = await fetch(`${url}hello.txt`);
	assert.equal(full.status, 200);
	assert.equal(await full.text(), 'hello world');
	const part = await fetch(`${url}hello.txt`, {headers: {Range: 'bytes=6-'}});
	assert.equal(part.status, 206);
	assert.equal(part.headers.get('content-range'), 'bytes 6-10/11');
	assert.equal(await part.text(), 'world');
	for (const bad of ['..%2Fhello.txt', '%2e%2e%2fetc%2fpasswd', 'missing.txt', '']) {
		const res = await fetch(`${url}${bad}`);
		assert.equal(res.status, 404, bad);
		await res.arrayBuffer();
	}
});

test('renders samples/tiny.json to mp4 with a thumbnail', async () => {
	const thumb = path.join(outDir, 'tiny.jpg');
	host.send(baseRequest('tiny', sample('tiny'), {thumbnailPath: thumb, thumbnailFrame: 5}));
	const res = await host.finished('tiny', 90000);
	assert.equal(res.type, 'done', JSON.stringify(res));
	assert.equal(res.outputPath, path.join(outDir, 'tiny.mp4'));
	assert.equal(res.thumbnailPath, thumb);
	assert.ok(statSync(res.outputPath).size > 1000);
	assert.ok(statSync(thumb).size > 500);
	assert.deepEqual(readFileSync(thumb).subarray(0, 2), Buffer.from([0xff, 0xd8]), 'thumbnail is a JPEG');
	assert.equal(res.probe.codec, 'h264');
	assert.equal(res.probe.width, 640);
	assert.equal(res.probe.height, 360);
	assert.equal(res.probe.fps, 30);
	assert.ok(Math.abs(res.probe.durationSec - 20 / 30) < 0.05, `duration ${res.probe.durationSec}`);
	assert.ok(res.probe.bitrate > 0);
	assert.equal(res.probe.sizeBytes, statSync(res.outputPath).size);
	assert.equal(typeof res.renderMs, 'number');
	assert.deepEqual(res.frames, {captured: 20, total: 20}, 'no hold: the title never settles in 8 frames');
	const progress = host.messages.filter((m) => m.type === 'progress' && m.id === 'tiny');
	assert.ok(progress.length >= 2, 'first and last progress');
	assert.equal(progress.at(-1).progress, 1);
	assert.equal(progress[0].totalFrames, 20);
	for (const p of progress) assert.ok(['rendering', 'encoding'].includes(p.stage));
});

test('two concurrent renders complete independently', async () => {
	host.send(baseRequest('conc-a', sample('tiny'), {codec: 'vp8', outputPath: path.join(outDir, 'conc-a.webm'), crf: 30, videoBitrate: '1M'}));
	host.send(baseRequest('conc-b', sample('tiny'), {concurrency: 1}));
	const [a, b] = await Promise.all([host.finished('conc-a', 90000), host.finished('conc-b', 90000)]);
	assert.equal(a.type, 'done', JSON.stringify(a));
	assert.equal(b.type, 'done', JSON.stringify(b));
	assert.equal(a.probe.codec, 'vp8');
	assert.deepEqual(a.frames, {captured: 20, total: 20});
	assert.equal(b.probe.codec, 'h264');
});

test('gif: every second frame, with a thumbnail rendered in a tab', async () => {
	const thumb = path.join(outDir, 'tiny-gif.jpg');
	host.send(baseRequest('tiny-gif', sample('tiny'), {codec: 'gif', outputPath: path.join(outDir, 'tiny.gif'), crf: null, thumbnailPath: thumb, thumbnailFrame: 5}));
	const res = await host.finished('tiny-gif', 90000);
	assert.equal(res.type, 'done', JSON.stringify(res));
	assert.equal(res.probe.codec, 'gif');
	assert.deepEqual(res.frames, {captured: 10, total: 10});
	assert.equal(res.thumbnailPath, thumb);
	assert.deepEqual(readFileSync(thumb).subarray(0, 2), Buffer.from([0xff, 0xd8]));
});

test('cancel mid-render yields CANCELLED and no file', async () => {
	const props = {
		projectId: 'cancel',
		scenes: [{type: 'gradient', durationInFrames: 900, props: {from: '#000', to: '#fff'}}],
	};
	const req = baseRequest('long', props);
	host.send(req);
	await host.waitFor((m) => m.type === 'progress' && m.id === 'long' && m.renderedFrames > 0, 60000);
	host.send({type: 'cancel', id: 'long'});
	const res = await host.finished('long', 30000);
	assert.equal(res.type, 'error', JSON.stringify(res));
	assert.equal(res.error.reason, 'CANCELLED');
	assert.equal(existsSync(req.outputPath), false);
});

/** Pids of the children of `ppid` whose command name and command line pass `match` (from /proc, Linux only). */
const childrenOf = (ppid, match) =>
	readdirSync('/proc')
		.filter((d) => /^\d+$/.test(d))
		.flatMap((pid) => {
			try {
				const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
				const [, comm, rest] = /^\d+ \((.*)\) (.*)$/s.exec(stat);
				const parent = Number(rest.split(' ')[1]);
				return parent === ppid && match(comm, readFileSync(`/proc/${pid}/cmdline`, 'utf8')) ? [Number(pid)] : [];
			} catch {
				return [];
			}
		});
/** Pids of the host's Chromium browsers. */
const chromiumChildren = (ppid) => childrenOf(ppid, (comm) => /chrom/i.test(comm));
/** Pids of a browser's renderer processes (its tabs). */
const renderersOf = (browserPid) => childrenOf(browserPid, (_, cmdline) => cmdline.includes('--type=renderer'));

/** Starts a 30-second render and returns its request once its first frame is captured. */
const longRenderStarted = async (id) => {
	const req = baseRequest(id, {projectId: id, scenes: [{type: 'gradient', durationInFrames: 900, props: {from: '#111', to: '#eee'}}]});
	host.send(req);
	await host.waitFor((m) => m.type === 'progress' && m.id === id && m.renderedFrames > 0, 60000);
	return req;
};

test('a browser crash fails the job as BROWSER_CRASHED and the next job gets a new browser', async () => {
	const req = await longRenderStarted('crash');
	const pids = chromiumChildren(host.child.pid);
	assert.ok(pids.length > 0, 'found the host browser');
	for (const pid of pids) process.kill(pid, 'SIGKILL');
	const res = await host.finished('crash', 30000);
	assert.equal(res.type, 'error', JSON.stringify(res));
	assert.equal(res.error.reason, 'BROWSER_CRASHED');
	assert.equal(res.error.retryable, true);
	assert.equal(existsSync(req.outputPath), false);
	host.send(baseRequest('after-crash', sample('tiny')));
	const next = await host.finished('after-crash', 90000);
	assert.equal(next.type, 'done', JSON.stringify(next));
});

test("a render's two tabs run in the host's two browsers; one browser dying fails it as BROWSER_CRASHED", async () => {
	const req = await longRenderStarted('spread');
	const browsers = chromiumChildren(host.child.pid);
	assert.equal(browsers.length, 2, 'RENDER_HOST_BROWSERS defaults to 2');
	for (const pid of browsers) assert.ok(renderersOf(pid).length >= 1, `browser ${pid} has a tab of the render`);
	process.kill(browsers[1], 'SIGKILL');
	const res = await host.finished('spread', 30000);
	assert.equal(res.type, 'error', JSON.stringify(res));
	assert.equal(res.error.reason, 'BROWSER_CRASHED');
	assert.equal(existsSync(req.outputPath), false);
	host.send(baseRequest('after-one-died', sample('tiny')));
	const next = await host.finished('after-one-died', 90000);
	assert.equal(next.type, 'done', JSON.stringify(next));
	assert.equal(chromiumChildren(host.child.pid).length, 2, 'the dead one was launched again');
});

test('invalid props are rejected with retryable=false', async () => {
	const req = baseRequest('bad-props', {
		projectId: 'bad',
		scenes: [{type: 'title', durationInFrames: 10, props: {text: 'x', unknownProp: true}}],
	});
	host.send(req);
	const res = await host.finished('bad-props', 60000);
	assert.equal(res.type, 'error', JSON.stringify(res));
	assert.equal(res.error.reason, 'INVALID_INPUT');
	assert.equal(res.error.retryable, false);
	assert.match(res.error.message, /unknownProp/);
	assert.equal(existsSync(req.outputPath), false);
});

test('unknown composition and bad request fields are INVALID_INPUT', async () => {
	host.send(baseRequest('bad-comp', sample('tiny'), {compositionId: 'Nope'}));
	host.send(baseRequest('bad-path', sample('tiny'), {outputPath: 'relative.mp4'}));
	host.send(baseRequest('bad-pixfmt', sample('tiny'), {pixelFormat: 'rgb24'}));
	host.send(baseRequest('bad-imgfmt', sample('tiny'), {imageFormat: 'webp'}));
	for (const id of ['bad-comp', 'bad-path', 'bad-pixfmt', 'bad-imgfmt']) {
		const res = await host.finished(id, 60000);
		assert.equal(res.type, 'error', JSON.stringify(res));
		assert.equal(res.error.reason, 'INVALID_INPUT');
		assert.equal(res.error.retryable, false);
	}
});

// Renders props twice, skipping static holds and capturing every frame; returns both.
const renderBothWays = async (name, props, extra = {}) => {
	const request = (id, skipStaticFrames) => baseRequest(id, props, {skipStaticFrames, ...extra(id)});
	host.send(request(`${name}-holds`, true));
	const held = await host.finished(`${name}-holds`, 120000);
	host.send(request(`${name}-every-frame`, false));
	const full = await host.finished(`${name}-every-frame`, 120000);
	assert.equal(held.type, 'done', JSON.stringify(held));
	assert.equal(full.type, 'done', JSON.stringify(full));
	const [heldFrames, fullFrames] = await Promise.all([frameHashes(held.outputPath), frameHashes(full.outputPath)]);
	assert.equal(fullFrames.length, full.frames.total);
	assert.deepEqual(heldFrames, fullFrames, 'every decoded frame is the same');
	return {held, full};
};

test('static holds: one capture per hold, the same frames and thumbnail as capturing every frame', async () => {
	const {held, full} = await renderBothWays('ref', sample('reference-150'), (id) => ({
		thumbnailPath: path.join(outDir, `${id}.jpg`),
		thumbnailFrame: 30, // inside the title's hold
	}));
	assert.deepEqual(held.frames, {captured: 97, total: 150});
	assert.deepEqual(full.frames, {captured: 150, total: 150});
	assert.equal(held.probe.durationSec, 5);
	assert.deepEqual(readFileSync(held.thumbnailPath), readFileSync(full.thumbnailPath), 'frame 29 captured = frame 30 captured');
	// Progress counts output frames, whatever Chromium captured.
	const progress = host.messages.filter((m) => m.type === 'progress' && m.id === 'ref-holds');
	assert.ok(progress.every((p) => p.totalFrames === 150 && p.renderedFrames <= 150 && p.encodedFrames <= 150));
	assert.deepEqual(progress.at(-1), {type: 'progress', id: 'ref-holds', stage: 'encoding', progress: 1, renderedFrames: 150, encodedFrames: 150, totalFrames: 150});
	const shares = progress.map((p) => p.progress);
	assert.deepEqual(shares, [...shares].sort((a, b) => a - b), 'progress never goes back');
	assert.ok(shares.filter((x) => x === 1).length === 1, 'progress reaches 1 once, at the end');
});

test('static holds: a title without subtitle, long text, custom colours, a hold at the start', async () => {
	const props = {
		projectId: 'holds-variants',
		scenes: [
			{type: 'color', durationInFrames: 12, props: {color: '#123456'}, transition: {type: 'wipe', durationInFrames: 4}},
			{type: 'title', durationInFrames: 40, props: {text: 'No subtitle', color: '#fde68a', background: '#7c2d12'}, transition: {type: 'slide', durationInFrames: 6}},
			{type: 'text', durationInFrames: 36, props: {text: 'Long text. '.repeat(20), background: 'rgb(20, 83, 45)'}, transition: {type: 'fade', durationInFrames: 5}},
			{type: 'title', durationInFrames: 30, props: {text: 'Last', subtitle: 'with subtitle'}},
		],
	};
	const {held, full} = await renderBothWays('variants', props, () => ({}));
	// color 0-7 (8 frames alone, 7 repeats), title 8+21=29..41, text 42+19=61..72,
	// title 73+29=102..102 (no repeat: 102 is the last frame).
	assert.deepEqual(full.frames, {captured: 103, total: 103});
	assert.deepEqual(held.frames, {captured: 103 - 7 - 12 - 11, total: 103});
});

test('static holds that meet (no transition between) keep the length', async () => {
	const props = {
		projectId: 'holds-meet',
		scenes: [
			{type: 'title', durationInFrames: 40, props: {text: 'Meet', subtitle: 'then a card'}},
			{type: 'color', durationInFrames: 20, props: {color: '#7c2d12'}},
		],
	};
	// Holds 29..39 and 40..59 meet: 60 frames once came out as 78, and with the length
	// capped the colour card still showed one frame early. 39 is captured too (30..38 and
	// 41..58 repeated), and the frames are those of capturing every frame.
	const {held} = await renderBothWays('meet', props, () => ({}));
	assert.deepEqual(held.frames, {captured: 60 - 9 - 18, total: 60});
	assert.equal(held.probe.durationSec, 2);
});

test('without parallel encoding every frame is captured and the thumbnail renders in a tab', async () => {
	// Partitioned rendering turns Remotion's parallel encoding off: no encoder to restore
	// holds in, so the host drops the plan before the first capture.
	const other = startHost({env: {REMOTION_PARTITIONED_RENDERING: 'true'}, stderr: 'pipe'});
	let stderr = '';
	other.child.stderr.on('data', (d) => (stderr += d));
	try {
		await other.waitFor((m) => m.type === 'ready', 90000);
		const thumb = path.join(outDir, 'no-parallel.jpg');
		other.send(baseRequest('no-parallel', sample('reference-150'), {thumbnailPath: thumb, thumbnailFrame: 30}));
		const res = await other.finished('no-parallel', 120000);
		assert.equal(res.type, 'done', JSON.stringify(res));
		assert.deepEqual(res.frames, {captured: 150, total: 150});
		assert.equal(res.probe.durationSec, 5);
		assert.equal(res.thumbnailPath, thumb);
		assert.ok(statSync(thumb).size > 500);
		assert.match(stderr, /could not restore static holds; capturing every frame/);
	} finally {
		other.send({type: 'shutdown'});
		await other.exited;
	}
});

test('stdout carries only protocol JSON lines, each a message of protocol/host-protocol.schema.json', () => {
	assert.ok(host.rawLines.length > 10);
	for (const line of host.rawLines) {
		const msg = JSON.parse(line);
		assert.equal(typeof msg.type, 'string');
		assert.ok(isHostMessage(msg), line);
	}
});

test('stdin EOF shuts the host down with exit 0', async () => {
	host.child.stdin.end();
	const res = await host.exited;
	assert.equal(res.code, 0);
});
