import type React from 'react';
import {AbsoluteFill, useCurrentFrame, useVideoConfig} from 'remotion';
import {FONT_STACK} from '../fonts';
import {cuesAt} from './cues';
import type {CaptionStyle, CaptionsProps} from './schema';
import {CAPTION_WEIGHTS} from './weights';

/** Font size per style at a shorter side of 1080 pixels (it scales with the shorter side). */
const FONT_SIZE: Record<CaptionStyle, number> = {boxed: 48, outline: 58, bar: 40};

const OUTLINE = (u: number) => {
	const r = Math.max(1, 3 * u);
	const shadows = [];
	for (let a = 0; a < 16; a++) {
		const t = (a / 16) * 2 * Math.PI;
		shadows.push(`${(r * Math.cos(t)).toFixed(2)}px ${(r * Math.sin(t)).toFixed(2)}px 0 #000`);
	}
	return shadows.join(', ');
};

/** Style of the text (and of the box around it, for BOXED) per preset. */
const textStyle = (style: CaptionStyle, u: number): React.CSSProperties => {
	const base: React.CSSProperties = {
		fontFamily: FONT_STACK,
		fontWeight: CAPTION_WEIGHTS[style],
		fontSize: FONT_SIZE[style] * u,
		lineHeight: 1.3,
		color: '#ffffff',
		whiteSpace: 'pre-wrap',
		overflowWrap: 'break-word',
	};
	if (style === 'boxed') {
		return {
			...base,
			backgroundColor: 'rgba(0, 0, 0, 0.75)',
			padding: `${6 * u}px ${18 * u}px`,
			borderRadius: 10 * u,
			boxDecorationBreak: 'clone',
			WebkitBoxDecorationBreak: 'clone',
		};
	}
	if (style === 'outline') return {...base, textShadow: OUTLINE(u)};
	return base;
};

/**
 * Burned-in captions: the cues showing at this frame, centred near the bottom within safe
 * margins (higher up in portrait, clear of the players' controls), wrapped to the width.
 * Sizes follow the picture's shorter side, so 16:9, 9:16 and 1:1 read alike.
 */
export const Captions: React.FC<{captions: CaptionsProps}> = ({captions}) => {
	const frame = useCurrentFrame();
	const {fps, width, height} = useVideoConfig();
	const showing = cuesAt(captions.cues, frame, fps);
	if (showing.length === 0) return null;
	const u = Math.min(width, height) / 1080;
	const bar = captions.style === 'bar';
	const bottom = bar ? 0 : height * (height > width ? 0.16 : 0.08);
	return (
		<AbsoluteFill style={{justifyContent: 'flex-end', alignItems: 'center', pointerEvents: 'none'}}>
			<div
				style={{
					marginBottom: bottom,
					width: bar ? '100%' : undefined,
					maxWidth: bar ? '100%' : width * 0.88,
					padding: bar ? `${14 * u}px ${width * 0.06}px` : 0,
					backgroundColor: bar ? '#111827' : undefined,
					textAlign: 'center',
					display: 'flex',
					flexDirection: 'column',
					gap: 8 * u,
				}}
			>
				{showing.map((cue, i) => (
					// dir="auto": an Arabic or Hebrew cue reads right to left, its punctuation at its end.
					<div key={i} dir="auto">
						<span style={textStyle(captions.style, u)}>{cue.text}</span>
					</div>
				))}
			</div>
		</AbsoluteFill>
	);
};
