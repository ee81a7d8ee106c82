/**
 * The composition's inputs besides the scenes: music under the whole video and a caption
 * track to burn in. The Python side validates the request (services/render_api/
 * validation_media.py) and builds these props (services/render_worker/media.py).
 */
import {z} from 'zod';

export const MAX_VOLUME = 2;
export const CAPTION_STYLES = ['boxed', 'outline', 'bar'] as const;

export const soundtrackSchema = z.strictObject({
	src: z.string().min(1).max(4096).regex(/^https?:\/\/[^\s]+$/),
	volume: z.number().min(0).max(MAX_VOLUME),
	fadeInSeconds: z.number().min(0),
	fadeOutSeconds: z.number().min(0),
	startFromSeconds: z.number().min(0),
	loop: z.boolean(),
});

export const captionCueSchema = z.strictObject({
	start: z.number().min(0),
	end: z.number().min(0),
	text: z.string().max(500),
});

export const captionsSchema = z.strictObject({
	cues: z.array(captionCueSchema).max(2000),
	style: z.enum(CAPTION_STYLES),
});

export type SoundtrackProps = z.infer<typeof soundtrackSchema>;
export type CaptionCue = z.infer<typeof captionCueSchema>;
export type CaptionsProps = z.infer<typeof captionsSchema>;
export type CaptionStyle = CaptionsProps['style'];
