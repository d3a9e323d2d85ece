// Train the seed CNN that onnxforge exported, with onnxruntime-node alone (README: "Train from any runtime").
// Usage: node train.mjs [folder] [steps] [batch]; the folder holds what examples/export_for_js.py wrote.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";

const [dir = "build", steps = "120", batch = "64"] = process.argv.slice(2);
const B = Number(batch), open = (name) => ort.InferenceSession.create(join(dir, name));
const names = ["train_step", "train_step.init", "predict"];
const [step, init, predict] = await Promise.all(names.map((n) => open(n + ".onnx")));
const state = await init.run({});                       // no inputs: the first value of every state input, by name

// Roles by name: the batch is what the state does not hold; an output "<input>:new" is that input's next value.
const batchInputs = step.inputNames.filter((n) => !(n in state) && n !== "learning_rate");
const target = batchInputs.find((n) => n.startsWith("target/"));
const weight = batchInputs.find((n) => n.startsWith("sample_weight/"));
const data = batchInputs.find((n) => n !== target && n !== weight);

const header = JSON.parse(readFileSync(join(dir, "digits.json"), "utf8"));
const bytes = readFileSync(join(dir, "digits.bin"));
const view = ({ offset, length }) => new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length);
const images = (part, start, n) => new ort.Tensor("float32",   // uint8 pixels -> pixel / 255, NHWC
  Float32Array.from(view(header[part].images).subarray(start * 784, (start + n) * 784), (v) => v / 255),
  [n, 28, 28, 1]);
const labels = (part, start, n) => view(header[part].labels).subarray(start, start + n);

const losses = [], batches = Math.floor(header.train.labels.length / B);
for (let k = 0; k < Number(steps); k++) {
  const start = (k % batches) * B;
  const out = await step.run({ ...state, [data]: images("train", start, B),
    [target]: new ort.Tensor("int64", BigInt64Array.from(labels("train", start, B), BigInt), [B]),
    [weight]: new ort.Tensor("float32", new Float32Array(B).fill(1), [B]),
    learning_rate: new ort.Tensor("float32", [0.001], []) });
  for (const name of step.outputNames) if (name.endsWith(":new")) state[name.slice(0, -4)] = out[name];
  losses.push(out["sums/loss/total"].data[0] / out["sums/loss/count"].data[0]);
  if (k < 5 || (k + 1) % 20 === 0) console.log(`step ${k + 1}: loss ${losses[k].toFixed(4)}`);
}
const n = header.test.labels.length;                    // held-out accuracy: the trained weights, fed by name
const feeds = { [predict.inputNames.find((p) => !(p in state))]: images("test", 0, n) };
for (const p of predict.inputNames) if (p in state) feeds[p] = state[p];
const logits = (await predict.run(feeds))[predict.outputNames[0]].data;
let right = 0;
labels("test", 0, n).forEach((y, i) => {
  const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
  right += row.indexOf(Math.max(...row)) === y;
});
console.log(`held-out accuracy ${(right / n).toFixed(3)} on ${n} digits after ${steps} steps`);
console.log(`losses ${JSON.stringify(losses)}`);
