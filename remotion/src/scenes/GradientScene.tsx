import React from 'react';
import {AbsoluteFill, interpolate, useCurrentFrame} from 'remotion';
import type {z} from 'zod';
import type {gradientPropsSchema} from '../schema';

export const GradientScene: React.FC<z.infer<typeof gradientPropsSchema> & {durationInFrames: number}> = ({
	from,
	to,
	durationInFrames,
}) => {
	const frame = useCurrentFrame();
	// Slowly turning gradient so the scene is not a static frame.
	const angle = interpolate(frame, [0, Math.max(1, durationInFrames)], [120, 160]);
	return <AbsoluteFill style={{background: `linear-gradient(${angle}deg, ${from}, ${to})`}} />;
};
