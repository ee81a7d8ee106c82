import React from 'react';
import {AbsoluteFill, interpolate, useCurrentFrame, useVideoConfig} from 'remotion';
import type {z} from 'zod';
import type {textPropsSchema} from '../schema';
import {DEFAULT_BACKGROUND, DEFAULT_TEXT_COLOR, centered, entrance, entranceSettlesAt, fitFontSize, unit, TEXT_WEIGHT} from './common';

const TEXT_ENTRANCE = 18;
const LINE_HEIGHT = 1.35;

/** First frame from which a text scene no longer moves. */
export const TEXT_SETTLES_AT = entranceSettlesAt(0, TEXT_ENTRANCE);

export const TextScene: React.FC<z.infer<typeof textPropsSchema>> = ({text, color, background}) => {
	const frame = useCurrentFrame();
	const {fps, width, height} = useVideoConfig();
	const u = unit(width, height);
	const enter = entrance(frame, fps, TEXT_ENTRANCE);
	// Margins of a tenth of the shorter side; long texts get a smaller font so they fit.
	const padding = 108 * u;
	const fontSize = fitFontSize(text, width - 2 * padding, height - 2 * padding, 72 * u, LINE_HEIGHT);
	return (
		<AbsoluteFill
			style={{
				...centered,
				backgroundColor: background ?? DEFAULT_BACKGROUND,
				color: color ?? DEFAULT_TEXT_COLOR,
				padding,
			}}
		>
			<div
				dir="auto"
				style={{
					fontSize,
					fontWeight: TEXT_WEIGHT,
					lineHeight: LINE_HEIGHT,
					maxWidth: '100%',
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
