import React from 'react';
import {Html5Audio, useVideoConfig} from 'remotion';
import type {SoundtrackProps} from './schema';

/**
 * Gain (0..1) of the fades at frame `f` of a video of `total` frames: a linear ramp up
 * over `fadeIn` frames from the start, down over `fadeOut` frames to the end.
 */
export const fadeGain = (f: number, total: number, fadeIn: number, fadeOut: number): number => {
	const up = fadeIn > 0 ? f / fadeIn : 1;
	const down = fadeOut > 0 ? (total - f) / fadeOut : 1;
	return Math.max(0, Math.min(1, up, down));
};

/**
 * Music under the whole video: its volume with the fades, played from `startFromSeconds`
 * into the file, repeated when `loop` (the fades span the video, not each repeat), and
 * always cut at the video's end.
 */
export const Soundtrack: React.FC<{track: SoundtrackProps}> = ({track}) => {
	const {fps, durationInFrames} = useVideoConfig();
	const fadeIn = track.fadeInSeconds * fps;
	const fadeOut = track.fadeOutSeconds * fps;
	const trimBefore = Math.round(track.startFromSeconds * fps);
	return (
		<Html5Audio
			src={track.src}
			name="soundtrack"
			loop={track.loop}
			loopVolumeCurveBehavior="extend"
			trimBefore={trimBefore > 0 ? trimBefore : undefined}
			volume={(f) => track.volume * fadeGain(f, durationInFrames, fadeIn, fadeOut)}
		/>
	);
};
