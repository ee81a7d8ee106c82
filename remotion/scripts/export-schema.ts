/**
 * Writes catalogue/scenes.schema.json from the zod schemas in src/schema.ts.
 *
 *   npx tsx scripts/export-schema.ts          # regenerate
 *   npx tsx scripts/export-schema.ts --check  # exit 1 if the checked-in file is stale
 */
import {readFileSync, writeFileSync, mkdirSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {z} from 'zod';
import {FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH} from '../src/Root';
import {ASSET_KINDS, MAX_SCENES, SCENE_TYPES, sceneSchema} from '../src/schema';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outFile = join(root, 'catalogue', 'scenes.schema.json');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
	dependencies: Record<string, string>;
};

export const buildSceneJsonSchema = () => {
	const generated = z.toJSONSchema(sceneSchema, {target: 'draft-2020-12'}) as Record<string, unknown>;
	const {$schema, oneOf, ...rest} = generated;
	if (!Array.isArray(oneOf)) {
		throw new Error('Expected zod to emit a oneOf for the scene union');
	}
	const branchTypes = oneOf.map(
		(b: {properties?: {type?: {const?: string}}}) => b.properties?.type?.const,
	);
	if (JSON.stringify(branchTypes) !== JSON.stringify(SCENE_TYPES)) {
		throw new Error(`SCENE_TYPES ${JSON.stringify(SCENE_TYPES)} != union ${JSON.stringify(branchTypes)}`);
	}
	return {
		$schema: $schema ?? 'https://json-schema.org/draft/2020-12/schema',
		$id: 'urn:render-export:remotion:scenes.schema.json',
		title: 'Scene',
		description:
			'ONE scene of MainComposition. Generated from remotion/src/schema.ts by `npm run schema`; do not edit by hand.',
		'x-scene-types': [...SCENE_TYPES],
		// Props marked `x-asset: <kind>` (see asset() in src/schema.ts) are asset URLs.
		'x-asset-kinds': [...ASSET_KINDS],
		'x-remotion-version': pkg.dependencies.remotion,
		'x-composition': {
			id: 'MainComposition',
			fps: FPS,
			defaultWidth: DEFAULT_WIDTH,
			defaultHeight: DEFAULT_HEIGHT,
			minScenes: 1,
			maxScenes: MAX_SCENES,
			inputProps: '{"projectId": string (1..200 chars), "scenes": [Scene, ...]}',
		},
		...rest,
		oneOf,
	};
};

const main = () => {
	const text = `${JSON.stringify(buildSceneJsonSchema(), null, 2)}\n`;
	if (process.argv.includes('--check')) {
		let current = '';
		try {
			current = readFileSync(outFile, 'utf8');
		} catch {
			// missing counts as stale
		}
		if (current !== text) {
			console.error(`${outFile} is stale: run \`npm run schema\` and commit the result.`);
			process.exit(1);
		}
		console.error(`${outFile} is up to date.`);
		return;
	}
	mkdirSync(dirname(outFile), {recursive: true});
	writeFileSync(outFile, text);
	console.error(`wrote ${outFile}`);
};

main();
