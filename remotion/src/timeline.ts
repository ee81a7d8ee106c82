import type {Scene} from './schema';

export type PlannedScene = {
	scene: Scene;
	/** Composition frame at which the scene starts (its incoming transition included). */
	start: number;
	/** Effective length of the transition into this scene (0 = hard cut or first scene). */
	transitionIn: number;
	/** Effective length of the transition from this scene into the next (0 = hard cut). */
	transitionOut: number;
};

/**
 * Clamps every transition so that TransitionSeries accepts it: a transition
 * may neither be longer than the part of its scene that is not already used
 * by the incoming transition, nor longer than the next scene. The transition
 * of the last scene is ignored.
 */
export const planTimeline = (scenes: readonly Scene[]): PlannedScene[] => {
	let transitionIn = 0;
	let start = 0;
	return scenes.map((scene, i) => {
		const next = scenes[i + 1];
		let transitionOut = 0;
		if (next && scene.transition) {
			transitionOut = Math.max(
				0,
				Math.min(
					scene.transition.durationInFrames,
					scene.durationInFrames - transitionIn,
					next.durationInFrames,
				),
			);
		}
		const planned = {scene, start, transitionIn, transitionOut};
		start += scene.durationInFrames - transitionOut;
		transitionIn = transitionOut;
		return planned;
	});
};

/** Total length: sum of scene lengths minus transition overlaps, at least 1 frame. */
export const totalDurationInFrames = (scenes: readonly Scene[]): number => {
	const planned = planTimeline(scenes);
	const total = planned.reduce(
		(sum, p) => sum + p.scene.durationInFrames - p.transitionOut,
		0,
	);
	return Math.max(1, total);
};

/** Frames [from, to] (inclusive, composition frames) that all look exactly like `from`. */
export type StaticHold = [number, number];

/**
 * Where the video holds still: for each scene, the frames after its animation has settled
 * (`settlesAt`, scene-relative, null = never) while no transition runs, i.e. from the end
 * of the incoming transition to the start of the outgoing one. The renderer captures the
 * first frame of a hold and repeats it, which is exact because nothing else is drawn.
 * None when a scene has a video: Remotion places audio by captured frame, so skipping
 * frames would move the sound.
 */
export const staticHolds = (
	scenes: readonly Scene[],
	settlesAt: (scene: Scene) => number | null,
): StaticHold[] => {
	if (scenes.some((s) => s.type === 'video')) return [];
	const holds: StaticHold[] = [];
	for (const {scene, start, transitionIn, transitionOut} of planTimeline(scenes)) {
		const settled = settlesAt(scene);
		if (settled === null) continue;
		const from = start + Math.max(settled, transitionIn);
		const to = start + scene.durationInFrames - transitionOut - 1;
		if (to > from) holds.push([from, to]);
	}
	return holds;
};
