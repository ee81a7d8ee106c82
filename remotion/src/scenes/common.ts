import type React from 'react';

export const FONT_FAMILY =
	"Inter, 'Helvetica Neue', 'Liberation Sans', Arial, 'DejaVu Sans', sans-serif";
export const DEFAULT_BACKGROUND = '#0f172a';
export const DEFAULT_TEXT_COLOR = '#f8fafc';

/** Typography scales with the shorter side so quality presets look alike. */
export const unit = (width: number, height: number) => Math.min(width, height) / 1080;

export const centered: React.CSSProperties = {
	justifyContent: 'center',
	alignItems: 'center',
	textAlign: 'center',
	fontFamily: FONT_FAMILY,
};
