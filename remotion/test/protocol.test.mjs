// Render request validation from protocol/host-protocol.schema.json (lib/protocol.mjs):
// the same INVALID_INPUT messages the hand-written checks gave, first refused field first.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {HostError} from '../lib/errors.mjs';
import {enumOf, isHostMessage, refusal, SCHEMA, validateRequest} from '../lib/protocol.mjs';

const good = {
	type: 'render',
	id: 'job-1',
	compositionId: 'MainComposition',
	inputProps: {projectId: 'p', scenes: []},
	codec: 'h264',
	outputPath: '/tmp/out/output.mp4',
	thumbnailPath: '/tmp/out/thumbnail.jpg',
	width: 1280,
	height: 720,
	crf: 28,
	jpegQuality: 70,
	videoBitrate: '1M',
	concurrency: 1,
	timeoutMs: 600000,
	thumbnailFrame: 30,
	x264Preset: 'veryfast',
	imageFormat: 'jpeg',
	pixelFormat: 'yuv420p',
	skipStaticFrames: true,
};

const refused = (req) => {
	try {
		validateRequest(req);
	} catch (err) {
		assert.ok(err instanceof HostError, String(err));
		assert.equal(err.reason, 'INVALID_INPUT');
		assert.equal(err.retryable, false);
		return err.message;
	}
	assert.fail(`accepted ${JSON.stringify(req)}`);
};

test('a good request is accepted and its codec returned (h264 when absent or null)', () => {
	assert.equal(validateRequest(good), 'h264');
	assert.equal(validateRequest({...good, codec: 'gif', width: 641, height: 361}), 'gif');
	const {codec, ...noCodec} = good;
	assert.equal(validateRequest(noCodec), 'h264');
	for (const k of ['thumbnailPath', 'width', 'height', 'crf', 'jpegQuality', 'videoBitrate', 'concurrency', 'timeoutMs', 'thumbnailFrame', 'x264Preset', 'imageFormat', 'pixelFormat', 'skipStaticFrames', 'codec', 'fps', 'proResProfile']) {
		assert.equal(validateRequest({...good, [k]: null}), 'h264', k);
	}
	assert.equal(validateRequest({...good, somethingElse: 1}), 'h264', 'other properties are ignored');
	assert.equal(validateRequest({...good, width: 2.0, videoBitrate: '2.5M'}), 'h264');
});

const presets = 'ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow, placebo';
const pixelFormats = 'yuv420p, yuv422p, yuv444p, yuv420p10le, yuv422p10le, yuv444p10le, yuva420p, yuva444p10le';
const codecs = 'h264, h265, vp8, vp9, prores, gif, mp3, wav';
const CASES = [
	[{compositionId: 7}, 'compositionId must be a string'],
	[{compositionId: null}, 'compositionId must be a string'],
	[{inputProps: undefined}, 'inputProps must be an object'],
	[{inputProps: null}, 'inputProps must be an object'],
	[{inputProps: []}, 'inputProps must be an object'],
	[{inputProps: 'x'}, 'inputProps must be an object'],
	[{codec: 'av1'}, `codec must be one of ${codecs}`],
	[{fps: 0}, 'fps must be an integer 1..60'],
	[{fps: 29.97}, 'fps must be an integer 1..60'],
	[{proResProfile: '422'}, 'proResProfile must be one of 4444-xq, 4444, hq, standard, light, proxy'],
	[{outputPath: undefined}, 'outputPath must be an absolute path'],
	[{outputPath: 'relative.mp4'}, 'outputPath must be an absolute path'],
	[{outputPath: 3}, 'outputPath must be an absolute path'],
	[{thumbnailPath: 'thumb.jpg'}, 'thumbnailPath must be an absolute path or null'],
	[{width: 0}, 'width must be an integer 1..7680'],
	[{width: 7682}, 'width must be an integer 1..7680'],
	[{width: 12.5}, 'width must be an integer 1..7680'],
	[{width: '1280'}, 'width must be an integer 1..7680'],
	[{width: 1281}, 'width must be even for h264'],
	[{codec: 'vp8', height: 721}, 'height must be even for vp8'],
	[{width: 1281, height: 0}, 'width must be even for h264'],
	[{height: 0, width: 1281}, 'width must be even for h264'],
	[{height: 721}, 'height must be even for h264'],
	[{crf: '23'}, 'crf must be a number or null'],
	[{jpegQuality: 0}, 'jpegQuality must be an integer 1..100'],
	[{jpegQuality: 101}, 'jpegQuality must be an integer 1..100'],
	[{videoBitrate: '5 M'}, 'videoBitrate must look like "5M", "800K" or null'],
	[{videoBitrate: 5}, 'videoBitrate must look like "5M", "800K" or null'],
	[{concurrency: 0}, 'concurrency must be a positive integer or null'],
	[{concurrency: 65}, 'concurrency must be a positive integer or null'],
	[{timeoutMs: -1}, 'timeoutMs must be a positive integer (ms) or null'],
	[{timeoutMs: 24 * 3600 * 1000 + 1}, 'timeoutMs must be a positive integer (ms) or null'],
	[{thumbnailFrame: -1}, 'thumbnailFrame must be a non-negative integer or null'],
	[{x264Preset: 'fastest'}, `x264Preset must be one of ${presets}`],
	[{imageFormat: 'webp'}, 'imageFormat must be one of jpeg, png'],
	[{pixelFormat: 'rgb24'}, `pixelFormat must be one of ${pixelFormats}`],
	[{skipStaticFrames: 'no'}, 'skipStaticFrames must be a boolean or null'],
	// Several refused: the first in the order the host always checked them.
	[{skipStaticFrames: 'no', codec: 'av1', width: 3}, `codec must be one of ${codecs}`],
	[{pixelFormat: 'rgb24', crf: 'x', outputPath: 'a'}, 'outputPath must be an absolute path'],
];

for (const [change, message] of CASES) {
	test(`refused: ${JSON.stringify(change)}`, () => {
		assert.equal(refused({...good, ...change}), message);
	});
}

test('the enums are the schema\'s, listed once', () => {
	assert.equal(enumOf('codec').join(', '), codecs);
	assert.equal(enumOf('x264Preset').join(', '), presets);
	assert.deepEqual(Object.keys(SCHEMA.$defs.render.properties).length, 21); // type, id and the 19 checked fields
});

test('host messages are checked against the schema', () => {
	assert.ok(isHostMessage({type: 'pong', id: null}));
	assert.ok(isHostMessage(refusal(null, 'INVALID_INPUT', 'request is not valid JSON')));
	assert.ok(!isHostMessage({type: 'pong'}));
	assert.ok(!isHostMessage(refusal('x', 'NO_SUCH_REASON', 'm')));
	assert.ok(!isHostMessage({type: 'progress', id: 'x', stage: 'bundling', progress: 0, renderedFrames: 0, encodedFrames: 0, totalFrames: 1}));
});
