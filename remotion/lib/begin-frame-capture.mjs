// Frame capture by HeadlessExperimental.beginFrame instead of Page.captureScreenshot.
//
// Chromium launched with --enable-begin-frame-control and
// --run-all-compositor-stages-before-draw (bin/chromium-begin-frame adds them: Remotion's
// openBrowser takes no extra flags) draws a tab only when it is sent a BeginFrame, and a
// BeginFrame can return a screenshot of the very frame it drew. Page.captureScreenshot
// instead composites the tab once on Chromium's own schedule and once more for the copy.
// Measured on the reference clip (150 frames at 1920x1080, concurrency 2, 2 cores),
// Chromium and Node used 20.8 CPU-s capturing with Page.captureScreenshot and 14.7 CPU-s
// with beginFrame; every frame showed the same picture (see docs in remotion/README.md).
//
// Remotion speaks the DevTools protocol over its transport (send / onmessage); this module
// sits on that transport of a browser the host opened, so Remotion's code is unchanged:
// - Target.createTarget asks for begin-frame control;
// - Page.captureScreenshot becomes HeadlessExperimental.beginFrame with a screenshot, and
//   the reply's `screenshotData` is handed back as `data`; a frame without a screenshot
//   (a tab still starting) is begun again;
// - Target.activateTarget is answered here: activating one tab stops another's frames;
// - begin frames go one at a time per browser: overlapping ones make the GPU process exit
//   ("Got overlapping IssueExternalBeginFrame");
// - a tab waiting on a request (Remotion polls readiness with requestAnimationFrame, pages
//   load, fonts settle) gets a BeginFrame without display updates every PUMP_INTERVAL_MS,
//   and one at once when the request awaits a promise in the page: Remotion's readiness
//   poll after each seek is answered in the next frame, so waiting for the timer's tick
//   (8 ms on average) was most of a seek. Reference clip, 2 rounds of 3 renders alternating:
//   4.62 -> 4.30 s; the 9:16 clip with a soundtrack, whose sound pass only seeks (150
//   frames in 2.6 s alone before, 1.0 s after): 5.72 -> 4.96 s; CPU the same.
// A Chromium without HeadlessExperimental.beginFrame gets the original screenshot request.

