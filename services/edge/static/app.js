// The export page: Connect calls (JSON over POST) and SSE progress, no framework, no build.
// Auth: the HttpOnly session cookie set by POST /login (see services/edge/login.py); the
// page never holds a token itself, so a link cannot sign it into someone else's account.

const $ = (id) => document.getElementById(id);
const TERMINAL = new Set(["STATE_SUCCEEDED", "STATE_FAILED", "STATE_CANCELLED"]);

class RpcError extends Error {
  constructor(body, httpStatus) {
    super(body.message || `HTTP ${httpStatus}`);
    this.code = body.code || "unknown";
    this.reason = body.reason || errorInfoReason(body.details || []);
  }
}

// The reason of a google.rpc.ErrorInfo detail: its debug JSON, or field 1 of its bytes.
function errorInfoReason(details) {
  for (const detail of details) {
    if (detail.type !== "google.rpc.ErrorInfo") continue;
    if (detail.debug && detail.debug.reason) return detail.debug.reason;
    const bytes = Uint8Array.from(atob(detail.value.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    let i = 0;
    while (i < bytes.length) {
      let key = 0, shift = 0, b;
      do { b = bytes[i++]; key |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
      let length = 0; shift = 0;
      if ((key & 7) !== 2) break;
      do { b = bytes[i++]; length |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
      if (key >> 3 === 1) return new TextDecoder().decode(bytes.subarray(i, i + length));
      i += length;
    }
  }
  return "";
}

// One unary RPC with the Connect protocol (JSON).
async function rpc(service, method, message) {
  const headers = { "content-type": "application/json", "connect-protocol-version": "1" };
  const response = await fetch(`/render.v1.${service}/${method}`, {
    method: "POST", headers, body: JSON.stringify(message), credentials: "same-origin",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new RpcError(body, response.status);
  return body;
}

function describe(error) {
  if (!(error instanceof RpcError)) return `Something went wrong: ${error.message}`;
  switch (error.code) {
    case "resource_exhausted": return `Quota reached: ${error.message}`;
    case "invalid_argument": return `These scenes cannot be exported: ${error.message}`;
    case "failed_precondition": return `Not possible now: ${error.message}`;
    case "not_found": return `Render not found: ${error.message}`;
    case "unauthenticated": return `You are not signed in (${error.reason || "no session"}): open the sign-in link again.`;
    case "unavailable": return `The export service is unavailable; try again in a moment. (${error.message})`;
    default: return `${error.code}: ${error.message}`;
  }
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

const shortState = (state) => (state || "STATE_QUEUED").replace("STATE_", "").toLowerCase();
const shortStage = (stage) => (stage || "STAGE_QUEUED").replace("STAGE_", "").toLowerCase();

// --- the render being watched --------------------------------------------------------

let source = null;
let watching = "";
let started = null; // {time, progress} of the first progress seen, for the ETA

function setRenderParam(id) {
  const url = new URL(location.href);
  if (id) url.searchParams.set("render", id); else url.searchParams.delete("render");
  history.replaceState(null, "", url.pathname + url.search);
}

function showBar(percent) {
  $("bar").value = percent;
  $("bar").setAttribute("aria-valuetext", `${percent}%`);
  $("percent").textContent = `${percent}%`;
}

function showProgress(event) {
  const progress = Number(event.progress || 0);
  const percent = Math.floor(progress * 100);
  // Remembered per tab, so a reload shows where the bar was until the snapshot arrives.
  sessionStorage.setItem(`progress:${watching}`, String(percent));
  showBar(percent);
  $("stage").textContent = shortStage(event.stage);
  const total = Number(event.framesTotal || (event.render && event.render.framesTotal) || 0);
  const rendered = Number(event.framesRendered || 0);
  $("frames").textContent = `${rendered} / ${total} frames`;
  const now = performance.now();
  if (!started && progress > 0 && progress < 1) started = { time: now, progress };
  if (started && progress > started.progress && progress < 1) {
    const rate = (progress - started.progress) / (now - started.time);
    $("eta").textContent = `ETA ${Math.max(0, Math.round((1 - progress) / rate / 1000))} s`;
  } else if (progress >= 1) {
    $("eta").textContent = "ETA 0 s";
  }
}

function finish(event) {
  const state = event.state;
  const render = event.render || {};
  $("cancel").disabled = true;
  const total = Number(event.framesTotal || render.framesTotal || 0);
  if (total) $("frames").textContent = `${Number(event.framesRendered || 0)} / ${total} frames`;
  if (state === "STATE_SUCCEEDED") {
    showProgress({ ...event, progress: 1 });
    $("outcome").textContent = "Done: your video is ready.";
    $("download").href = `/v1/renders/${render.renderId || watching}/output`;
    $("download").hidden = false;
  } else if (state === "STATE_FAILED") {
    $("stage").textContent = "failed";
    $("eta").textContent = "ETA —";
    const error = event.error || render.error || {};
    $("outcome").textContent = `Render failed: ${error.message || "unknown error"}${error.reason ? ` (${error.reason})` : ""}`;
  } else {
    $("stage").textContent = "cancelled";
    $("eta").textContent = "ETA —";
    $("outcome").textContent = "Cancelled.";
  }
  stopWatching();
  loadHistory();
}

function stopWatching() {
  if (source) source.close();
  source = null;
}

async function watch(id) {
  stopWatching();
  watching = id;
  started = null;
  $("current").hidden = false;
  $("current-id").textContent = id;
  showBar(Number(sessionStorage.getItem(`progress:${id}`) || 0));
  $("stage").textContent = "queued";
  $("frames").textContent = "0 / 0 frames";
  $("eta").textContent = "ETA —";
  $("outcome").textContent = "";
  $("download").hidden = true;
  $("cancel").disabled = false;
  showError("");
  try {
    await rpc("RenderService", "GetRender", { renderId: id });
  } catch (error) {
    $("current").hidden = true;
    showError(describe(error));
    return;
  }
  setRenderParam(id);
  source = new EventSource(`/v1/renders/${encodeURIComponent(id)}/events`);
  const onEvent = (message) => {
    const event = JSON.parse(message.data);
    if (TERMINAL.has(event.state)) finish(event);
    else { $("outcome").textContent = event.message || ""; showProgress(event); }
  };
  for (const kind of ["snapshot", "event", "gap"]) source.addEventListener(kind, onEvent);
  source.onerror = async () => {
    if (source && source.readyState === EventSource.CLOSED) {
      stopWatching();
      try {
        const { render } = await rpc("RenderService", "GetRender", { renderId: id });
        if (TERMINAL.has(render.state)) finish({ state: render.state, render, error: render.error });
      } catch (error) { showError(describe(error)); }
    } else {
      $("outcome").textContent = "Connection lost; reconnecting…";
    }
  };
}

// --- history -------------------------------------------------------------------------

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content); else td.textContent = content;
  row.append(td);
}

async function loadHistory() {
  let reply;
  try {
    reply = await rpc("RenderService", "ListRenders", { pageSize: 20 });
  } catch (error) { showError(describe(error)); return; }
  const body = $("history").querySelector("tbody");
  body.replaceChildren();
  for (const render of reply.renders || []) {
    const row = document.createElement("tr");
    if (render.thumbnailUrl) {
      const img = document.createElement("img");
      img.src = `/v1/renders/${render.renderId}/thumbnail`;
      img.alt = `Thumbnail of render ${render.renderId}`;
      img.loading = "lazy";
      cell(row, img);
    } else cell(row, "—");
    const link = document.createElement("a");
    link.href = `?render=${render.renderId}`;
    link.textContent = render.renderId.slice(0, 8);
    link.addEventListener("click", (e) => { e.preventDefault(); watch(render.renderId); });
    cell(row, link);
    const state = document.createElement("span");
    state.className = `state-${shortState(render.state)}`;
    state.textContent = shortState(render.state) + (render.error && render.error.message ? `: ${render.error.message}` : "");
    cell(row, state);
    cell(row, describeOutput(render));
    cell(row, render.createTime ? new Date(render.createTime).toLocaleString() : "");
    if (render.outputUrl) {
      const download = document.createElement("a");
      download.href = `/v1/renders/${render.renderId}/output`;
      download.textContent = "Download";
      download.setAttribute("download", "");
      cell(row, download);
    } else cell(row, "");
    body.append(row);
  }
}

// --- export --------------------------------------------------------------------------

async function scenesToExport() {
  const file = $("scenes-file").files[0];
  const text = file ? await file.text() : await (await fetch(`/samples/${encodeURIComponent($("sample").value)}`)).text();
  try { return JSON.parse(text); } catch { throw new Error("the scenes file is not JSON"); }
}

// "mp4 low · 9:16 · 60 fps": the output as the history lists it.
function describeOutput(render) {
  const parts = [`${(render.format || "").replace("FORMAT_", "").toLowerCase()} ${(render.quality || "").replace("QUALITY_", "").toLowerCase()}`];
  if (render.aspectRatio) parts.push(render.aspectRatio.replace("ASPECT_RATIO_", "").replace("_", ":"));
  if (render.fps) parts.push(`${render.fps} fps`);
  return parts.join(" · ");
}

async function startExport(event) {
  event.preventDefault();
  showError("");
  $("export").disabled = true;
  try {
    const spec = await scenesToExport();
    const { render } = await rpc("RenderService", "StartRender", {
      projectId: spec.projectId || "browser",
      scenes: spec.scenes || spec,
      format: $("format").value,
      quality: $("quality").value,
      aspectRatio: $("aspect-ratio").value,
      fps: Number($("fps").value),
      requestId: crypto.randomUUID(),
    });
    await watch(render.renderId);
    loadHistory();
  } catch (error) {
    showError(describe(error));
  } finally {
    $("export").disabled = false;
  }
}

async function cancel() {
  if (!watching) return;
  const id = watching;
  $("cancel").disabled = true;
  // Said before the call: the stream's terminal event may arrive before the call's answer,
  // and "Cancelled." must not be overwritten by a late "Cancelling…".
  $("outcome").textContent = "Cancelling…";
  try {
    await rpc("RenderService", "CancelRender", { renderId: id });
  } catch (error) {
    if (watching === id && source) { // still running: the button stays usable
      $("cancel").disabled = false;
      $("outcome").textContent = "";
    }
    showError(describe(error));
  }
}

async function init() {
  const initial = new URL(location.href).searchParams.get("render");
  if (initial) { // before anything is fetched: a reload shows the bar where it was
    $("current").hidden = false;
    $("current-id").textContent = initial;
    showBar(Number(sessionStorage.getItem(`progress:${initial}`) || 0));
  }
  $("export-form").addEventListener("submit", startExport);
  $("cancel").addEventListener("click", cancel);
  $("refresh").addEventListener("click", loadHistory);
  const samples = await (await fetch("/samples")).json();
  for (const name of samples) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    if (name === "tiny.json") option.selected = true;
    $("sample").append(option);
  }
  const who = await fetch("/v1/session");
  if (!who.ok) {
    $("who").textContent = "Not signed in: open the sign-in link that `make up` printed, or /login.";
    return;
  }
  $("who").textContent = `Signed in as ${(await who.json()).user}`;
  if (initial) watch(initial);
  loadHistory();
}

init();
