// Decoded frames of a video, one SHA-256 each, for comparing two renders frame by frame.
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {createHash} from 'node:crypto';
import path from 'node:path';
import {RenderInternals} from '@remotion/renderer';

// Remotion's ffmpeg has no framemd5 muxer: raw YUV frames go through image2pipe and are
// split here.
export const frameHashes = async (file, width = 640, height = 360) => {
	const compositor = path.dirname(RenderInternals.getExecutablePath({type: 'ffmpeg', indent: false, logLevel: 'error', binariesDirectory: null}));
	const ffmpeg = spawn(path.join(compositor, 'ffmpeg'), ['-v', 'error', '-i', file, '-map', '0:v', '-pix_fmt', 'yuv420p', '-c:v', 'rawvideo', '-f', 'image2pipe', '-'], {
		env: {...process.env, LD_LIBRARY_PATH: compositor},
		stdio: ['ignore', 'pipe', 'inherit'],
	});
	const chunks = [];
	for await (const chunk of ffmpeg.stdout) chunks.push(chunk);
	const raw = Buffer.concat(chunks);
	const frameBytes = (width * height * 3) / 2;
	assert.equal(raw.length % frameBytes, 0);
	return Array.from({length: raw.length / frameBytes}, (_, i) =>
		createHash('sha256').update(raw.subarray(i * frameBytes, (i + 1) * frameBytes)).digest('hex'),
	);
};

