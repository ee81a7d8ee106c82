// lib/begin-frame-capture.mjs on a scripted DevTools transport: what Remotion sends, what
// reaches Chromium, and what Remotion gets back. (The host tests run it on real Chromium.)
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {setImmediate as tick} from 'node:timers/promises';
import {attachBeginFrameCapture} from '../lib/begin-frame-capture.mjs';

/** A transport as Remotion's Connection uses it, recording both directions. */
const scriptedBrowser = () => {
	const sent = [];
	const received = [];
	const transport = {
		send: (text) => sent.push(JSON.parse(text)),
		onmessage: (text) => received.push(JSON.parse(text)),
		onclose: () => {},
	};
	const logs = [];
	const capture = attachBeginFrameCapture({connection: {transport}}, {log: (line) => logs.push(line)});
	const fromChromium = async (msg) => {
		transport.onmessage(JSON.stringify(msg));
		await tick();
	};
	const fromRemotion = async (msg) => {
		transport.send(JSON.stringify(msg));
		await tick();
	};
	const beginFrames = () => sent.filter((m) => m.method === 'HeadlessExperimental.beginFrame');
	return {transport, sent, received, logs, capture, fromChromium, fromRemotion, beginFrames};
};

const screenshot = (id, sessionId) => ({id, sessionId, method: 'Page.captureScreenshot', params: {format: 'jpeg', quality: 90, optimizeForSpeed: true, captureBeyondViewport: true, fromSurface: true}});

test('new tabs ask for begin-frame control; other requests pass unchanged', async () => {
	const b = scriptedBrowser();
	await b.fromRemotion({id: 1, method: 'Target.createTarget', params: {url: 'about:blank'}});
	await b.fromRemotion({id: 2, sessionId: 'S', method: 'Runtime.evaluate', params: {expression: '1'}});
	// (Frames a waiting tab may get meanwhile are another test's subject.)
	assert.deepEqual(b.sent.filter((m) => m.method !== 'HeadlessExperimental.beginFrame'), [
		{id: 1, method: 'Target.createTarget', params: {url: 'about:blank', enableBeginFrameControl: true}},
		{id: 2, sessionId: 'S', method: 'Runtime.evaluate', params: {expression: '1'}},
	]);
	await b.fromChromium({id: 2, result: {result: {value: 1}}, sessionId: 'S'});
	assert.deepEqual(b.received, [{id: 2, result: {result: {value: 1}}, sessionId: 'S'}]);
	b.transport.onclose();
});

test('a screenshot is a BeginFrame; its reply reaches Remotion as a screenshot reply', async () => {
	const b = scriptedBrowser();
	await b.fromRemotion({id: 7, sessionId: 'S', method: 'Target.activateTarget', params: {targetId: 'T'}});
	assert.deepEqual(b.received, [{id: 7, sessionId: 'S', result: {}}], 'activation is answered here');
	await b.fromRemotion(screenshot(8, 'S'));
	const [frame] = b.beginFrames();
	assert.equal(frame.sessionId, 'S');
	assert.deepEqual(frame.params, {screenshot: {format: 'jpeg', quality: 90, optimizeForSpeed: true}});
	await b.fromChromium({id: frame.id, result: {hasDamage: true, screenshotData: 'AAAA'}, sessionId: 'S'});
	assert.deepEqual(b.received.at(-1), {id: 8, result: {hasDamage: true, data: 'AAAA'}, sessionId: 'S'});
	assert.equal(b.capture.stats.captured, 1);
	b.transport.onclose();
});

test('a frame without a screenshot is begun again; one frame at a time across tabs', async () => {
	const b = scriptedBrowser();
	await b.fromRemotion(screenshot(1, 'A'));
	await b.fromRemotion(screenshot(2, 'B'));
	assert.equal(b.beginFrames().length, 1, 'the second tab waits for the first frame');
	await b.fromChromium({id: b.beginFrames()[0].id, result: {hasDamage: false}, sessionId: 'A'});
	// The retry queues behind B's frame, which was already waiting.
	const second = b.beginFrames()[1];
	assert.equal(second.sessionId, 'B');
	await b.fromChromium({id: second.id, result: {hasDamage: true, screenshotData: 'BB'}, sessionId: 'B'});
	const third = b.beginFrames()[2];
	assert.equal(third.sessionId, 'A');
	await b.fromChromium({id: third.id, result: {hasDamage: true, screenshotData: 'AA'}, sessionId: 'A'});
	assert.deepEqual(b.received.map((m) => [m.id, m.result.data]), [[2, 'BB'], [1, 'AA']]);
	assert.equal(b.capture.stats.emptyFrames, 1);
	b.transport.onclose();
});

