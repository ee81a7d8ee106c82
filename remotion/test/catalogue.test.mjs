// The checked-in catalogue must match the zod schemas, and the samples must be valid scenes.
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import {REMOTION_DIR} from './host-client.mjs';

const schema = JSON.parse(readFileSync(path.join(REMOTION_DIR, 'catalogue/scenes.schema.json'), 'utf8'));

test('catalogue/scenes.schema.json is up to date', () => {
	execFileSync(process.execPath, [path.join(REMOTION_DIR, 'node_modules/tsx/dist/cli.mjs'), 'scripts/export-schema.ts', '--check'], {
		cwd: REMOTION_DIR,
		stdio: 'pipe',
	});
});

test('catalogue shape', () => {
	assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
	assert.deepEqual(schema['x-scene-types'], ['title', 'text', 'image', 'video', 'color', 'gradient']);
	assert.equal(schema.oneOf.length, 6);
	for (const branch of schema.oneOf) {
		assert.deepEqual(branch.required, ['type', 'durationInFrames', 'props']);
		assert.equal(branch.additionalProperties, false);
		assert.equal(branch.properties.props.additionalProperties, false);
		assert.equal(branch.properties.durationInFrames.maximum, 108000);
	}
});

test('asset props carry the x-asset mark; text props do not', async () => {
	const {tsImport} = await import('tsx/esm/api');
	const {asset, ASSET_KINDS} = await tsImport('../src/schema.ts', import.meta.url);
	const {z} = await import('zod');
	assert.deepEqual(schema['x-asset-kinds'], [...ASSET_KINDS]);
	const marks = Object.fromEntries(
		schema.oneOf.map((b) => [
			b.properties.type.const,
			Object.entries(b.properties.props.properties)
				.filter(([, p]) => p['x-asset'])
				.map(([name, p]) => [name, p['x-asset'], p.format]),
		]),
	);
	assert.deepEqual(marks, {
		title: [],
		text: [],
		image: [['src', 'image', 'uri']],
		video: [['src', 'video', 'uri']],
		color: [],
		gradient: [],
	});
	// A future prop (a soundtrack) gets the same mark from the helper, nested or optional.
	const exported = z.toJSONSchema(z.strictObject({soundtrack: z.strictObject({src: asset('audio')}).optional()}));
	const src = exported.properties.soundtrack.properties.src;
	assert.equal(src['x-asset'], 'audio');
	assert.equal(src.format, 'uri');
	assert.ok(asset('audio').safeParse('https://cdn.example/s.mp3').success);
	assert.ok(!asset('audio').safeParse('Note: this is a title').success);
});

test('samples have the expected lengths', async () => {
	const {tsImport} = await import('tsx/esm/api');
	const {totalDurationInFrames} = await tsImport('../src/timeline.ts', import.meta.url);
	const len = (name) =>
		totalDurationInFrames(JSON.parse(readFileSync(path.join(REMOTION_DIR, 'samples', `${name}.json`), 'utf8')).scenes);
	assert.equal(len('reference-150'), 150);
	assert.equal(len('tiny'), 20);
	assert.ok(len('demo') >= 120 && len('demo') <= 180);
});
