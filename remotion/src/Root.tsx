import React from 'react';
import {Composition} from 'remotion';
import type {CalculateMetadataFunction} from 'remotion';
import {MainComposition} from './MainComposition';
import {mediaHolds} from './media/cues';
import {mainCompositionSchema} from './schema';
import type {MainCompositionProps} from './schema';
import {sceneSettlesAt} from './scenes';
import {staticHolds, totalDurationInFrames} from './timeline';

export const FPS = 30;
export const DEFAULT_WIDTH = 1920;
export const DEFAULT_HEIGHT = 1080;

const defaultProps: MainCompositionProps = {
	projectId: 'preview',
	scenes: [
		{
			type: 'title',
			durationInFrames: 60,
			props: {text: 'Hello', subtitle: 'Edit samples/demo.json'},
			transition: {type: 'fade', durationInFrames: 15},
		},
		{type: 'gradient', durationInFrames: 45, props: {from: '#6366f1', to: '#ec4899'}},
	],
};

/**
 * Validates inputProps (the render host classifies errors carrying the
 * INVALID_INPUT_PROPS marker as non-retryable) and sizes the composition:
 * sum of scene lengths minus transition overlaps, at least 1 frame; width, height and
 * fps from the props when given (the server's output shape), else the defaults below. The resolved
 * props carry the static holds, which the render host reads from selectComposition.
 */
const calculateMetadata: CalculateMetadataFunction<MainCompositionProps> = ({props}) => {
	const parsed = mainCompositionSchema.safeParse(props);
	if (!parsed.success) {
		const issues = parsed.error.issues
			.slice(0, 10)
			.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
			.join('; ');
		throw new Error(`INVALID_INPUT_PROPS: ${issues}`);
	}
	const {width, height, fps} = parsed.data;
	return {
		durationInFrames: totalDurationInFrames(parsed.data.scenes),
		...(width && height ? {width, height} : {}),
		...(fps ? {fps} : {}),
		props: {
			...props,
			...mediaHolds(staticHolds(parsed.data.scenes, sceneSettlesAt), parsed.data, fps ?? FPS),
		},
	};
};

export const RemotionRoot: React.FC = () => (
	<Composition
		id="MainComposition"
		component={MainComposition}
		schema={mainCompositionSchema}
		defaultProps={defaultProps}
		calculateMetadata={calculateMetadata}
		durationInFrames={1}
		fps={FPS}
		width={DEFAULT_WIDTH}
		height={DEFAULT_HEIGHT}
	/>
);
