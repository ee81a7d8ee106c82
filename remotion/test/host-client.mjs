// Minimal client for render-host.mjs used by the tests and scripts/bench.mjs.
import {spawn} from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import {fileURLToPath} from 'node:url';

export const REMOTION_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

export const startHost = ({env = {}, stderr = 'inherit'} = {}) => {
	const child = spawn(process.execPath, [path.join(REMOTION_DIR, 'render-host.mjs')], {
		cwd: REMOTION_DIR,
		env: {...process.env, ...env},
		stdio: ['pipe', 'pipe', stderr],
	});
	const messages = [];
	const waiters = new Set();
	const rawLines = [];
	const rl = readline.createInterface({input: child.stdout});
	rl.on('line', (line) => {
		rawLines.push(line);
		let msg;
		try {
			msg = JSON.parse(line);
		} catch {
			msg = {type: '__unparsable__', line};
		}
		messages.push(msg);
		for (const w of [...waiters]) {
			if (w.pred(msg)) {
				waiters.delete(w);
				clearTimeout(w.timer);
				w.resolve(msg);
			}
		}
	});
	let exitInfo = null;
	const exited = new Promise((resolve) =>
		child.on('exit', (code, signal) => {
			exitInfo = {code, signal};
			for (const w of [...waiters]) {
				waiters.delete(w);
				clearTimeout(w.timer);
				w.reject(new Error(`host exited (${JSON.stringify(exitInfo)}) while waiting; last messages ${JSON.stringify(messages.slice(-5))}`));
			}
			resolve(exitInfo);
		}),
	);
	const waitFor = (pred, timeoutMs = 60000) => {
		const found = messages.find(pred);
		if (found) return Promise.resolve(found);
		if (exitInfo) return Promise.reject(new Error(`host already exited (${JSON.stringify(exitInfo)})`));
		return new Promise((resolve, reject) => {
			const w = {pred, resolve, reject};
			w.timer = setTimeout(() => {
				waiters.delete(w);
				reject(new Error(`timed out waiting for message; got ${JSON.stringify(messages.slice(-5))}`));
			}, timeoutMs);
			waiters.add(w);
		});
	};
	const send = (msg) => child.stdin.write(`${JSON.stringify(msg)}\n`);
	const finished = (id, timeoutMs) =>
		waitFor((m) => m.id === id && (m.type === 'done' || m.type === 'error'), timeoutMs);
	return {child, messages, rawLines, waitFor, send, finished, exited};
};
