import {TransitionSeries, linearTiming} from '@remotion/transitions';
import type {TransitionPresentation} from '@remotion/transitions';
import {fade} from '@remotion/transitions/fade';
import {slide} from '@remotion/transitions/slide';
import {wipe} from '@remotion/transitions/wipe';
import React, {useMemo} from 'react';
import {AbsoluteFill} from 'remotion';
import type {MainCompositionProps, SceneTransition} from './schema';
import {SceneView} from './scenes';
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

export const MainComposition: React.FC<MainCompositionProps> = ({scenes}) => {
	const planned = useMemo(() => planTimeline(scenes), [scenes]);
	return (
		<AbsoluteFill style={{backgroundColor: '#000'}}>
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
		</AbsoluteFill>
	);
};
