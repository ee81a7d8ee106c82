// Copies the fonts of src/fonts.json into a Remotion public dir (default: remotion/public),
// from Debian's packages or RENDER_FONTS_DIR. Used by `make setup`, the worker image and
// deploy/lambda/deploy.sh (the site carries public/). Exit 1 with the fix when fonts are missing.
//   node scripts/stage-fonts.mjs [--check] [PUBLIC_DIR]
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {stageFonts} from '../lib/fonts.mjs';

const args = process.argv.slice(2);
const checkOnly = args.includes('--check');
const positional = args.filter((a) => !a.startsWith('--'));
const publicDir = path.resolve(positional[0] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'public'));
try {
	const {files, copied} = await stageFonts({publicDir, checkOnly, log: (m) => console.error(m)});
	console.error(
		checkOnly
			? `fonts: all ${files.length} font files are available (${copied} to copy into ${publicDir})`
			: `fonts: ${files.length} font files in ${path.join(publicDir, 'fonts')} (${copied} copied)`,
	);
} catch (err) {
	console.error(err.message);
	process.exit(1);
}
