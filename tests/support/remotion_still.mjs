// The still renderer of the fake Lambda function (tests/support/fake_lambda_still.py): one
// frame of a composition rendered by the real Remotion renderer and Chromium, as
// renderStillOnLambda does inside the function, from the bundle the render host uses.
// stdin: JSON {composition, inputProps, frame, width, height, jpegQuality, output}.
import {createRequire} from 'node:module';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

const REMOTION = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'remotion');
const BROWSER = process.env.REMOTION_BROWSER_EXECUTABLE || '/usr/bin/chromium-headless-shell';
const CACHE = process.env.RENDER_BUNDLE_CACHE || path.join(REMOTION, '.bundle-cache');
const log = (...args) => console.error('[fake-lambda-still]', ...args);

const load = async () => {
	const require = createRequire(path.join(REMOTION, 'package.json'));
	const renderer = await import(pathToFileURL(require.resolve('@remotion/renderer')).href);
	const cache = await import(pathToFileURL(path.join(REMOTION, 'lib', 'bundle-cache.mjs')).href);
	return {renderer, ensureBundle: cache.ensureBundle};
};

const readStdin = async () => {
	const chunks = [];
	for await (const chunk of process.stdin) chunks.push(chunk);
	return JSON.parse(Buffer.concat(chunks).toString('utf8'));
};

const main = async () => {
	const req = await readStdin();
	const {renderer, ensureBundle} = await load();
	const {serveUrl} = await ensureBundle({rootDir: REMOTION, cacheDir: CACHE, log});
	const common = {serveUrl, inputProps: req.inputProps, browserExecutable: BROWSER, logLevel: 'warn'};
	const selected = await renderer.selectComposition({...common, id: req.composition});
	const composition = {...selected, width: req.width ?? selected.width, height: req.height ?? selected.height};
	await renderer.renderStill({
		...common,
		composition,
		frame: req.frame,
		output: req.output,
		imageFormat: 'jpeg',
		jpegQuality: req.jpegQuality ?? 80,
		overwrite: true,
	});
};

main().catch((err) => {
	log(err?.stack ?? String(err));
	process.exit(1);
});
