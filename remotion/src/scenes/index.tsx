import React from 'react';
import type {Scene} from '../schema';
import {ColorScene} from './ColorScene';
import {GradientScene} from './GradientScene';
import {ImageScene} from './ImageScene';
import {TextScene} from './TextScene';
import {TitleScene} from './TitleScene';
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
