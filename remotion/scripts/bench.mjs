// Benchmark: cold/warm host start and the 1080p QUALITY_HIGH render of
// samples/reference-150.json through the host.
//   node scripts/bench.mjs [--cold] [--runs=N]
// --cold uses a fresh bundle cache (and drops webpack's cache) to time a cold bundle.
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {REMOTION_DIR, startHost} from '../test/host-client.mjs';

const cold = process.argv.includes('--cold');
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
		concurrency: 2,
		timeoutMs: 600000,
		thumbnailPath: path.join(outDir, `${id}.jpg`),
		thumbnailFrame: 0,
	});
	const res = await second.host.finished(id, 600000);
	const wall = Math.round(performance.now() - t);
	if (res.type !== 'done') throw new Error(JSON.stringify(res));
	console.log(`render #${i} reference-150 1080p crf18 jq90 c2: renderMs=${res.renderMs} wall=${wall} probe=${JSON.stringify(res.probe)}`);
}
second.host.send({type: 'shutdown'});
await second.host.exited;
rmSync(outDir, {recursive: true, force: true});
if (cacheDir) rmSync(cacheDir, {recursive: true, force: true});