const PUMP_INTERVAL_MS = 16;
const MAX_EMPTY_FRAMES = 20;
// A BeginFrame unanswered this long is given up (a hung tab must not stall the others).
const FRAME_TIMEOUT_MS = 60_000;
// Ids of the requests sent here, far above Remotion's own counter (Chromium takes int32).
const FIRST_OWN_ID = 2_000_000_000;
const ID_PREFIX = /^\{"id":(\d+),/;

/** The message's id without parsing a large reply (Chromium writes the id first). */
const messageId = (text) => {
	const match = ID_PREFIX.exec(text);
	if (match) return Number(match[1]);
	if (text.length > 65536) return null;
	try {
		return JSON.parse(text).id ?? null;
	} catch {
		return null;
	}
};

/**
 * One browser's BeginFrame queue: one frame in flight, screenshots before pumps. `fail(request,
 * message)` answers a screenshot that cannot be taken.
 */
const frameQueue = (rawSend, fail) => {
	const queue = {waiting: [], inFlight: null, nextId: FIRST_OWN_ID, own: new Map(), abandoned: new Set()};
	queue.next = () => {
		if (queue.inFlight !== null || queue.waiting.length === 0) return;
		const request = queue.waiting.shift();
		const id = queue.nextId++;
		queue.inFlight = id;
		queue.own.set(id, request);
		request.timer = setTimeout(() => queue.abandon(id, `no reply to a BeginFrame in ${FRAME_TIMEOUT_MS} ms`), FRAME_TIMEOUT_MS);
		request.timer.unref();
		rawSend(JSON.stringify({id, sessionId: request.sessionId, method: 'HeadlessExperimental.beginFrame', params: request.params}));
	};
	queue.push = (request) => {
		if (request.kind === 'shot') {
			const firstPump = queue.waiting.findIndex((r) => r.kind === 'pump');
			queue.waiting.splice(firstPump === -1 ? queue.waiting.length : firstPump, 0, request);
		} else {
			queue.waiting.push(request);
		}
		queue.next();
	};
	/** Whether a frame without display updates is waiting or in flight for the tab. */
	queue.pumping = (sessionId) => {
		const isPump = (r) => r?.kind === 'pump' && r.sessionId === sessionId;
		return queue.waiting.some(isPump) || (queue.inFlight !== null && isPump(queue.own.get(queue.inFlight)));
	};
	/** Whether `id` is one of ours (a reply to it is not Remotion's). */
	queue.owns = (id) => queue.own.has(id) || queue.abandoned.has(id);
	/** The request behind one of our replies, or undefined; frees the queue for the next. */
	queue.settle = (id) => {
		queue.abandoned.delete(id);
		const request = queue.own.get(id);
		if (!request) return undefined;
		clearTimeout(request.timer);
		queue.own.delete(id);
		if (queue.inFlight === id) queue.inFlight = null;
		return request;
	};
	/** Gives up the frame `id` in flight: a late reply to it stays here. */
	queue.abandon = (id, message) => {
		const request = queue.settle(id);
		if (!request) return;
		queue.abandoned.add(id);
		if (request.kind === 'shot') fail(request, message);
		queue.next();
	};
	/** A closed tab: its frames are dropped (Chromium may never answer the one in flight). */
	queue.dropSession = (sessionId) => {
		for (const request of queue.waiting.filter((r) => r.sessionId === sessionId)) {
			if (request.kind === 'shot') fail(request, 'Target closed');
		}
		queue.waiting = queue.waiting.filter((r) => r.sessionId !== sessionId);
		const id = queue.inFlight;
		if (id !== null && queue.own.get(id)?.sessionId === sessionId) queue.abandon(id, 'Target closed');
	};
	return queue;
};

const replyText = (id, sessionId, body) => JSON.stringify({id, sessionId, ...body});

/**
 * Puts begin-frame capture on `browser`'s DevTools transport (a Remotion HeadlessBrowser
 * launched through bin/chromium-begin-frame). `log` reports a fallback once. Returns `{stats}`
 * (frames captured, empty frames begun again, pump frames) and `pumping()`, whether the pump's
 * timer runs.
 */
export const attachBeginFrameCapture = (browser, {log}) => {
	const transport = browser.connection.transport;
	const rawSend = transport.send.bind(transport);
	const deliver = transport.onmessage;
	const toRemotion = (text) => setImmediate(() => deliver(text));
	const fail = (request, message) => {
		const {id, sessionId} = request.original;
		toRemotion(replyText(id, sessionId, {error: {code: -32000, message}}));
	};
	const queue = frameQueue(rawSend, fail);
	const state = {supported: true, closed: false, stats: {captured: 0, emptyFrames: 0, pumpFrames: 0}};
	/** Per session: ids of its requests awaiting a reply (not counting begin frames). */
	const pendingBySession = new Map();
	const sessionOf = new Map();

	/** Queues a frame without display updates for the tab, unless one is waiting or in flight. */
	const pumpFor = (sessionId) => {
		if (sessionId && state.supported && !queue.pumping(sessionId)) {
			queue.push({kind: 'pump', sessionId, params: {noDisplayUpdates: true}});
		}
	};
	// The pump runs only while some tab waits on a request: an idle host wakes for nothing.
	const pump = {timer: null};
	pump.tick = () => {
		let waiting = false;
		for (const [sessionId, pending] of pendingBySession) {
			if (pending.size === 0) continue;
			waiting = true;
			pumpFor(sessionId);
		}
		if (!waiting) pump.stop();
	};
	pump.start = () => {
		if (pump.timer !== null || !state.supported || state.closed) return;
		pump.timer = setInterval(pump.tick, PUMP_INTERVAL_MS);
		pump.timer.unref();
	};
	pump.stop = () => {
		clearInterval(pump.timer);
		pump.timer = null;
	};

	const track = (msg) => {
		if (!msg.sessionId || msg.id === undefined) return;
		if (!pendingBySession.has(msg.sessionId)) pendingBySession.set(msg.sessionId, new Set());
		pendingBySession.get(msg.sessionId).add(msg.id);
		sessionOf.set(msg.id, msg.sessionId);
		pump.start();
	};
	const untrack = (id) => {
		const sessionId = sessionOf.get(id);
		if (sessionId === undefined) return;
		sessionOf.delete(id);
		pendingBySession.get(sessionId)?.delete(id);
	};

	const dropSession = (sessionId) => {
		for (const id of pendingBySession.get(sessionId) ?? []) sessionOf.delete(id);
		pendingBySession.delete(sessionId);
		queue.dropSession(sessionId);
	};

	const capture = (msg) => {
		const {format = 'png', quality, optimizeForSpeed} = msg.params ?? {};
		const screenshot = {format, ...(quality === undefined ? {} : {quality}), ...(optimizeForSpeed ? {optimizeForSpeed} : {})};
		queue.push({kind: 'shot', sessionId: msg.sessionId, original: msg, params: {screenshot}, empty: 0});
	};

	transport.send = (text) => {
		if (!state.supported) return rawSend(text);
		const msg = JSON.parse(text);
		switch (msg.method) {
			case 'Target.createTarget':
				return rawSend(JSON.stringify({...msg, params: {...msg.params, enableBeginFrameControl: true}}));
			case 'Target.activateTarget':
				return toRemotion(replyText(msg.id, msg.sessionId, {result: {}}));
			case 'Page.captureScreenshot':
				return capture(msg);
			default:
				track(msg);
				rawSend(text);
				// A promise the page awaits (Remotion's readiness poll, document.fonts.ready)
				// resolves in a requestAnimationFrame: the tab's frame goes now, not at the next tick.
				if (msg.params?.awaitPromise) pumpFor(msg.sessionId);
		}
	};

	const onShot = (request, text, reply) => {
		const {id, sessionId} = request.original;
		if (text.includes('"screenshotData":')) {
			state.stats.captured++;
			const body = text.replace(ID_PREFIX, `{"id":${id},`).replace('"screenshotData":', '"data":');
			return toRemotion(body);
		}
		if (reply.error && /wasn't found|not found/i.test(reply.error.message ?? '')) {
			state.supported = false;
			pump.stop();
			log(`HeadlessExperimental.beginFrame unavailable (${reply.error.message}); capturing with Page.captureScreenshot`);
			return rawSend(JSON.stringify(request.original));
		}
		if (reply.error) return toRemotion(replyText(id, sessionId, {error: reply.error}));
		state.stats.emptyFrames++;
		if (++request.empty < MAX_EMPTY_FRAMES) return queue.push(request);
		return fail(request, `Unable to capture screenshot: no frame after ${MAX_EMPTY_FRAMES} begin frames`);
	};

	transport.onmessage = (data) => {
		const text = typeof data === 'string' ? data : String(data);
		const id = messageId(text);
		if (id !== null && queue.owns(id)) {
			const request = queue.settle(id);
			if (request) {
				if (request.kind === 'pump') {
					state.stats.pumpFrames++;
				} else {
					// Only the small replies (errors, no screenshot) are parsed.
					onShot(request, text, text.includes('"screenshotData":') ? {} : JSON.parse(text));
				}
			}
			queue.next();
			return;
		}
		if (id !== null) untrack(id);
		else if (text.includes('"method":"Target.detachedFromTarget"')) dropSession(JSON.parse(text).params?.sessionId);
		deliver(text);
	};

	const onclose = transport.onclose;
	transport.onclose = () => {
		state.closed = true;
		pump.stop();
		onclose?.();
	};
	return {stats: state.stats, pumping: () => pump.timer !== null};
};
