import type React from 'react';
import {spring} from 'remotion';
import {FONT_STACK} from '../fonts';

/** Font weights of the text scenes (src/fonts.json has a regular and a bold face). */
export const TITLE_WEIGHT = 800;
export const SUBTITLE_WEIGHT = 400;
export const TEXT_WEIGHT = 500;
export const DEFAULT_BACKGROUND = '#0f172a';
export const DEFAULT_TEXT_COLOR = '#f8fafc';

/** Typography scales with the shorter side so every size and shape looks alike. */
export const unit = (width: number, height: number) => Math.min(width, height) / 1080;

/** Average advance of a Noto Sans glyph, in ems (measured over English text). */
const GLYPH_WIDTH_EM = 0.55;

/**
 * The largest font size up to `max` at which `text` fits a box of `width` x `height`
 * pixels with `lineHeight`: wrapped lines of about width / (0.55 em) characters, each
 * explicit line break starting a line. Keeps a 2,000-character text inside a landscape
 * frame and lets a short one fill a vertical one.
 */
export const fitFontSize = (text: string, width: number, height: number, max: number, lineHeight: number): number => {
	const fits = (size: number) => {
		const perLine = Math.max(1, Math.floor(width / (GLYPH_WIDTH_EM * size)));
		const lines = text.split('\n').reduce((sum, line) => sum + Math.max(1, Math.ceil(line.length / perLine)), 0);
		return lines * lineHeight * size <= height;
	};
	let size = max;
	while (size > 8 && !fits(size)) size *= 0.92;
	return size;
};

export const centered: React.CSSProperties = {
	justifyContent: 'center',
	alignItems: 'center',
	textAlign: 'center',
	fontFamily: FONT_STACK,
};

/**
 * The scenes' entrance: a critically damped spring over `durationInFrames`, exactly 1
 * after that (Remotion's stretched spring already is; this makes it a contract), so a
 * scene is pixel-for-pixel static from `entranceSettlesAt(...)` on.
 */
export const entrance = (frame: number, fps: number, durationInFrames: number): number =>
	frame > durationInFrames ? 1 : spring({frame, fps, config: {damping: 200}, durationInFrames});

/** First scene frame at which `entrance(frame - delay, fps, durationInFrames)` is exactly 1. */
export const entranceSettlesAt = (delay: number, durationInFrames: number): number =>
	delay + durationInFrames + 1;
