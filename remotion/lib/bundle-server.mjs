// Serves the bundle directories over HTTP with long-lived caching, for Chromium.
//
// Remotion's own server for a local bundle answers `Cache-Control: no-store`, so every tab
// (selectComposition's, and one per concurrency slot of each render) fetched and compiled
// the bundle's JavaScript anew. A bundle directory never changes once written (its name is
// the hash of its sources), so here it is served as immutable under /<hash>/: Chromium
// keeps it in its HTTP cache and reuses V8's compiled code for it from tab to tab.
import {createReadStream} from 'node:fs';
import {realpath, stat} from 'node:fs/promises';
import path from 'node:path';
import {listenLocally} from './asset-server.mjs';

const MIME = {
	'.html': 'text/html; charset=utf-8',
	'.js': 'text/javascript; charset=utf-8',
	'.map': 'application/json',
	'.json': 'application/json',
	'.css': 'text/css; charset=utf-8',
	'.ico': 'image/x-icon',
	'.png': 'image/png',
	'.jpg': 'image/jpeg',
	'.svg': 'image/svg+xml',
	'.ttf': 'font/ttf',
	'.otf': 'font/otf',
	'.woff': 'font/woff',
	'.woff2': 'font/woff2',
};

const inside = (root, file) => file === root || file.startsWith(root + path.sep);

/**
 * The file a request path names inside the bundle directory, or null. The directory's
 * `public` is a symlink to the sources' public dir: files under either root are served.
 */
export const resolveBundleFile = async (bundleDir, relative) => {
	const roots = [await realpath(bundleDir)];
	try {
		roots.push(await realpath(path.join(bundleDir, 'public')));
	} catch {
		// no public dir
	}
	const parts = relative.split('/').filter(Boolean);
	if (parts.length === 0) parts.push('index.html');
	if (parts.some((p) => p === '..' || p.startsWith('.') || /[\\\0]/.test(p))) return null;
	let file;
	try {
		file = await realpath(path.join(roots[0], ...parts));
	} catch {
		return null;
	}
	return roots.some((root) => inside(root, file)) ? file : null;
};

const serve = async (dirs, req, res) => {
	if (req.method !== 'GET' && req.method !== 'HEAD') {
		res.writeHead(405, {Allow: 'GET, HEAD'});
		return res.end();
	}
	const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
	const [, hash, ...rest] = pathname.split('/');
	const dir = dirs.get(hash);
	const file = dir ? await resolveBundleFile(dir, rest.join('/')) : null;
	const st = file ? await stat(file) : null;
	if (!st?.isFile()) {
		res.writeHead(404, {'Content-Type': 'text/plain'});
		return res.end('not found');
	}
	res.writeHead(200, {
		'Content-Type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
		'Content-Length': st.size,
		'Cache-Control': 'public, max-age=31536000, immutable',
		'Access-Control-Allow-Origin': '*',
	});
	if (req.method === 'HEAD') return res.end();
	createReadStream(file).on('error', (err) => res.destroy(err)).pipe(res);
};

/**
 * Starts the server; `add(hash, dir)` publishes a bundle directory and returns its URL
 * (a serveUrl for Remotion).
 */
export const startBundleServer = async ({log}) => {
	const dirs = new Map();
	const {port, close} = await listenLocally('bundle server', log, (req, res) => serve(dirs, req, res));
	return {
		add: (hash, dir) => {
			dirs.set(hash, dir);
			return `http://127.0.0.1:${port}/${hash}/`;
		},
		close,
	};
};
