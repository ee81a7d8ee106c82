// Benchmark: cold/warm host start and the 1080p QUALITY_HIGH render of
// samples/reference-150.json through the host.
//   node scripts/bench.mjs [--cold] [--runs=N] [--every-frame] [--preset=veryfast]
// --cold uses a fresh bundle cache (and drops webpack's cache) to time a cold bundle.
// --every-frame captures every frame (skipStaticFrames: false). Each render prints the
// host's timings and the CPU seconds of the host's process tree (Node, Chromium, ffmpeg),
// per captured frame: a figure that holds on a busy machine, unlike wall time.
import {createHash} from 'node:crypto';
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

// Chromium's processes by their --type (browser, gpu-process, renderer, utility), the rest by name.
const programName = (pid, comm) => {
	try {
		const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
		if (!/chrom/i.test(comm) && !/chrom|--type=/i.test(cmdline)) return comm;
		const type = /--type=([\w-]+)/.exec(cmdline);
		return `chromium:${type ? type[1] : 'browser'}`;
	} catch {
		return comm;
	}
};

// CPU seconds (user + system) of a process and its descendants by program name, sampled
// every SAMPLE_MS: each process's own CPU at the last sample it was seen in, so that the
// tabs' renderers (which end with their job) count as renderers, not as their parent's.
const TICKS = 100;
const SAMPLE_MS = 200;
const readTree = (root, seen) => {
	const children = new Map();
	const own = new Map();
	for (const entry of readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
			const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
			if (!children.has(Number(f[1]))) children.set(Number(f[1]), []);
			children.get(Number(f[1])).push(Number(entry));
			own.set(Number(entry), {stat, cpu: (Number(f[11]) + Number(f[12])) / TICKS});
		} catch {
			// the process ended meanwhile
		}
	}
	const stack = [root];
	while (stack.length) {
		const pid = stack.pop();
		const p = own.get(pid);
		if (!p) continue;
		const known = seen.get(pid);
		const name = known?.name ?? programName(pid, p.stat.slice(p.stat.indexOf('(') + 1, p.stat.lastIndexOf(')')));
		seen.set(pid, {name, first: known?.first ?? 0, last: p.cpu}); // new mid-render: from 0
		stack.push(...(children.get(pid) ?? []));
	}
};
const treeSampler = (root) => {
	const seen = new Map();
	readTree(root, seen);
	for (const v of seen.values()) v.first = v.last; // CPU before the render does not count
	const timer = setInterval(() => readTree(root, seen), SAMPLE_MS);
	return () => {
		clearInterval(timer);
		readTree(root, seen);
		let total = 0;
		const byName = {};
		for (const {name, first, last} of seen.values()) {
			total += last - first;
			byName[name] = Number(((byName[name] ?? 0) + last - first).toFixed(2));
		}
		return {total, byName};
	};
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
	const stopSampling = treeSampler(second.host.child.pid);
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
	const {total: cpu, byName} = stopSampling();
	if (res.type !== 'done') throw new Error(JSON.stringify(res));
	const captured = res.frames?.captured ?? 150;
	console.log(
		`render #${i} reference-150 1080p crf18 jq90 c2 ${preset}${everyFrame ? ' every frame' : ''}: renderMs=${res.renderMs} wall=${wall}` +
			` cpu=${cpu.toFixed(2)} s (${((cpu / captured) * 1000).toFixed(0)} ms per captured frame, ${captured}/${res.frames?.total}; by program ${JSON.stringify(byName)})` +
			` timings=${JSON.stringify(res.timings)} probe=${JSON.stringify(res.probe)}` +
			` sha256=${createHash('sha256').update(readFileSync(res.outputPath)).digest('hex').slice(0, 16)}`,
	);
}
second.host.send({type: 'shutdown'});
await second.host.exited;
rmSync(outDir, {recursive: true, force: true});
if (cacheDir) rmSync(cacheDir, {recursive: true, force: true});
