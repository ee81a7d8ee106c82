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

test('samples have the expected lengths', async () => {
	const {tsImport} = await import('tsx/esm/api');
	const {totalDurationInFrames} = await tsImport('../src/timeline.ts', import.meta.url);
	const len = (name) =>
		totalDurationInFrames(JSON.parse(readFileSync(path.join(REMOTION_DIR, 'samples', `${name}.json`), 'utf8')).scenes);
	assert.equal(len('reference-150'), 150);
	assert.equal(len('tiny'), 20);
	assert.ok(len('demo') >= 120 && len('demo') <= 180);
});
