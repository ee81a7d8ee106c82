// Copies the font files of src/fonts.json from Debian's packages (make setup installs them)
// into a Remotion public dir, so the bundle (SSR) and the Lambda site carry them; they are
// not in git. Up-to-date copies (same size and mtime as their source) are left alone, so
// this costs a few stat calls when nothing changed.
import {randomBytes} from 'node:crypto';
import {readFileSync} from 'node:fs';
import {copyFile, mkdir, rename, rm, stat, utimes} from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FONTS_MANIFEST = path.join(ROOT, 'src', 'fonts.json');
/** Sub-directory of the public dir holding the fonts (FONTS_PUBLIC_DIR in src/fonts.ts). */
export const FONTS_SUBDIR = 'fonts';

/** Every font file of the manifest: {file, source, package, family}. */
export const fontFiles = (manifestPath = FONTS_MANIFEST) => {
	const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
	return manifest.families.flatMap((family) =>
		family.faces.map((face) => ({file: face.file, source: face.source, package: family.package, family: family.family})),
	);
};

/** The Debian packages the fonts come from, sorted. */
export const fontPackages = (manifestPath = FONTS_MANIFEST) => [...new Set(fontFiles(manifestPath).map((f) => f.package))].sort();

const statOrNull = (p) => stat(p).catch(() => null);

/**
 * Makes `<publicDir>/fonts/<file>` a copy of every manifest font. Sources are the Debian
 * paths of the manifest, or `<sourceDir>/<file>` when sourceDir (RENDER_FONTS_DIR) is set.
 * A copy whose source is gone is kept. Throws, naming the files, packages and the fix,
 * when a font is neither staged nor installed. Returns {files, copied}. With checkOnly,
 * copies nothing (`copied` counts what would be copied).
 */
export const stageFonts = async ({
	publicDir,
	sourceDir = process.env.RENDER_FONTS_DIR || null,
	log = () => {},
	manifestPath = FONTS_MANIFEST,
	checkOnly = false,
}) => {
	const files = fontFiles(manifestPath);
	const destDir = path.join(publicDir, FONTS_SUBDIR);
	if (!checkOnly) await mkdir(destDir, {recursive: true});
	const missing = [];
	let copied = 0;
	for (const font of files) {
		const source = sourceDir ? path.join(sourceDir, font.file) : font.source;
		const dest = path.join(destDir, font.file);
		const [src, have] = await Promise.all([statOrNull(source), statOrNull(dest)]);
		if (!src) {
			if (have?.size > 0) continue;
			missing.push(`${font.file} (${source}, Debian package ${font.package})`);
			continue;
		}
		// utimes keeps the mtime to within a millisecond (it goes through a float of seconds).
		if (have && have.size === src.size && Math.abs(have.mtimeMs - src.mtimeMs) < 1) continue;
		copied++;
		if (checkOnly) continue;
		// Copy beside, then rename: hosts starting together may stage at the same time.
		const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
		try {
			await copyFile(source, tmp);
			await utimes(tmp, src.atime, src.mtime);
			await rename(tmp, dest);
		} finally {
			await rm(tmp, {force: true});
		}
	}
	if (missing.length) {
		const packages = fontPackages(manifestPath).join(' ');
		throw new Error(
			`FONTS_MISSING: ${missing.length} font file(s) of remotion/src/fonts.json are not installed: ${missing.join('; ')}. ` +
				`Text in those scripts would render as empty boxes, so nothing is rendered. Install them with ` +
				`'make setup' (or 'apt-get install ${packages}'), or set RENDER_FONTS_DIR to a directory holding these files.`,
		);
	}
	if (copied && !checkOnly) log(`fonts: copied ${copied} of ${files.length} font file(s) into ${destDir}`);
	return {files: files.map((f) => path.join(destDir, f.file)), copied};
};
