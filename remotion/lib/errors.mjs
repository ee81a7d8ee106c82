// Maps render failures onto the protocol's {reason, retryable}.

/** Thrown by the host for bad requests (never retryable). */
export class HostError extends Error {
	constructor(reason, message, retryable = false) {
		super(message);
		this.reason = reason;
		this.retryable = retryable;
	}
}

/** Marker thrown by calculateMetadata in src/Root.tsx when inputProps fail the zod schema. */
export const INVALID_PROPS_MARKER = 'INVALID_INPUT_PROPS';

const RULES = [
	// Props / composition problems: the same request will fail again.
	[/INVALID_INPUT_PROPS|ZodError|Could not find composition|No composition with the ID|composition with the id .* (was not found|does not exist)|not registered|Invalid (props|input)|inputProps/i, 'INVALID_INPUT', false],
	// Render options Remotion rejects (codec/extension/crf combinations, ...).
	[/output filename must end in|CRF must be between|not a valid codec|is not a valid (image format|pixel format)|cannot be (set|used) (at the same time|together)/i, 'INVALID_INPUT', false],
	// Media that exists but is broken, or does not exist.
	[/status code (of )?(400|401|403|404|410)|\b(404|403|410)\b.*(Not Found|Forbidden|Gone)|Error loading image|Failed to load (image|video|media)|Invalid data found when processing input|moov atom not found|No video stream|could not be decoded|Unsupported (codec|format)|MEDIA_ERR|decode error|is not a valid (video|image|media)/i, 'ASSET_UNAVAILABLE', false],
	// Transient network errors while fetching assets.
	[/ECONNREFUSED|ECONNRESET|EAI_AGAIN|ENOTFOUND|socket hang up|status code (of )?5\d\d/i, 'ASSET_UNAVAILABLE', true],
	// Out of resources.
	[/ENOSPC|EMFILE|ENFILE|ENOMEM|out of memory|No space left/i, 'RESOURCE_EXHAUSTED', true],
	// Browser gone.
	[/Target closed|Session closed|Browser (closed|has disconnected)|browser has disconnected|Page crashed|crashed|Protocol error|WebSocket is not open|Connection closed|Failed to launch the browser|Execution context was destroyed|Navigation failed/i, 'BROWSER_CRASHED', true],
	// Timeouts (delayRender, navigation, ...).
	[/timed? ?out|timeout|delayRender\(\).*not cleared/i, 'RENDER_TIMEOUT', true],
];

export const classifyError = (err, {cancelled = false, timedOut = false, crashed = false} = {}) => {
	const message = String(err?.message ?? err ?? 'unknown error').replace(/^(Error: )+/, '');
	const stack = typeof err?.stack === 'string' ? err.stack : '';
	if (crashed) return {reason: 'BROWSER_CRASHED', retryable: true, message: 'Chromium died during the render', stack};
	if (timedOut) return {reason: 'RENDER_TIMEOUT', retryable: true, message, stack};
	if (cancelled) return {reason: 'CANCELLED', retryable: false, message, stack};
	if (err instanceof HostError) return {reason: err.reason, retryable: err.retryable, message, stack};
	const haystack = `${message}\n${err?.code ?? ''}`;
	for (const [re, reason, retryable] of RULES) {
		if (re.test(haystack)) return {reason, retryable, message, stack};
	}
	return {reason: 'INTERNAL', retryable: true, message, stack};
};
