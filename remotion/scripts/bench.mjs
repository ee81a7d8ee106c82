// Benchmark: cold/warm host start and the 1080p QUALITY_HIGH render of
// samples/reference-150.json through the host.
//   node scripts/bench.mjs [--cold] [--runs=N] [--every-frame] [--preset=veryfast]
// --cold uses a fresh bundle cache (and drops webpack's cache) to time a cold bundle.
// --every-frame captures every frame (skipStaticFrames: false). Each render prints the
// host's timings and the CPU seconds of the host's process tree (Node, Chromium, ffmpeg),
// per captured frame: a figure that holds on a busy machine, unlike wall time.
import {mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {REMOTION_DIR, startHost} from '../test/host-client.mjs';

const cold = process.argv.includes('--cold');
const everyFrame = process.argv.includes('--every-frame');
const preset = process.argv.find((a) => a.startsWith('--preset='))?.split('=')[1] ?? 'veryfast';
const runs = Number(process.argv.find((a) => a.startsWith('--runs='))?.split('=')[1] ?? 2);
const env = {};
let cacheDir = null;
if (cold) {
	cacheDir = mkdtempSync(path.join(tmpdir(), 'bench-bundle-cache-'));
	env.RENDER_BUNDLE_CACHE = cacheDir;
	rmSync(path.join(REMOTION_DIR, 'node_modules/.cache'), {recursive: true, force: true});
}
const outDir = mkdtempSync(path.join(tmpdir(), 'bench-out-'));
const props = JSON.parse(readFileSync(path.join(REMOTION_DIR, 'samples/reference-150.json'), 'utf8'));

// CPU seconds (user + system, with reaped children) of a process and its live descendants,
// in all and by program name (a program's reaped children count as its own).
const TICKS = 100;
const treeCpu = (root) => {
	const children = new Map();
	const cpu = new Map();
	const names = new Map();
	for (const entry of readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
			const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
			const ppid = Number(f[1]);
			if (!children.has(ppid)) children.set(ppid, []);
			children.get(ppid).push(Number(entry));
			cpu.set(Number(entry), (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS);
			names.set(Number(entry), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
		} catch {
			// the process ended meanwhile
		}
	}
	let total = 0;
	const byName = {};
	const stack = [root];
	while (stack.length) {
		const pid = stack.pop();
		total += cpu.get(pid) ?? 0;
		const name = names.get(pid) ?? '?';
		byName[name] = (byName[name] ?? 0) + (cpu.get(pid) ?? 0);
		stack.push(...(children.get(pid) ?? []));
	}
	return {total, byName};
};
const cpuDelta = (after, before) => {
	const byName = {};
	for (const [name, value] of Object.entries(after.byName)) {
		const d = value - (before.byName[name] ?? 0);
		if (d >= 0.05) byName[name] = Number(d.toFixed(2));
	}
	return {total: after.total - before.total, byName};
};

const startTimed = async () => {
	const t = performance.now();
	const host = startHost({env, stderr: 'ignore'});
	const ready = await host.waitFor((m) => m.type === 'ready' || m.type === 'fatal', 120000);
	if (ready.type !== 'ready') throw new Error(JSON.stringify(ready));
	return {host, ready, wallMs: Math.round(performance.now() - t)};
};

const first = await startTimed();
console.log(`start #1: ready after ${first.wallMs} ms (bundleMs=${first.ready.bundleMs}, cached=${first.ready.cached})`);
first.host.send({type: 'shutdown'});
await first.host.exited;
const second = await startTimed();
console.log(`start #2: ready after ${second.wallMs} ms (bundleMs=${second.ready.bundleMs}, cached=${second.ready.cached})`);

for (let i = 1; i <= runs; i++) {
	const id = `ref-${i}`;
	const t = performance.now();
	const cpuBefore = treeCpu(second.host.child.pid);
	second.host.send({
		type: 'render',
		id,
		compositionId: 'MainComposition',
		inputProps: props,
		codec: 'h264',
		outputPath: path.join(outDir, `${id}.mp4`),
		width: 1920,
		height: 1080,
		crf: 18,
		jpegQuality: 90,
		videoBitrate: null,
		imageFormat: 'jpeg',
		pixelFormat: 'yuv420p',
		x264Preset: preset,
		skipStaticFrames: !everyFrame,
		concurrency: 2,
		timeoutMs: 600000,
		thumbnailPath: path.join(outDir, `${id}.jpg`),
		thumbnailFrame: 0,
	});
	const res = await second.host.finished(id, 600000);
	const wall = Math.round(performance.now() - t);
	const {total: cpu, byName} = cpuDelta(treeCpu(second.host.child.pid), cpuBefore);
	if (res.type !== 'done') throw new Error(JSON.stringify(res));
	const captured = res.frames?.captured ?? 150;
	console.log(
		`render #${i} reference-150 1080p crf18 jq90 c2 ${preset}${everyFrame ? ' every frame' : ''}: renderMs=${res.renderMs} wall=${wall}` +
			` cpu=${cpu.toFixed(2)} s (${((cpu / captured) * 1000).toFixed(0)} ms per captured frame, ${captured}/${res.frames?.total}; by program ${JSON.stringify(byName)})` +
			` timings=${JSON.stringify(res.timings)} probe=${JSON.stringify(res.probe)}`,
	);
}
second.host.send({type: 'shutdown'});
await second.host.exited;
rmSync(outDir, {recursive: true, force: true});
if (cacheDir) rmSync(cacheDir, {recursive: true, force: true});
