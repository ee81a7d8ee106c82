import React from 'react';
import type {TextRun} from '../fonts';
import type {Scene} from '../schema';
import {SUBTITLE_WEIGHT, TEXT_WEIGHT, TITLE_WEIGHT} from './common';
import {ColorScene} from './ColorScene';
import {GradientScene} from './GradientScene';
import {IMAGE_FADE_IN, ImageScene} from './ImageScene';
import {TEXT_SETTLES_AT, TextScene} from './TextScene';
import {TitleScene, titleSettlesAt} from './TitleScene';
import {VideoScene} from './VideoScene';

export const SceneView: React.FC<{scene: Scene}> = ({scene}) => {
	switch (scene.type) {
		case 'title':
			return <TitleScene {...scene.props} />;
		case 'text':
			return <TextScene {...scene.props} />;
		case 'image':
			return <ImageScene {...scene.props} durationInFrames={scene.durationInFrames} />;
		case 'video':
			return <VideoScene {...scene.props} />;
		case 'color':
			return <ColorScene {...scene.props} />;
		case 'gradient':
			return <GradientScene {...scene.props} durationInFrames={scene.durationInFrames} />;
		default: {
			const unknownScene: never = scene;
			throw new Error(`Unknown scene type: ${JSON.stringify(unknownScene)}`);
		}
	}
};

/**
 * First scene frame from which the scene looks the same on every frame (until it ends),
 * or null if it keeps moving: gradients turn, covering images zoom, videos play. The renderer
 * captures one frame of such a hold and repeats it (see timeline.ts, staticHolds).
 */
export const sceneSettlesAt = (scene: Scene): number | null => {
	switch (scene.type) {
		case 'title':
			return titleSettlesAt(scene.props);
		case 'text':
			return TEXT_SETTLES_AT;
		case 'color':
			return 0;
		case 'image':
			return scene.props.fit === 'contain' ? IMAGE_FADE_IN : null;
		case 'video':
		case 'gradient':
			return null;
		default: {
			const unknownScene: never = scene;
			throw new Error(`Unknown scene type: ${JSON.stringify(unknownScene)}`);
		}
	}
};

/** The text a scene draws, with its font weight (which font faces the page must load). */
export const sceneTextRuns = (scene: Scene): TextRun[] => {
	switch (scene.type) {
		case 'title':
			return [
				{weight: TITLE_WEIGHT, text: scene.props.text},
				{weight: SUBTITLE_WEIGHT, text: scene.props.subtitle ?? ''},
			];
		case 'text':
			return [{weight: TEXT_WEIGHT, text: scene.props.text}];
		case 'color':
		case 'image':
		case 'video':
		case 'gradient':
			return [];
		default: {
			const unknownScene: never = scene;
			throw new Error(`Unknown scene type: ${JSON.stringify(unknownScene)}`);
		}
	}
};
