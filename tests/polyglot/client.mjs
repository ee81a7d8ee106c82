// A render.v1 client in Node, built from protos/ alone (plus googleapis' public
// google/rpc protos from the google-proto-files package), as a customer would write one.
//
// Environment: RENDER_API_ADDR, PROGRESS_ADDR, RENDER_TOKEN (the user's bearer JWT),
// OTHER_TOKEN (another user's), SOUNDTRACK_URL (an audio file the worker may fetch).
// It runs the whole journey, checks each answer with node:assert and prints one JSON
// object of what it saw on stdout; tests/test_polyglot_client.py runs it.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import googleProtos from "google-proto-files";
import protobuf from "protobufjs";

const here = dirname(fileURLToPath(import.meta.url));
const INCLUDE = [join(here, "..", "..", "protos"), googleProtos.getProtoPath("..")];
const LOADER = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** The two services' clients and a protobufjs root holding google.rpc's messages. */
function load(env) {
  const files = ["render/v1/render_service.proto", "render/v1/progress_service.proto"];
  const definition = protoLoader.loadSync(files, { ...LOADER, includeDirs: INCLUDE });
  const { render } = grpc.loadPackageDefinition(definition);
  const insecure = grpc.credentials.createInsecure();
  const rpcRoot = new protobuf.Root();
  rpcRoot.resolvePath = (_origin, target) =>
    INCLUDE.map((dir) => join(dir, target)).find(existsSync) ?? target;
  rpcRoot.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
  return {
    renders: new render.v1.RenderService(env.RENDER_API_ADDR, insecure),
    progress: new render.v1.ProgressService(env.PROGRESS_ADDR, insecure),
    rpcRoot,
  };
}

function bearer(token) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

function call(client, method, request, token) {
  return new Promise((resolve, reject) => {
    const options = { deadline: Date.now() + 60_000 };
    client[method](request, bearer(token), options, (error, answer) =>
      error ? reject(error) : resolve(answer),
    );
  });
}

async function refused(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("the call succeeded");
}

function scenes() {
  // google.protobuf.Struct in proto-loader's object form: { fields: { name: Value } }.
  const str = (value) => ({ stringValue: value });
  return [
    {
      type: "title",
      duration_in_frames: 25,
      props: { fields: { text: str("Polyglot"), subtitle: str("from Node") } },
      transition: { type: "fade", duration_in_frames: 5 },
    },
    { type: "color", duration_in_frames: 25, props: { fields: { color: str("#336699") } } },
  ];
}

const SRT =
  "\ufeff1\r\n00:00:00,200 --> 00:00:01,000\r\nHello from Node\r\n\r\n" +
  "2\r\n00:00:01,000 --> 00:00:01,700\r\nمرحبا · 你好 · 👋\r\n";

/** A 1:1 720p 25 fps MP4 with music, SRT captions and a poster frame. */
function shapedRequest(soundtrackUrl) {
  return {
    project_id: "polyglot",
    scenes: scenes(),
    format: "FORMAT_MP4",
    quality: "QUALITY_LOW",
    engine: "ENGINE_SSR",
    aspect_ratio: "ASPECT_RATIO_1_1",
    resolution: "RESOLUTION_720P",
    fps: 25,
    video_codec: "VIDEO_CODEC_H264",
    soundtrack: { src: soundtrackUrl, volume: 0.8, fade_in_seconds: 0.2, fade_out_seconds: 0.3 },
    captions: { srt: SRT, style: "CAPTION_STYLE_OUTLINE" },
    poster_frame: 10,
    metadata: { editor: "node" },
  };
}

async function estimate(renders, token, request) {
  const { project_id: _p, poster_frame: _f, metadata: _m, ...fields } = request;
  const answer = await call(renders, "EstimateRender", fields, token);
  assert.deepEqual([answer.width, answer.height, answer.fps], [720, 720, 25]);
  assert.equal(answer.frames_total, "45"); // 25 + 25 - 5; int64 arrives as a string
  assert.equal(answer.engine, "ENGINE_SSR");
  assert.ok(answer.cost.total_usd > 0 && answer.within_budget);
  return answer;
}

function watch(progress, renderId, token) {
  const stream = progress.WatchRender({ render_id: renderId }, bearer(token));
  const events = [];
  return new Promise((resolve, reject) => {
    stream.on("data", (message) => events.push(message.event));
    stream.on("error", reject);
    stream.on("end", () => resolve(events));
  });
}

