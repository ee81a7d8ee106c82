// The fonts of every text scene, loaded as files that travel with the bundle (SSR) and the
// site (Lambda, whose Chromium has only its own fonts), so both engines draw the same
// glyphs. The faces are declared once per page with unicode-range, so a page downloads
// only the faces its text needs (no 20 MB CJK font for a Latin title), and the
// composition holds the render (delayRender) until those faces are loaded.
import {staticFile} from 'remotion';
import manifest from './fonts.json';

type Face = {weight: string; file: string};
type Family = {family: string; unicodeRange: string | null; faces: Face[]};

const families: Family[] = manifest.families;

/** Where the font files are in the bundle's public dir (lib/fonts.mjs copies them there). */
export const FONTS_PUBLIC_DIR = 'fonts';

/** The one font-family stack of every text scene. */
export const FONT_STACK = [...families.map((f) => `'${f.family}'`), 'sans-serif'].join(', ');

/** Text drawn at one font weight. */
export type TextRun = {weight: number; text: string};

let declared = false;

/** Adds the faces to the page's FontFaceSet (once per page); nothing is downloaded yet. */
const declareFaces = (): void => {
	if (declared) return;
	declared = true;
	for (const family of families) {
		for (const face of family.faces) {
			const url = staticFile(`${FONTS_PUBLIC_DIR}/${face.file}`);
			const fontFace = new FontFace(family.family, `url("${url}")`, {
				weight: face.weight,
				display: 'block',
				...(family.unicodeRange ? {unicodeRange: family.unicodeRange} : {}),
			});
			document.fonts.add(fontFace);
		}
	}
};

const loads = new Map<string, Promise<void>>();

/**
 * Loads the faces that `runs` need (once per page and text; later calls share the
 * promise). Rejects, naming the faces, when a font file could not be loaded, so a render
 * fails instead of drawing empty boxes.
 */
export const loadFontsFor = (runs: TextRun[]): Promise<void> => {
	declareFaces();
	const byWeight = new Map<number, string>();
	for (const {weight, text} of runs) {
		if (text) byWeight.set(weight, (byWeight.get(weight) ?? '') + text);
	}
	const pending = [...byWeight].map(([weight, text]) => {
		const key = `${weight}\u0000${text}`;
		let load = loads.get(key);
		if (!load) {
			load = document.fonts.load(`${weight} 16px ${FONT_STACK}`, text).then(() => undefined);
			loads.set(key, load);
		}
		return load;
	});
	return Promise.all(pending).then(
		() => undefined,
		(err: unknown) => {
			const failed: string[] = [];
			document.fonts.forEach((face) => {
				if (face.status === 'error') failed.push(`${face.family} ${face.weight}`);
			});
			throw new Error(
				`FONTS_UNAVAILABLE: could not load ${failed.join(', ') || 'the fonts'} from the bundle's ` +
					`public/${FONTS_PUBLIC_DIR}/ (${String(err)}); the bundle or site was built without its ` +
					'fonts (see remotion/lib/fonts.mjs)',
			);
		},
	);
};
