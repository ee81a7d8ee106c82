// GIF frame timing. A GIF delays each frame by whole hundredths of a second, and the
// encoder gives every frame the same length, so the GIF's total is off by up to a frame:
// the last kept frame of a clip whose length is not a multiple of everyNthFrame is held
// too long (25 fps, 125 frames, every second kept: 63 x 8 cs = 5.04 s). retimeGif
// rewrites the delays in place from the exact times: frame k starts at k * nth / fps and
// the last one ends at durationInFrames / fps, each rounded to the hundredth, so the
// error never adds up (alternating 8 and 9 cs at 12 fps) and the total is right.
import {readFile, writeFile} from 'node:fs/promises';

// How many composition frames a GIF frame stands for: about 15 frames a second, so
// 24/25/30 fps keep every second frame, 50 every third (6 cs) and 60 every fourth.
const GIF_FRAMES_PER_SECOND = 15;

/** everyNthFrame of a GIF at `fps`. */
export const gifEveryNthFrame = (fps) => Math.max(1, Math.round(fps / GIF_FRAMES_PER_SECOND));

/** Offsets of each frame's delay (the Graphic Control Extension's) in a GIF, in order. */
export const gifDelayOffsets = (bytes) => {
	if (bytes.toString('latin1', 0, 3) !== 'GIF') throw new Error('not a GIF');
	const screenFlags = bytes[10];
	let at = 13 + (screenFlags & 0x80 ? 3 * 2 ** ((screenFlags & 7) + 1) : 0);
	const delays = [];
	let images = 0;
	const skipSubBlocks = () => {
		while (bytes[at] !== 0) at += bytes[at] + 1;
		at += 1;
	};
	while (at < bytes.length && bytes[at] !== 0x3b) {
		if (bytes[at] === 0x21) {
			if (bytes[at + 1] === 0xf9) delays.push(at + 4);
			at += 2;
			skipSubBlocks();
		} else if (bytes[at] === 0x2c) {
			const flags = bytes[at + 9];
			at += 10 + (flags & 0x80 ? 3 * 2 ** ((flags & 7) + 1) : 0) + 1; // + LZW code size
			skipSubBlocks();
			images += 1;
		} else {
			throw new Error(`unexpected GIF block 0x${bytes[at].toString(16)} at ${at}`);
		}
	}
	if (delays.length !== images) throw new Error(`${images} frames but ${delays.length} delays`);
	return delays;
};

/** Hundredths of a second for each of `frames` GIF frames (see the module's comment). */
export const gifDelays = ({frames, fps, everyNthFrame, durationInFrames}) => {
	const at = (frame) => Math.round((100 * frame) / fps);
	return Array.from({length: frames}, (_, k) =>
		(k === frames - 1 ? at(durationInFrames) : at((k + 1) * everyNthFrame)) - at(k * everyNthFrame),
	);
};

/**
 * Rewrites the delays of the GIF at `file` (see the module's comment). Returns the
 * total in hundredths of a second, or null (file untouched) if its frame count is not
 * the one expected of the clip.
 */
export const retimeGif = async (file, {fps, everyNthFrame, durationInFrames}) => {
	const bytes = await readFile(file);
	const offsets = gifDelayOffsets(bytes);
	if (offsets.length !== Math.ceil(durationInFrames / everyNthFrame)) return null;
	const delays = gifDelays({frames: offsets.length, fps, everyNthFrame, durationInFrames});
	offsets.forEach((offset, k) => bytes.writeUInt16LE(delays[k], offset));
	await writeFile(file, bytes);
	return delays.reduce((sum, d) => sum + d, 0);
};
