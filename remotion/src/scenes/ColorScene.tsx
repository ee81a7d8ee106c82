import React from 'react';
import {AbsoluteFill} from 'remotion';
import type {z} from 'zod';
import type {colorPropsSchema} from '../schema';

export const ColorScene: React.FC<z.infer<typeof colorPropsSchema>> = ({color}) => (
	<AbsoluteFill style={{backgroundColor: color}} />
);
