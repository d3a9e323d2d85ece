// The training loop of index.html: onnxruntime-web runs the training step onnxforge exported (README:
// "Train from any runtime"). Same contract as in Node: run the companion model once for the state, feed the
// batch + learning rate + state, and each output "<input>:new" becomes that input's next value.
import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;  // no CDN
ort.env.wasm.numThreads = 1;   // threads need a cross-origin-isolated page; one thread keeps it plain static files
const params = new URLSearchParams(location.search);
const folder = params.get("folder") ?? "build";
const batch = Number(params.get("batch") ?? 32), trainCount = Number(params.get("train") ?? 512);
const steps = Number(params.get("steps") ?? Math.floor(trainCount / batch) * Number(params.get("epochs") ?? 2));
const $ = (id) => document.getElementById(id);

// The page reports its outcome in window.onnxforgeResult (what tests/test_js_runtimes.py reads).
main().then((result) => { window.onnxforgeResult = result; },
  (error) => { $("status").textContent = `failed: ${error}`; window.onnxforgeResult = { error: String(error) }; });

async function main() {
  const open = (name) => ort.InferenceSession.create(`${folder}/${name}.onnx`, { executionProviders: ["wasm"] });
  const [step, init, predict] = await Promise.all(["train_step", "train_step.init", "predict"].map(open));
  const header = await (await fetch(`${folder}/digits.json`)).json();
  const bytes = new Uint8Array(await (await fetch(`${folder}/digits.bin`)).arrayBuffer());
  const view = ({ offset, length }) => bytes.subarray(offset, offset + length);
  const pixels = (part, start, n) => view(header[part].images).subarray(start * 784, (start + n) * 784);
  const images = (part, start, n) =>
    new ort.Tensor("float32", Float32Array.from(pixels(part, start, n), (v) => v / 255), [n, 28, 28, 1]);
  const labels = (part, start, n) => view(header[part].labels).subarray(start, start + n);

  const state = await init.run({});                       // no inputs: every state input's first value, by name
  const batchInputs = step.inputNames.filter((n) => !(n in state) && n !== "learning_rate");
  const target = batchInputs.find((n) => n.startsWith("target/"));
  const weight = batchInputs.find((n) => n.startsWith("sample_weight/"));
  const data = batchInputs.find((n) => n !== target && n !== weight);

  const losses = [];
  $("progress").max = steps;
  const started = performance.now();
  for (let k = 0; k < steps; k++) {
    const start = (k % Math.floor(Math.min(trainCount, header.train.labels.length) / batch)) * batch;
    const out = await step.run({ ...state, [data]: images("train", start, batch),
      [target]: new ort.Tensor("int64", BigInt64Array.from(labels("train", start, batch), BigInt), [batch]),
      [weight]: new ort.Tensor("float32", new Float32Array(batch).fill(1), [batch]),
      learning_rate: new ort.Tensor("float32", [0.001], []) });
    for (const name of step.outputNames) if (name.endsWith(":new")) state[name.slice(0, -4)] = out[name];
    losses.push(out["sums/loss/total"].data[0] / out["sums/loss/count"].data[0]);
    $("progress").value = k + 1;
    $("status").textContent = `step ${k + 1} / ${steps}: batch loss ${losses[k].toFixed(4)} ` +
      `(${((performance.now() - started) / (k + 1)).toFixed(0)} ms per step of ${batch} digits)`;
    plot(losses, steps);
    await new Promise((r) => setTimeout(r, 0));           // let the page paint
  }

  // Predictions on held-out digits: the inference graph, fed the weights the loop trained (same names).
  const shown = 48, held = Math.min(500, header.test.labels.length);
  const feeds = { [predict.inputNames.find((p) => !(p in state))]: images("test", 0, held) };
  for (const p of predict.inputNames) if (p in state) feeds[p] = state[p];
  const logits = (await predict.run(feeds))[predict.outputNames[0]].data;
  const guess = Array.from({ length: held }, (_, i) => {
    const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
    return row.indexOf(Math.max(...row));
  });
  const truth = labels("test", 0, held);
  const accuracy = guess.filter((g, i) => g === truth[i]).length / held;
  $("accuracy").textContent = `(accuracy ${(100 * accuracy).toFixed(1)}% on ${held})`;
  for (let i = 0; i < shown; i++) drawDigit(pixels("test", i, 1), guess[i], truth[i]);
  return { losses, accuracy, steps, batch, held };
}

function plot(values, total) {
  const c = $("loss"), g = c.getContext("2d"), pad = 36, w = c.width - pad - 10, h = c.height - 2 * 14;
  const top = Math.max(...values, 0.5);
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = "#ddd"; g.fillStyle = "#666"; g.font = "11px sans-serif";
  for (let t = 0; t <= 4; t++) {
    const y = 14 + h * (1 - t / 4);
    g.beginPath(); g.moveTo(pad, y); g.lineTo(pad + w, y); g.stroke();
    g.fillText((top * t / 4).toFixed(2), 2, y + 4);
  }
  g.fillText("batch loss", pad + 4, 12);
  g.strokeStyle = "#0969da"; g.lineWidth = 2; g.beginPath();
  values.forEach((v, i) => {
    const x = pad + (w * i) / Math.max(total - 1, 1), y = 14 + h * (1 - v / top);
    i === 0 ? g.moveTo(x, y) : g.lineTo(x, y);
  });
  g.stroke();
}

function drawDigit(px, predicted, actual) {
  const fig = document.createElement("figure"), c = document.createElement("canvas");
  c.width = c.height = 28;
  const img = c.getContext("2d").createImageData(28, 28);
  px.forEach((v, i) => { img.data.set([255 - v, 255 - v, 255 - v, 255], i * 4); });
  c.getContext("2d").putImageData(img, 0, 0);
  const caption = document.createElement("figcaption");
  caption.textContent = predicted === actual ? `${predicted}` : `${predicted} (${actual})`;
  caption.className = predicted === actual ? "right" : "wrong";
  fig.append(c, caption);
  $("digits").append(fig);
}
