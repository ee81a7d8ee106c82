// Tiny static file server for prefetched assets: GET/HEAD /assets/<file name>
// from one flat directory, with single-range Range support (videos are seeked).
import {createReadStream} from 'node:fs';
import {realpath, stat} from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

const MIME = {
	'.mp4': 'video/mp4',
	'.m4v': 'video/mp4',
	'.mov': 'video/quicktime',
	'.webm': 'video/webm',
	'.mkv': 'video/x-matroska',
	'.png': 'image/png',
	'.jpg': 'image/jpeg',
	'.jpeg': 'image/jpeg',
	'.gif': 'image/gif',
	'.webp': 'image/webp',
	'.avif': 'image/avif',
	'.svg': 'image/svg+xml',
	'.mp3': 'audio/mpeg',
	'.m4a': 'audio/mp4',
	'.aac': 'audio/aac',
	'.wav': 'audio/wav',
	'.ogg': 'audio/ogg',
	'.opus': 'audio/ogg',
	'.json': 'application/json',
};

const PREFIX = '/assets/';

/** Returns [start, end] (inclusive), null for "serve whole file", or 'unsatisfiable'. */
export const parseRange = (header, size) => {
	if (!header) return null;
	const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
	if (!m) return null; // multi-range or garbage: ignore, serve 200
	let start;
	let end;
	if (m[1] === '' && m[2] === '') return null;
	if (m[1] === '') {
		const suffix = Number(m[2]);
		if (suffix === 0) return 'unsatisfiable';
		start = Math.max(0, size - suffix);
		end = size - 1;
	} else {
		start = Number(m[1]);
		end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
	}
	if (start >= size || start > end) return 'unsatisfiable';
	return [start, end];
};

const send = (res, status, body = '') => {
	res.writeHead(status, {'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body)});
	res.end(body);
};

/** Resolves a request path to a file inside rootDir, or null. No traversal, no dotfiles, no symlink escape. */
const resolveAsset = async (rootDir, urlPath) => {
	if (!rootDir || !urlPath.startsWith(PREFIX)) return null;
	let name;
	try {
		name = decodeURIComponent(urlPath.slice(PREFIX.length));
	} catch {
		return null;
	}
	if (!name || name.startsWith('.') || /[/\\\0]/.test(name)) return null;
	const realRoot = await realpath(rootDir);
	let file;
	try {
		file = await realpath(path.join(realRoot, name));
	} catch {
		return null;
	}
	if (path.dirname(file) !== realRoot) return null;
	return file;
};

// Answers one GET or HEAD of a file under rootDir, with Range support (video seeks).
const serveAsset = async (rootDir, log, req, res) => {
	if (req.method !== 'GET' && req.method !== 'HEAD') {
		res.setHeader('Allow', 'GET, HEAD');
		return send(res, 405, 'method not allowed');
	}
	const urlPath = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
	const file = await resolveAsset(rootDir, urlPath);
	if (!file) return send(res, 404, 'not found');
	const st = await stat(file);
	if (!st.isFile()) return send(res, 404, 'not found');
	const headers = {
		'Content-Type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
		'Accept-Ranges': 'bytes',
		'Access-Control-Allow-Origin': '*',
		'Cache-Control': 'no-cache',
		'Last-Modified': st.mtime.toUTCString(),
	};
	const range = parseRange(req.headers.range, st.size);
	if (range === 'unsatisfiable') {
		res.writeHead(416, {...headers, 'Content-Range': `bytes */${st.size}`, 'Content-Length': 0});
		return res.end();
	}
	const [start, end] = range ?? [0, st.size - 1];
	const length = st.size === 0 ? 0 : end - start + 1;
	res.writeHead(range ? 206 : 200, {
		...headers,
		'Content-Length': length,
		...(range ? {'Content-Range': `bytes ${start}-${end}/${st.size}`} : {}),
	});
	if (req.method === 'HEAD' || length === 0) return res.end();
	const stream = createReadStream(file, {start, end});
	stream.on('error', (err) => {
		log(`asset server: read error ${err.message}`);
		res.destroy(err);
	});
	res.on('close', () => stream.destroy());
	stream.pipe(res);
};

/**
 * An HTTP server on 127.0.0.1 at a free port, answering with `handler(req, res)`; a
 * handler that throws is logged as `name` and answered 500. Returns {server, port, close}.
 */
export const listenLocally = async (name, log, handler) => {
	const server = http.createServer(async (req, res) => {
		try {
			await handler(req, res);
		} catch (err) {
			log(`${name}: ${err?.message ?? err}`);
			if (!res.headersSent) send(res, 500, 'internal error');
			else res.destroy();
		}
	});
	server.keepAliveTimeout = 5000;
	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', resolve);
	});
	return {
		server,
		port: server.address().port,
		close: () =>
			new Promise((resolve) => {
				server.close(() => resolve());
				server.closeAllConnections?.();
			}),
	};
};

export const startAssetServer = async ({rootDir, log}) => {
	const {server, port, close} = await listenLocally('asset server', log, (req, res) => serveAsset(rootDir, log, req, res));
	return {server, baseUrl: `http://127.0.0.1:${port}${PREFIX}`, close};
};
