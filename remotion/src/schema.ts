/**
 * The scene catalogue. These zod schemas are the single source of truth:
 * `npm run schema` turns them into catalogue/scenes.schema.json, which the
 * Python side validates scenes against. Scene type names and field names
 * are a public contract.
 */
import {z} from 'zod';
import {captionsSchema, soundtrackSchema} from './media/schema';

export const MAX_SCENE_FRAMES = 108000; // one hour at 30 fps
export const MAX_SCENES = 500;

/**
 * CSS colour: hex (#rgb, #rgba, #rrggbb, #rrggbbaa), rgb()/rgba()/hsl()/hsla()
 * functional notation or a named colour. Deliberately restrictive so that
 * nothing like url(...) can reach a style attribute.
 */
export const CSS_COLOR_PATTERN =
	/^(#[0-9a-fA-F]{3,4}|#[0-9a-fA-F]{6}|#[0-9a-fA-F]{8}|(rgb|rgba|hsl|hsla)\([0-9.,%\s/+-]*\)|[a-zA-Z]{3,30})$/;

/** http(s) URL without whitespace (the Python side rewrites prefetched assets to the host's asset server). */
export const MEDIA_URL_PATTERN = /^https?:\/\/[^\s]+$/;

const cssColor = () =>
	z
		.string()
		.max(100)
		.regex(CSS_COLOR_PATTERN)
		.describe('CSS colour: #hex, rgb()/rgba()/hsl()/hsla() or a named colour');

/** Kinds of media a scene prop can point at; `asset(kind)` marks such a prop. */
export const ASSET_KINDS = ['image', 'video', 'audio'] as const;
export type AssetKind = (typeof ASSET_KINDS)[number];

/**
 * A prop that is the URL of an asset (image, video, audio). It exports to JSON Schema as
 * `format: "uri"` plus `x-asset: "<kind>"`, and that mark is the ONLY thing the Python side
 * uses to tell assets from text: render_api checks marked URLs at intake, the SSR engine
 * prefetches exactly the marked props and the Lambda engine checks exactly those. Every
 * other string is text, whatever it holds ("Note: ...", "12:30", a URL in a caption).
 */
export const asset = (kind: AssetKind) =>
	z
		.string()
		.min(1)
		.max(4096)
		.regex(MEDIA_URL_PATTERN)
		.meta({format: 'uri', 'x-asset': kind, description: `http(s) URL of the ${kind}`});

const fit = () =>
	z.enum(['cover', 'contain']).describe('How the media fills the frame (default cover)');

export const transitionSchema = z
	.strictObject({
		type: z.enum(['fade', 'slide', 'wipe']),
		durationInFrames: z.number().int().min(1).max(MAX_SCENE_FRAMES),
	})
	.describe(
		'Transition into the next scene. Ignored on the last scene. Clamped so it never exceeds the remaining part of this scene or the length of the next one.',
	);

const durationInFrames = () =>
	z.number().int().min(1).max(MAX_SCENE_FRAMES).describe("Length of the scene in frames at the render's frame rate");

export const titlePropsSchema = z.strictObject({
	text: z.string().min(1).max(200),
	subtitle: z.string().max(300).optional(),
	color: cssColor().optional().describe('Text colour (default white)'),
	background: cssColor().optional().describe('Background colour (default dark slate)'),
});

export const textPropsSchema = z.strictObject({
	text: z.string().min(1).max(2000),
	color: cssColor().optional().describe('Text colour (default white)'),
	background: cssColor().optional().describe('Background colour (default dark slate)'),
});

export const imagePropsSchema = z.strictObject({
	src: asset('image'),
	fit: fit().optional(),
});

export const videoPropsSchema = z.strictObject({
	src: asset('video'),
	fit: fit().optional(),
	muted: z.boolean().optional().describe('Drop the clip audio (default false)'),
	volume: z
		.number()
		.min(0)
		.max(2)
		.optional()
		.describe('Loudness of the clip audio from 0 (silent) to 2 (default 1, as recorded)'),
});

export const colorPropsSchema = z.strictObject({
	color: cssColor(),
});

export const gradientPropsSchema = z.strictObject({
	from: cssColor(),
	to: cssColor(),
});

const scene = <T extends string, P extends z.ZodType>(type: T, props: P) =>
	z.strictObject({
		type: z.literal(type),
		durationInFrames: durationInFrames(),
		props,
		transition: transitionSchema.optional(),
	});

export const titleSceneSchema = scene('title', titlePropsSchema);
export const textSceneSchema = scene('text', textPropsSchema);
export const imageSceneSchema = scene('image', imagePropsSchema);
export const videoSceneSchema = scene('video', videoPropsSchema);
export const colorSceneSchema = scene('color', colorPropsSchema);
export const gradientSceneSchema = scene('gradient', gradientPropsSchema);

export const sceneSchema = z.discriminatedUnion('type', [
	titleSceneSchema,
	textSceneSchema,
	imageSceneSchema,
	videoSceneSchema,
	colorSceneSchema,
	gradientSceneSchema,
]);

export const SCENE_TYPES = ['title', 'text', 'image', 'video', 'color', 'gradient'] as const;

export const mainCompositionSchema = z.object({
	projectId: z.string().min(1).max(200),
	scenes: z.array(sceneSchema).min(1).max(MAX_SCENES),
	/** Music under the whole video (src/media). */
	soundtrack: soundtrackSchema.optional(),
	/** Captions to burn in (the .vtt sidecar is written by the worker). */
	captions: captionsSchema.optional(),
	/** The output's size and frame rate (the server resolves them; Root.tsx's defaults otherwise). */
	width: z.number().int().min(2).max(7680).optional(),
	height: z.number().int().min(2).max(7680).optional(),
	fps: z.number().int().min(1).max(60).optional(),
	/** No background behind the scenes: what they leave uncovered stays see-through. */
	transparent: z.boolean().optional(),
	/** Output of calculateMetadata (see timeline.ts, staticHolds); any input value is replaced. */
	staticHolds: z.array(z.tuple([z.number().int(), z.number().int()])).optional(),
	/** Output of calculateMetadata: skipping the holds would shift the soundtrack (src/media/cues.ts). */
	holdsShiftSound: z.boolean().optional(),
});

export type Scene = z.infer<typeof sceneSchema>;
export type SceneType = Scene['type'];
export type SceneTransition = z.infer<typeof transitionSchema>;
export type MainCompositionProps = z.infer<typeof mainCompositionSchema>;
