import React from 'react';
import {AbsoluteFill, interpolate, spring, useCurrentFrame, useVideoConfig} from 'remotion';
import type {z} from 'zod';
import type {textPropsSchema} from '../schema';
import {DEFAULT_BACKGROUND, DEFAULT_TEXT_COLOR, centered, unit} from './common';

export const TextScene: React.FC<z.infer<typeof textPropsSchema>> = ({text, color, background}) => {
	const frame = useCurrentFrame();
	const {fps, width, height} = useVideoConfig();
	const u = unit(width, height);
	const enter = spring({frame, fps, config: {damping: 200}, durationInFrames: 18});
	// Long texts get a smaller font so they still fit.
	const fontSize = (text.length > 400 ? 40 : text.length > 160 ? 52 : 72) * u;
	return (
		<AbsoluteFill
			style={{
				...centered,
				backgroundColor: background ?? DEFAULT_BACKGROUND,
				color: color ?? DEFAULT_TEXT_COLOR,
				padding: 120 * u,
			}}
		>
			<div
				style={{
					fontSize,
					fontWeight: 500,
					lineHeight: 1.35,
					maxWidth: '85%',
					whiteSpace: 'pre-wrap',
					overflowWrap: 'break-word',
					opacity: enter,
					transform: `translateY(${interpolate(enter, [0, 1], [30 * u, 0])}px)`,
				}}
			>
				{text}
			</div>
		</AbsoluteFill>
	);
};
