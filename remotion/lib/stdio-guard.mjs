// Imported first by render-host.mjs: stdout belongs to the JSON-lines protocol,
// so anything else that writes to it (console.log, Remotion's logger, ...) is
// sent to stderr instead. `protocolWrite` is the only way to reach stdout.
export const protocolWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, encoding, cb) => process.stderr.write(chunk, encoding, cb);
for (const level of ['log', 'info', 'debug', 'warn']) {
	console[level] = (...args) => console.error(...args);
}
