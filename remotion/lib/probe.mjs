// Probes a rendered file with the ffprobe binary that ships with @remotion/renderer
// (@remotion/compositor-<platform>), via RenderInternals.callFf which sets up the
// shared libraries next to it.
import {stat} from 'node:fs/promises';
import {RenderInternals} from '@remotion/renderer';

const parseRate = (r) => {
	if (!r || typeof r !== 'string') return null;
	const [n, d] = r.split('/').map(Number);
	if (!d || !Number.isFinite(n / d) || n === 0) return null;
	return Math.round((n / d) * 1000) / 1000;
};

export const probeFile = async (file) => {
	const proc = RenderInternals.callFf({
		bin: 'ffprobe',
		args: ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file],
		indent: false,
		logLevel: 'error',
		binariesDirectory: null,
		cancelSignal: undefined,
	});
	const {stdout} = await proc;
	const info = JSON.parse(stdout);
	const video = (info.streams ?? []).find((s) => s.codec_type === 'video') ?? {};
	const audio = (info.streams ?? []).find((s) => s.codec_type === 'audio');
	const format = info.format ?? {};
	const sizeBytes = (await stat(file)).size;
	const durationSec = Number(format.duration ?? video.duration ?? 0) || 0;
	const bitrate =
		Number(format.bit_rate) || (durationSec > 0 ? Math.round((sizeBytes * 8) / durationSec) : 0);
	return {
		durationSec: Math.round(durationSec * 1000) / 1000,
		width: video.width ?? null,
		height: video.height ?? null,
		fps: parseRate(video.avg_frame_rate) ?? parseRate(video.r_frame_rate),
		codec: video.codec_name ?? null,
		bitrate,
		sizeBytes,
		audioCodec: audio?.codec_name ?? null,
		audioSampleRate: Number(audio?.sample_rate) || null,
		audioChannels: audio?.channels ?? null,
		pixelFormat: video.pix_fmt ?? null,
	};
};
