import type React from 'react';
import {spring} from 'remotion';
import {FONT_STACK} from '../fonts';

/** Font weights of the text scenes (src/fonts.json has a regular and a bold face). */
export const TITLE_WEIGHT = 800;
export const SUBTITLE_WEIGHT = 400;
export const TEXT_WEIGHT = 500;
export const DEFAULT_BACKGROUND = '#0f172a';
export const DEFAULT_TEXT_COLOR = '#f8fafc';

/** Typography scales with the shorter side so quality presets look alike. */
export const unit = (width: number, height: number) => Math.min(width, height) / 1080;

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
