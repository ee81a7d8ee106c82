import React from 'react';
import {AbsoluteFill, interpolate, useCurrentFrame, useVideoConfig} from 'remotion';
import type {z} from 'zod';
import type {textPropsSchema} from '../schema';
import {DEFAULT_BACKGROUND, DEFAULT_TEXT_COLOR, centered, entrance, entranceSettlesAt, unit, TEXT_WEIGHT} from './common';

const TEXT_ENTRANCE = 18;

/** First frame from which a text scene no longer moves. */
export const TEXT_SETTLES_AT = entranceSettlesAt(0, TEXT_ENTRANCE);

export const TextScene: React.FC<z.infer<typeof textPropsSchema>> = ({text, color, background}) => {
	const frame = useCurrentFrame();
	const {fps, width, height} = useVideoConfig();
	const u = unit(width, height);
	const enter = entrance(frame, fps, TEXT_ENTRANCE);
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
					fontWeight: TEXT_WEIGHT,
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
