import React from 'react';
import {AbsoluteFill, interpolate, useCurrentFrame, useVideoConfig} from 'remotion';
import type {z} from 'zod';
import type {titlePropsSchema} from '../schema';
import {DEFAULT_BACKGROUND, DEFAULT_TEXT_COLOR, centered, entrance, entranceSettlesAt, fitFontSize, unit, TITLE_WEIGHT, SUBTITLE_WEIGHT} from './common';

const TITLE_ENTRANCE = 20;
const SUBTITLE_DELAY = 8;

/** First frame from which a title scene no longer moves. */
export const titleSettlesAt = (props: z.infer<typeof titlePropsSchema>): number =>
	props.subtitle
		? entranceSettlesAt(SUBTITLE_DELAY, TITLE_ENTRANCE)
		: entranceSettlesAt(0, TITLE_ENTRANCE);

export const TitleScene: React.FC<z.infer<typeof titlePropsSchema>> = ({
	text,
	subtitle,
	color,
	background,
}) => {
	const frame = useCurrentFrame();
	const {fps, width, height} = useVideoConfig();
	const u = unit(width, height);
	const enter = entrance(frame, fps, TITLE_ENTRANCE);
	const subEnter = entrance(frame - SUBTITLE_DELAY, fps, TITLE_ENTRANCE);
	const bg = background ?? DEFAULT_BACKGROUND;
	return (
		<AbsoluteFill
			style={{
				...centered,
				background: background
					? bg
					: `radial-gradient(ellipse at center, #1e293b 0%, ${bg} 70%)`,
				color: color ?? DEFAULT_TEXT_COLOR,
				padding: 96 * u,
			}}
		>
			<div
				dir="auto"
				style={{
					fontSize: fitFontSize(text, (width - 192 * u) * 0.9, height * 0.45, 120 * u, 1.1),
					fontWeight: TITLE_WEIGHT,
					lineHeight: 1.1,
					letterSpacing: -2 * u,
					opacity: enter,
					transform: `translateY(${interpolate(enter, [0, 1], [40 * u, 0])}px) scale(${interpolate(enter, [0, 1], [0.96, 1])})`,
					maxWidth: '90%',
					overflowWrap: 'break-word',
				}}
			>
				{text}
			</div>
			{subtitle ? (
				<div
					dir="auto"
					style={{
						marginTop: 32 * u,
						fontSize: fitFontSize(subtitle, (width - 192 * u) * 0.8, height * 0.25, 52 * u, 1.3),
						fontWeight: SUBTITLE_WEIGHT,
						lineHeight: 1.3,
						opacity: subEnter * 0.85,
						transform: `translateY(${interpolate(subEnter, [0, 1], [24 * u, 0])}px)`,
						maxWidth: '80%',
						overflowWrap: 'break-word',
					}}
				>
					{subtitle}
				</div>
			) : null}
		</AbsoluteFill>
	);
};
