import type {CaptionStyle} from './schema';

/** Font weights of the caption styles (the bundle's fonts have a regular and a bold face). */
export const CAPTION_WEIGHTS: Record<CaptionStyle, number> = {boxed: 600, outline: 800, bar: 500};
