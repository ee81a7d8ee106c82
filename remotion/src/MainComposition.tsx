import {TransitionSeries, linearTiming} from '@remotion/transitions';
import type {TransitionPresentation} from '@remotion/transitions';
import {fade} from '@remotion/transitions/fade';
import {slide} from '@remotion/transitions/slide';
import {wipe} from '@remotion/transitions/wipe';
import React, {useEffect, useMemo, useState} from 'react';
import {AbsoluteFill, cancelRender, continueRender, delayRender} from 'remotion';
import {loadFontsFor} from './fonts';
import {Captions} from './media/Captions';
import {Soundtrack} from './media/Soundtrack';
import {captionTextRuns} from './media/cues';
import type {MainCompositionProps, SceneTransition} from './schema';
import {SceneView, sceneTextRuns} from './scenes';
import {planTimeline} from './timeline';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyPresentation = TransitionPresentation<any>;

const presentationFor = (type: SceneTransition['type']): AnyPresentation => {
	switch (type) {
		case 'fade':
			return fade() as AnyPresentation;
		case 'slide':
			return slide({direction: 'from-right'}) as AnyPresentation;
		case 'wipe':
			return wipe({direction: 'from-left'}) as AnyPresentation;
		default:
			throw new Error(`Unknown transition type: ${String(type)}`);
	}
};

/**
 * Holds the render until the font faces the scenes' text needs are loaded: once per page
 * (each Chromium tab mounts this once and then seeks frames), so no frame waits again.
 */
const useSceneFonts = (
	scenes: MainCompositionProps['scenes'],
	captions: MainCompositionProps['captions'],
): void => {
	const runs = useMemo(
		() => [...scenes.flatMap(sceneTextRuns), ...captionTextRuns(captions)],
		[scenes, captions],
	);
	const [handle] = useState(() => delayRender('Loading the fonts of the scenes'));
	useEffect(() => {
		loadFontsFor(runs).then(
			() => continueRender(handle),
			(err: unknown) => cancelRender(err),
		);
	}, [runs, handle]);
};

export const MainComposition: React.FC<MainCompositionProps> = ({scenes, soundtrack, captions, transparent}) => {
	useSceneFonts(scenes, captions);
	const planned = useMemo(() => planTimeline(scenes), [scenes]);
	// Transparent renders have no backdrop: what the scenes leave uncovered keeps its alpha.
	return (
		<AbsoluteFill style={transparent ? undefined : {backgroundColor: '#000'}}>
			<TransitionSeries>
				{planned.flatMap(({scene, transitionOut}, i) => {
					const items = [
						<TransitionSeries.Sequence
							key={`s${i}`}
							durationInFrames={scene.durationInFrames}
							name={`${i}:${scene.type}`}
						>
							<SceneView scene={scene} />
						</TransitionSeries.Sequence>,
					];
					if (transitionOut > 0 && scene.transition) {
						items.push(
							<TransitionSeries.Transition
								key={`t${i}`}
								presentation={presentationFor(scene.transition.type)}
								timing={linearTiming({durationInFrames: transitionOut})}
							/>,
						);
					}
					return items;
				})}
			</TransitionSeries>
			{soundtrack ? <Soundtrack track={soundtrack} /> : null}
			{captions ? <Captions captions={captions} /> : null}
		</AbsoluteFill>
	);
};
