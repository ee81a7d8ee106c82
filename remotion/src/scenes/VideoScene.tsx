import React from 'react';
import {AbsoluteFill, OffthreadVideo} from 'remotion';
import type {z} from 'zod';
import type {videoPropsSchema} from '../schema';

export const VideoScene: React.FC<z.infer<typeof videoPropsSchema>> = ({src, fit, muted, volume}) => {
	return (
		<AbsoluteFill>
			<OffthreadVideo
				src={src}
				muted={muted ?? false}
				volume={volume ?? 1}
				style={{width: '100%', height: '100%', objectFit: fit ?? 'cover'}}
			/>
		</AbsoluteFill>
	);
};
