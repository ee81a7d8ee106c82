import React from 'react';
import {AbsoluteFill, Img, interpolate, useCurrentFrame} from 'remotion';
import type {z} from 'zod';
import type {imagePropsSchema} from '../schema';

export const ImageScene: React.FC<z.infer<typeof imagePropsSchema> & {durationInFrames: number}> = ({
	src,
	fit,
	durationInFrames,
}) => {
	const frame = useCurrentFrame();
	// Gentle Ken Burns zoom over the scene.
	const scale = interpolate(frame, [0, Math.max(1, durationInFrames)], [1, 1.06], {
		extrapolateRight: 'clamp',
	});
	const opacity = interpolate(frame, [0, 10], [0, 1], {extrapolateRight: 'clamp'});
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
