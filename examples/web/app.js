// Classifies a photo with an exported keras_googlenet .tflite, using MediaPipe
// Tasks for Web. Everything is served from this folder: the wasm files come
// from node_modules, never from a CDN.
import { FilesetResolver, ImageClassifier } from "./node_modules/@mediapipe/tasks-vision/vision_bundle.mjs";

const WASM = new URL("node_modules/@mediapipe/tasks-vision/wasm", location.href).href;
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

// What the page has done, for scripts and tests (an element id would shadow a
// window property, so the state lives in one object of its own).
const state = (window.googlenetResults = {
  state: "loading", error: null, model: null, delegate: null, inputSize: null, images: [],
});

let fileset = null;
let classifier = null;
let modelBytes = null;

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function fail(error) {
  state.state = "error";
  state.error = String(error && error.message ? error.message : error);
  setStatus(state.error, true);
}

// The model's input height from the .tflite flatbuffer (Model.subgraphs[0],
// its first input tensor's shape [1, height, width, 3]): MediaPipe does not
// say it, and the centre crop depends on it as evaluate's does.
function inputSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (at) => view.getUint32(at, true);
  const field = (table, index) => {
    const vtable = table - view.getInt32(table, true);
    const slot = 4 + 2 * index;
    const offset = slot < view.getUint16(vtable, true) ? view.getUint16(vtable + slot, true) : 0;
    return offset ? table + offset : 0;
  };
  const deref = (at) => at + u32(at);
  const element = (vector, i, width = 4) => vector + 4 + width * i;
  const model = u32(0);
  const subgraph = deref(element(deref(field(model, 2)), 0));
  const input = view.getInt32(element(deref(field(subgraph, 1)), 0), true);
  const tensor = deref(element(deref(field(subgraph, 0)), input));
  return view.getInt32(element(deref(field(tensor, 0)), 1), true);
}

// Python's round(): half to even, as evaluate's sizes are computed.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// augment.eval_transform as a region of interest: the shorter side resized to
// size * 256 / 224, then the size x size centre; here in [0, 1] coordinates of
// the original image, so MediaPipe crops and resizes once.
export function centreCrop(width, height, size) {
  const target = roundHalfEven((size * 256) / 224);
  const shorter = Math.min(width, height);
  const span = (length) => {
    const resized = Math.max(target, roundHalfEven((length * target) / shorter));
    const start = Math.floor((resized - size) / 2);
    return [start / resized, (start + size) / resized];
  };
  const [top, bottom] = span(height);
  const [left, right] = span(width);
  return { left, top, right, bottom };
}

async function loadModel(bytes, name) {
  const delegate = $("delegate").value;
  state.state = "loading";
  setStatus(`Loading ${name} (${delegate})…`);
  try {
    fileset ??= await FilesetResolver.forVisionTasks(WASM);
    if (classifier) classifier.close();
    classifier = null;
    const size = inputSize(bytes);
    classifier = await ImageClassifier.createFromOptions(fileset, {
      baseOptions: { modelAssetBuffer: bytes, delegate },
      maxResults: -1, // every class: the page shows five, scripts get all
      runningMode: "IMAGE",
    });
    modelBytes = bytes;
    Object.assign(state, { state: "ready", error: null, model: name, delegate, inputSize: size });
    $("model-name").textContent = `${name}: ${size} x ${size} input, ${delegate} delegate`;
    setStatus("Ready: pick or drop a photo.");
  } catch (error) {
    fail(error);
  }
}

async function loadModelUrl(url) {
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`Could not load the model ${url}: HTTP ${response.status}. Pass ?model=path/to/file.tflite or pick a file.`);
    await loadModel(new Uint8Array(await response.arrayBuffer()), url);
  } catch (error) {
    fail(error);
  }
}

function draw(source, width, height, roi) {
  const canvas = $("photo");
  const scale = Math.min(1, 320 / Math.max(width, height));
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  const context = canvas.getContext("2d");
  context.drawImage(source, 0, 0, canvas.width, canvas.height);
  context.strokeStyle = "#fc0";
  context.lineWidth = 2;
  context.strokeRect(roi.left * canvas.width, roi.top * canvas.height,
    (roi.right - roi.left) * canvas.width, (roi.bottom - roi.top) * canvas.height);
}

function showTop5(categories) {
  const list = $("top5");
  list.replaceChildren();
  for (const { categoryName, index, score } of categories.slice(0, 5)) {
    const item = document.createElement("li");
    const label = document.createElement("div");
    label.className = "name";
    const name = document.createElement("span");
    name.textContent = categoryName || `class ${index}`;
    const value = document.createElement("span");
    value.textContent = `${(100 * score).toFixed(1)}%`;
    label.append(name, value);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${(100 * score).toFixed(1)}%`;
    item.append(label, bar);
    list.append(item);
  }
}

function classify(source, width, height, name) {
  if (!classifier) return fail("No model is loaded yet.");
  try {
    const roi = centreCrop(width, height, state.inputSize);
    const result = classifier.classify(source, { regionOfInterest: roi });
    const categories = result.classifications[0].categories.map(({ index, score, categoryName }) => ({ index, score, categoryName }));
    draw(source, width, height, roi);
    showTop5(categories);
    state.images.push({ name, width, height, roi, categories });
    setStatus(`${name}: ${categories[0].categoryName || categories[0].index}`);
  } catch (error) {
    fail(error);
  }
}

async function classifyFile(file) {
  // No colour-space conversion: the model gets the file's pixels, as predict does.
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  classify(bitmap, bitmap.width, bitmap.height, file.name);
  bitmap.close();
}

$("image-file").addEventListener("change", (event) => {
  if (event.target.files[0]) classifyFile(event.target.files[0]).catch(fail);
  event.target.value = ""; // the same file again fires "change" again
});
$("model-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (file) await loadModel(new Uint8Array(await file.arrayBuffer()), file.name);
});
$("delegate").addEventListener("change", () => modelBytes && loadModel(modelBytes, state.model));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (file) classifyFile(file).catch(fail);
});
$("camera").addEventListener("click", async () => {
  try {
    $("video").srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    $("video").style.display = "block";
    $("snap").hidden = false;
  } catch (error) {
    fail(`No camera: ${error.message}`);
  }
});
$("snap").addEventListener("click", () => {
  const video = $("video");
  classify(video, video.videoWidth, video.videoHeight, "camera frame");
});

$("delegate").value = params.get("delegate") === "GPU" ? "GPU" : "CPU";
loadModelUrl(params.get("model") || "model.tflite");
