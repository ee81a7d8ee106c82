// lib/bundle-server.mjs: the bundle over HTTP, cacheable, and nothing outside it.
import assert from 'node:assert/strict';
import {mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';
import {startBundleServer} from '../lib/bundle-server.mjs';

const root = mkdtempSync(path.join(tmpdir(), 'bundle-server-test-'));
const bundleDir = path.join(root, 'abc123');
const publicDir = path.join(root, 'public-sources');
let server;
let url;

before(async () => {
	mkdirSync(bundleDir);
	mkdirSync(publicDir);
	writeFileSync(path.join(bundleDir, 'index.html'), '<html></html>');
	writeFileSync(path.join(bundleDir, 'bundle.js'), 'console.log(1)');
	writeFileSync(path.join(publicDir, 'font.ttf'), 'font');
	writeFileSync(path.join(root, 'secret.txt'), 'secret');
	symlinkSync(publicDir, path.join(bundleDir, 'public'));
	symlinkSync(path.join(root, 'secret.txt'), path.join(bundleDir, 'escape.txt'));
	server = await startBundleServer({log: () => {}});
	url = server.add('abc123', bundleDir);
});

after(async () => {
	await server.close();
	rmSync(root, {recursive: true, force: true});
});

test('serves the bundle, its index and its public dir, cacheable for ever', async () => {
	assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/abc123\/$/);
	const index = await fetch(url);
	assert.equal(index.status, 200);
	assert.equal(await index.text(), '<html></html>');
	assert.match(index.headers.get('cache-control'), /immutable/);
	const script = await fetch(`${url}bundle.js`);
	assert.equal(script.status, 200);
	assert.match(script.headers.get('content-type'), /javascript/);
	assert.equal(await script.text(), 'console.log(1)');
	const font = await fetch(`${url}public/font.ttf`);
	assert.equal(await font.text(), 'font');
	const head = await fetch(`${url}bundle.js`, {method: 'HEAD'});
	assert.equal(head.headers.get('content-length'), '14');
});

test('nothing outside the bundle: traversal, symlinks out, unknown hashes, writes', async () => {
	const base = url.replace(/abc123\/$/, '');
	for (const p of ['abc123/%2e%2e/secret.txt', 'abc123/escape.txt', 'abc123/missing.js', 'other/index.html', 'abc123/public/..%2f..%2fsecret.txt']) {
		const res = await fetch(base + p);
		assert.equal(res.status, 404, p);
	}
	assert.equal((await fetch(`${url}bundle.js`, {method: 'POST', body: 'x'})).status, 405);
});
