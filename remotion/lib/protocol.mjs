// The render host's side of the JSON-lines protocol: protocol/host-protocol.schema.json
// (the one description of it, also read by the worker) compiled into the render request
// validator, and the error messages the host sends.
import {readFileSync} from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import {HostError} from './errors.mjs';

export const SCHEMA = JSON.parse(readFileSync(new URL('../protocol/host-protocol.schema.json', import.meta.url), 'utf8'));

/** The values of one of the schema's enums ($defs/codec, $defs/x264Preset, ...). */
export const enumOf = (name) => SCHEMA.$defs[name].enum;

export const DEFAULT_CODEC = SCHEMA.$defs.codec.default;
export const DEFAULT_IMAGE_FORMAT = SCHEMA.$defs.imageFormat.default;

const ajv = new Ajv2020({allErrors: true, allowUnionTypes: true, strictTypes: false});
ajv.addVocabulary(['x-error']);
ajv.addSchema(SCHEMA);
const validateRender = ajv.getSchema(`${SCHEMA.$id}#/$defs/render`);
const validateHostMessage = ajv.getSchema(`${SCHEMA.$id}#/$defs/hostMessage`);
const RENDER = SCHEMA.$defs.render;
const FIELDS = Object.keys(RENDER.properties);

/** The enum a property takes its values from, if any ({"$ref": "#/$defs/<name>"} inside). */
const enumName = (property) => /"#\/\$defs\/([A-Za-z0-9]+)"/.exec(JSON.stringify(property))?.[1];

const messageFor = (field, keyword, codec) => {
	if (keyword === 'multipleOf') return RENDER.else.properties[field]['x-error'].replace('{codec}', codec);
	const property = RENDER.properties[field];
	const values = SCHEMA.$defs[enumName(property)]?.enum;
	if (values) return `${field} must be one of ${values.join(', ')}`;
	return property['x-error'];
};

// The refused field, and whether the error is the "even" rule (reported after the field's others).
const fieldOf = (error) =>
	error.keyword === 'required' ? error.params.missingProperty : error.instancePath.split('/')[1];

/**
 * Checks a render request against the schema; returns its codec (default h264).
 * Throws HostError INVALID_INPUT naming the first refused field, fields in the
 * schema's order.
 */
export const validateRequest = (req) => {
	const codec = req.codec ?? DEFAULT_CODEC;
	if (validateRender(req)) return codec;
	const ranked = validateRender.errors
		.map((e) => ({field: fieldOf(e), keyword: e.keyword}))
		.filter((e) => FIELDS.includes(e.field) && e.keyword !== 'if')
		.map((e) => ({...e, rank: FIELDS.indexOf(e.field) * 2 + (e.keyword === 'multipleOf' ? 1 : 0)}))
		.sort((a, b) => a.rank - b.rank);
	const first = ranked[0];
	throw new HostError('INVALID_INPUT', first ? messageFor(first.field, first.keyword, codec) : ajv.errorsText(validateRender.errors));
};

/** True when a message the host sends matches the schema (used by the tests). */
export const isHostMessage = (msg) => validateHostMessage(msg);

/** The protocol's error object. */
export const hostError = (reason, message, retryable, stack = '') => ({reason, message, stack, retryable});

/** An `error` message refusing a request outright (nothing started). */
export const refusal = (id, reason, message, retryable = false) => ({type: 'error', id, error: hostError(reason, message, retryable)});
