import React from 'react';
import {AbsoluteFill, Img, interpolate, useCurrentFrame} from 'remotion';
import type {z} from 'zod';
import type {imagePropsSchema} from '../schema';

/** Frames of the image's fade-in; a contained image is still from then on. */
export const IMAGE_FADE_IN = 10;

export const ImageScene: React.FC<z.infer<typeof imagePropsSchema> & {durationInFrames: number}> = ({
	src,
	fit,
	durationInFrames,
}) => {
	const frame = useCurrentFrame();
	// Gentle Ken Burns zoom over a covering image; a contained one stays whole (a zoom
	// would crop the edges it was asked to show).
	const zoom = (fit ?? 'cover') === 'cover' ? 1.06 : 1;
	const scale = interpolate(frame, [0, Math.max(1, durationInFrames)], [1, zoom], {
		extrapolateRight: 'clamp',
	});
	const opacity = interpolate(frame, [0, IMAGE_FADE_IN], [0, 1], {extrapolateRight: 'clamp'});
	return (
		<AbsoluteFill>
			<Img
				src={src}
				style={{
					width: '100%',
					height: '100%',
					objectFit: fit ?? 'cover',
					transform: `scale(${scale})`,
					opacity,
				}}
			/>
		</AbsoluteFill>
	);
};
