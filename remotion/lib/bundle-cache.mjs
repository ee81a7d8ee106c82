// Bundles the compositions once per source hash into
// <cacheDir>/<hash>/ (temp dir + atomic rename), shared by all host processes.
// The bundle's public/ is a symlink to remotion/public, where the fonts are copied
// (lib/fonts.mjs): tens of MB that no bundle copies again.
import {createHash, randomBytes} from 'node:crypto';
import {existsSync} from 'node:fs';
import {mkdir, readFile, readdir, rename, rm, stat, utimes} from 'node:fs/promises';
import path from 'node:path';
import {FONTS_SUBDIR, stageFonts} from './fonts.mjs';

/** Bumped when the bundle options below change in a way the sources do not show. */
export const BUNDLE_CONFIG = {version: 2, enableCaching: true, entryPoint: 'src/index.ts', symlinkPublicDir: true};
const KEEP_BUNDLES = 3;
const STALE_TMP_MS = 60 * 60 * 1000;
const TMP_PREFIX = '.tmp-';

const listFiles = async (dir) => {
	if (!existsSync(dir)) return [];
	const out = [];
	for (const entry of await readdir(dir, {withFileTypes: true})) {
		const p = path.join(dir, entry.name);
		if (entry.isDirectory()) out.push(...(await listFiles(p)));
		else if (entry.isFile()) out.push(p);
	}
	return out;
};

/** Hash of everything that goes into the bundle (the staged fonts by size and mtime). */
export const computeBundleHash = async (rootDir) => {
	const fontsDir = path.join(rootDir, 'public', FONTS_SUBDIR) + path.sep;
	const files = [
		...(await listFiles(path.join(rootDir, 'src'))),
		...(await listFiles(path.join(rootDir, 'public'))),
		...['package.json', 'package-lock.json', 'tsconfig.json', 'remotion.config.ts', 'remotion.config.js']
			.map((f) => path.join(rootDir, f))
			.filter((f) => existsSync(f)),
	].sort();
	const h = createHash('sha256');
	h.update(JSON.stringify(BUNDLE_CONFIG));
	for (const f of files) {
		// A font copy another host is staging right now (lib/fonts.mjs renames it into place).
		if (f.startsWith(fontsDir) && path.basename(f).includes('.tmp-')) continue;
		h.update(path.relative(rootDir, f).split(path.sep).join('/'));
		h.update('\0');
		if (f.startsWith(fontsDir)) {
			const st = await stat(f);
			h.update(`${st.size}:${Math.trunc(st.mtimeMs)}`);
		} else {
			h.update(await readFile(f));
		}
		h.update('\0');
	}
	return h.digest('hex').slice(0, 16);
};

const pidAlive = (pid) => {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return err.code === 'EPERM';
	}
};

const cleanup = async (cacheDir, keepHash, log) => {
	const entries = await readdir(cacheDir, {withFileTypes: true});
	const bundles = [];
	for (const e of entries) {
		if (!e.isDirectory()) continue;
		const p = path.join(cacheDir, e.name);
		const st = await stat(p).catch(() => null);
		if (!st) continue;
		if (e.name.startsWith(TMP_PREFIX)) {
			// .tmp-<hash>-<pid>-<rand>
			const pid = Number(e.name.split('-')[2]);
			if (!pidAlive(pid) || Date.now() - st.mtimeMs > STALE_TMP_MS) {
				log(`bundle cache: removing stale temp dir ${e.name}`);
				await rm(p, {recursive: true, force: true});
			}
		} else if (/^[0-9a-f]{16}$/.test(e.name)) {
			bundles.push({name: e.name, p, mtime: st.mtimeMs});
		}
	}
	bundles.sort((a, b) => b.mtime - a.mtime);
	for (const b of bundles.slice(KEEP_BUNDLES)) {
		if (b.name === keepHash) continue;
		log(`bundle cache: removing old bundle ${b.name}`);
		await rm(b.p, {recursive: true, force: true});
	}
};

/**
 * Returns {serveUrl, hash, cached, bundleMs}. Throws if bundling fails.
 */
export const ensureBundle = async ({rootDir, cacheDir, log}) => {
	const started = performance.now();
	await mkdir(cacheDir, {recursive: true});
	await stageFonts({publicDir: path.join(rootDir, 'public'), log});
	const hash = await computeBundleHash(rootDir);
	const finalDir = path.join(cacheDir, hash);
	let cached = existsSync(path.join(finalDir, 'index.html'));
	if (!cached) {
		const {bundle} = await import('@remotion/bundler');
		const tmpDir = path.join(cacheDir, `${TMP_PREFIX}${hash}-${process.pid}-${randomBytes(4).toString('hex')}`);
		let lastLogged = -1;
		try {
			await bundle({
				entryPoint: path.join(rootDir, BUNDLE_CONFIG.entryPoint),
				outDir: tmpDir,
				enableCaching: BUNDLE_CONFIG.enableCaching,
				symlinkPublicDir: BUNDLE_CONFIG.symlinkPublicDir,
				webpackOverride: (c) => c,
				onProgress: (p) => {
					const step = Math.floor(p / 25);
					if (step !== lastLogged) {
						lastLogged = step;
						log(`bundling ${p}%`);
					}
				},
			});
			try {
				await rename(tmpDir, finalDir);
			} catch (err) {
				// Another process finished the same hash first: use theirs.
				if (!existsSync(path.join(finalDir, 'index.html'))) throw err;
				log(`bundle cache: ${hash} was created concurrently, using it`);
				await rm(tmpDir, {recursive: true, force: true});
				cached = true;
			}
		} catch (err) {
			await rm(tmpDir, {recursive: true, force: true}).catch(() => {});
			throw err;
		}
	} else {
		const now = new Date();
		await utimes(finalDir, now, now).catch(() => {});
	}
	await cleanup(cacheDir, hash, log).catch((err) => log(`bundle cache cleanup failed: ${err.message}`));
	return {serveUrl: finalDir, hash, cached, bundleMs: Math.round(performance.now() - started)};
};
