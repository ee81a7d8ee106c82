import type {Scene} from './schema';

export type PlannedScene = {
	scene: Scene;
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
		transitionIn = transitionOut;
		return {scene, transitionOut};
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