function checkEvents(events) {
  assert.ok(events.length >= 2, `only ${events.length} events`);
  assert.equal(events[0].kind, "KIND_SNAPSHOT");
  const ids = events.map((event) => event.event_id).filter(Boolean);
  const pair = (id) => id.split("-").map(BigInt);
  for (let i = 1; i < ids.length; i += 1) {
    const [a, b] = [pair(ids[i - 1]), pair(ids[i])];
    assert.ok(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]), `ids ${ids[i - 1]}, ${ids[i]}`);
  }
  const last = events.at(-1);
  assert.equal(last.state, "STATE_SUCCEEDED");
  assert.equal(last.stage, "STAGE_DONE");
  assert.ok(last.render.output_url, "the terminal event carries the render");
  return { count: events.length, kinds: [...new Set(events.map((event) => event.kind))] };
}

/** google.rpc.Status from `grpc-status-details-bin`, its Any details unpacked by type URL. */
function details(error, rpcRoot) {
  const [bin] = error.metadata.get("grpc-status-details-bin");
  assert.ok(Buffer.isBuffer(bin), "grpc-status-details-bin is present");
  const status = rpcRoot.lookupType("google.rpc.Status").decode(bin);
  assert.equal(status.code, error.code);
  const unpacked = {};
  for (const any of status.details) {
    const name = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
    unpacked[name] = rpcRoot.lookupType(name).toObject(rpcRoot.lookupType(name).decode(any.value));
  }
  return unpacked;
}

async function badRequest(renders, token, request, rpcRoot) {
  const wrong = { ...request, request_id: "", fps: 29, width: 1001, height: 720 };
  const error = await refused(call(renders, "StartRender", wrong, token));
  assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
  const found = details(error, rpcRoot);
  const fields = found["google.rpc.BadRequest"].fieldViolations.map((v) => v.field);
  assert.ok(fields.includes("fps"), `violations: ${fields}`);
  assert.ok(fields.includes("width"), `violations: ${fields}`);
  return { code: "INVALID_ARGUMENT", fields, reason: found["google.rpc.ErrorInfo"]?.reason };
}

async function cancelOthers(renders, env, request) {
  const started = await call(renders, "StartRender", { ...request, fps: 24 }, env.RENDER_TOKEN);
  const id = started.render.render_id;
  const error = await refused(
    call(renders, "CancelRender", { render_id: id }, env.OTHER_TOKEN),
  );
  assert.equal(error.code, grpc.status.NOT_FOUND); // as RenderService's comment says
  const cancelled = await call(renders, "CancelRender", { render_id: id }, env.RENDER_TOKEN);
  assert.ok(["STATE_CANCELLED", "STATE_RUNNING"].includes(cancelled.render.state));
  return { other_user: "NOT_FOUND", owner: cancelled.render.state };
}

async function finished(renders, token, renderId) {
  const { render } = await call(renders, "GetRender", { render_id: renderId }, token);
  assert.equal(render.state, "STATE_SUCCEEDED");
  assert.deepEqual([render.width, render.height, render.fps], [720, 720, 25]);
  assert.equal(render.aspect_ratio, "ASPECT_RATIO_1_1");
  assert.equal(render.video_codec, "VIDEO_CODEC_H264");
  assert.equal(render.poster_frame, 10);
  assert.equal(render.client_metadata.editor, "node");
  assert.equal(render.metadata.audio_codec, "aac");
  const vtt = readFileSync(new URL(render.captions_url), "utf8");
  assert.ok(vtt.startsWith("WEBVTT") && vtt.includes("你好"), vtt);
  return {
    output_url: render.output_url,
    thumbnail_url: render.thumbnail_url,
    captions_url: render.captions_url,
    metadata: render.metadata,
    soundtrack: render.soundtrack,
  };
}

async function main(env) {
  const { renders, progress, rpcRoot } = load(env);
  const token = env.RENDER_TOKEN;
  const request = shapedRequest(env.SOUNDTRACK_URL);
  const seen = { estimate: await estimate(renders, token, request) };
  const started = await call(renders, "StartRender", request, token);
  const id = started.render.render_id;
  assert.equal(started.render.state, "STATE_QUEUED");
  seen.watching = watch(progress, id, token);
  seen.bad_request = await badRequest(renders, token, request, rpcRoot);
  seen.cancel = await cancelOthers(renders, env, request);
  seen.events = checkEvents(await seen.watching);
  delete seen.watching;
  seen.render = await finished(renders, token, id);
  renders.close();
  progress.close();
  process.stdout.write(`${JSON.stringify(seen)}\n`);
}

await main(process.env);