test('a tab waiting on a request gets frames without display updates until it is answered', async () => {
	const b = scriptedBrowser();
	assert.equal(b.capture.pumping(), false, 'an idle browser has no pump running');
	await b.fromRemotion({id: 3, sessionId: 'S', method: 'Runtime.callFunctionOn', params: {awaitPromise: true}});
	assert.equal(b.capture.pumping(), true);
	await new Promise((r) => setTimeout(r, 60));
	const pumps = b.beginFrames();
	assert.equal(pumps.length, 1, 'one pump frame in flight at a time');
	assert.deepEqual(pumps[0].params, {noDisplayUpdates: true});
	await b.fromChromium({id: pumps[0].id, result: {hasDamage: false}, sessionId: 'S'});
	assert.equal(b.received.length, 0, 'pump replies stay here');
	await new Promise((r) => setTimeout(r, 40));
	assert.ok(b.beginFrames().length >= 2);
	for (const frame of b.beginFrames().slice(1)) await b.fromChromium({id: frame.id, result: {hasDamage: false}, sessionId: 'S'});
	await b.fromChromium({id: 3, result: {result: {value: 'ready'}}, sessionId: 'S'});
	const before = b.beginFrames().length;
	await new Promise((r) => setTimeout(r, 60));
	assert.equal(b.beginFrames().length, before, 'no frames once nothing waits');
	assert.equal(b.capture.pumping(), false, 'and the pump sleeps');
	await b.fromRemotion({id: 4, sessionId: 'S', method: 'Runtime.evaluate', params: {}});
	assert.equal(b.capture.pumping(), true, 'until a tab waits again');
	b.transport.onclose();
	assert.equal(b.capture.pumping(), false);
});

test('a request awaiting a promise in the page gets its frame at once, after the request', async (t) => {
	t.mock.timers.enable({apis: ['setInterval']}); // no timer ticks: only the frames asked at once
	const b = scriptedBrowser();
	await b.fromRemotion({id: 3, sessionId: 'S', method: 'Runtime.evaluate', params: {expression: '1'}});
	assert.equal(b.beginFrames().length, 0, 'a plain request waits for the timer');
	await b.fromRemotion({id: 4, sessionId: 'S', method: 'Runtime.callFunctionOn', params: {awaitPromise: true}});
	assert.deepEqual(b.sent.slice(-2).map((m) => m.method), ['Runtime.callFunctionOn', 'HeadlessExperimental.beginFrame']);
	assert.deepEqual(b.beginFrames()[0].params, {noDisplayUpdates: true});
	await b.fromRemotion({id: 5, sessionId: 'S', method: 'Runtime.evaluate', params: {awaitPromise: true}});
	assert.equal(b.beginFrames().length, 1, 'one pump frame per tab waiting or in flight');
	await b.fromRemotion(screenshot(6, 'T'));
	await b.fromRemotion({id: 7, sessionId: 'T', method: 'Runtime.evaluate', params: {awaitPromise: true}});
	await b.fromChromium({id: b.beginFrames()[0].id, result: {hasDamage: false}, sessionId: 'S'});
	assert.equal(b.beginFrames()[1].params.screenshot?.format, 'jpeg', "another tab's screenshot goes first");
	await b.fromChromium({id: b.beginFrames()[1].id, result: {hasDamage: true, screenshotData: 'TT'}, sessionId: 'T'});
	assert.deepEqual(b.beginFrames()[2], {...b.beginFrames()[2], sessionId: 'T', params: {noDisplayUpdates: true}});
	b.transport.onclose();
});

test('a frame unanswered for a minute is given up; the next tab goes on', {timeout: 5000}, async (t) => {
	t.mock.timers.enable({apis: ['setTimeout', 'setInterval']});
	const b = scriptedBrowser();
	await b.fromRemotion(screenshot(1, 'A'));
	await b.fromRemotion(screenshot(2, 'B'));
	const hung = b.beginFrames()[0];
	t.mock.timers.tick(60_000);
	await tick();
	assert.deepEqual(b.received[0], {id: 1, sessionId: 'A', error: {code: -32000, message: 'no reply to a BeginFrame in 60000 ms'}});
	assert.equal(b.beginFrames()[1].sessionId, 'B');
	await b.fromChromium({id: hung.id, result: {hasDamage: true, screenshotData: 'late'}, sessionId: 'A'});
	assert.equal(b.received.length, 1, 'the late reply stays here');
	b.transport.onclose();
});

test('a tab that closes with its frame in flight frees the queue and fails its screenshots', async () => {
	const b = scriptedBrowser();
	await b.fromRemotion(screenshot(1, 'A'));
	await b.fromRemotion(screenshot(2, 'B'));
	const lost = b.beginFrames()[0];
	await b.fromChromium({method: 'Target.detachedFromTarget', params: {sessionId: 'A', targetId: 'TA'}});
	assert.equal(b.received[0].method, 'Target.detachedFromTarget');
	assert.deepEqual(b.received[1], {id: 1, sessionId: 'A', error: {code: -32000, message: 'Target closed'}});
	assert.equal(b.beginFrames()[1].sessionId, 'B', 'the next tab is not blocked');
	await b.fromChromium({id: lost.id, error: {code: -32001, message: 'Session closed'}});
	assert.equal(b.received.length, 2, 'a late reply to the dropped frame stays here');
	b.transport.onclose();
});

test('without HeadlessExperimental.beginFrame the original screenshot request is sent', async () => {
	const b = scriptedBrowser();
	await b.fromRemotion(screenshot(5, 'S'));
	await b.fromChromium({id: b.beginFrames()[0].id, error: {code: -32601, message: "'HeadlessExperimental.beginFrame' wasn't found"}, sessionId: 'S'});
	assert.deepEqual(b.sent.at(-1), screenshot(5, 'S'));
	assert.match(b.logs[0], /beginFrame unavailable/);
	await b.fromRemotion(screenshot(6, 'S'));
	assert.deepEqual(b.sent.at(-1), screenshot(6, 'S'), 'and from then on');
	b.transport.onclose();
});
