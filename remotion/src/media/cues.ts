import type {TextRun} from '../fonts';
import type {StaticHold} from '../timeline';
import {CAPTION_WEIGHTS} from './weights';
import type {CaptionCue, CaptionsProps} from './schema';

/** The text the burned-in captions draw, with its weight (the fonts the page must load). */
export const captionTextRuns = (captions: CaptionsProps | undefined): TextRun[] =>
	captions ? captions.cues.map((cue) => ({weight: CAPTION_WEIGHTS[captions.style], text: cue.text})) : [];

/** The frames [from, to) in which a cue shows, at `fps`. */
export const cueFrames = (cue: CaptionCue, fps: number): [number, number] => [
	Math.round(cue.start * fps),
	Math.round(cue.end * fps),
];

/** The cues showing at `frame`, in start order (overlapping cues stack). */
export const cuesAt = (cues: readonly CaptionCue[], frame: number, fps: number): CaptionCue[] =>
	cues.filter((cue) => {
		const [from, to] = cueFrames(cue, fps);
		return from <= frame && frame < to;
	});

/**
 * Static holds cut where a caption appears or disappears, so that every held frame still
 * looks like the hold's first one with the captions drawn over it.
 */
export const splitHolds = (holds: StaticHold[], cues: readonly CaptionCue[], fps: number): StaticHold[] => {
	const changes = [...new Set(cues.flatMap((cue) => cueFrames(cue, fps)))].sort((a, b) => a - b);
	const out: StaticHold[] = [];
	for (const [from, to] of holds) {
		let start = from;
		for (const change of changes) {
			if (change <= start || change > to) continue;
			if (change - 1 > start) out.push([start, change - 1]);
			start = change;
		}
		if (to > start) out.push([start, to]);
	}
	return out;
};

/**
 * The static holds of a composition with these media: cut at the captions' changes, and
 * whether skipping them would shift the soundtrack (Remotion mixes the sound of the
 * captured frames only): a renderer that skips them must render the sound on its own
 * (the render host does, lib/sound-pass.mjs).
 */
export const mediaHolds = (
	holds: StaticHold[],
	media: {soundtrack?: unknown; captions?: CaptionsProps},
	fps: number,
): {staticHolds: StaticHold[]; holdsShiftSound: boolean} => ({
	staticHolds: media.captions ? splitHolds(holds, media.captions.cues, fps) : holds,
	holdsShiftSound: Boolean(media.soundtrack),
});
