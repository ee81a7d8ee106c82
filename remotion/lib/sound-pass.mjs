// Static holds under a soundtrack. Remotion mixes the sound of the frames Chromium
// captures, so a render that skips held frames (lib/frame-plan.mjs) would cut the music
// short and shift it. When the composition says its holds would shift sound
// (`holdsShiftSound`, set by calculateMetadata under a soundtrack), the picture is
// rendered muted with its holds, the sound in an audio-only render of every frame (no
// screenshots: Remotion seeks each frame and collects its audio, the same mix as in a
// full render) running alongside, and ffmpeg copies both streams into the output.
import {renderMedia, RenderInternals} from '@remotion/renderer';

/** Whether this render's holds need the sound rendered on its own. */
export const holdsShiftSound = (ctx, plan) => plan !== null && ctx.selected.props?.holdsShiftSound === true;

/**
 * The props of the same sound with nothing to draw: under holds the soundtrack is the only
 * sound (a video scene turns the holds off), and it depends on the length and frame rate
 * only, so one plain scene of the same length replaces the scenes and the captions (no
 * text, fonts or transitions to lay out on each of the pass's frames).
 */
const soundOnly = (props, composition) => {
	const {captions: _captions, staticHolds: _holds, ...rest} = props ?? {};
	const scene = {type: 'color', durationInFrames: composition.durationInFrames, props: {color: '#000'}};
	return {...rest, scenes: [scene]};
};

/**
 * Starts the audio-only render; returns where the muted picture goes and `mux()`, which
 * waits for the sound and writes the output. A failed sound pass fails `mux()`.
 */
export const startSoundPass = (ctx, cancelSignal) => {
	const base = ctx.outputPath.replace(/\.[^./]+$/, '');
	const pass = {videoPath: `${base}.picture.mp4`, audioPath: `${base}.sound.aac`, error: null};
	pass.done = renderMedia({
		...ctx.common,
		inputProps: soundOnly(ctx.common.inputProps, ctx.composition),
		composition: {...ctx.composition, props: soundOnly(ctx.composition.props, ctx.composition)},
		codec: 'aac',
		outputLocation: pass.audioPath,
		overwrite: true,
		concurrency: 1,
		cancelSignal,
	}).catch((err) => {
		pass.error = err;
	});
	pass.mux = async () => {
		await pass.done;
		if (pass.error) throw pass.error;
		const args = ['-y', '-i', pass.videoPath, '-i', pass.audioPath, '-map', '0:v:0', '-map', '1:a:0'];
		await RenderInternals.callFf({
			bin: 'ffmpeg',
			args: [...args, '-c', 'copy', '-shortest', ctx.outputPath],
			indent: false,
			logLevel: 'error',
			binariesDirectory: null,
			cancelSignal: undefined,
		});
	};
	return pass;
};
