// Runs an ONNX model in ONNX Runtime (CPU) on .npy inputs and writes .npy outputs.
// usage: node ort_run.js MODEL.onnx OUTDIR NAME=FILE.npy ... [--threads N] [--repeat R] [--warmup W]
// env: ORT_OPT_LEVEL (all): the graph optimisation level (disabled, basic, extended, all)
// With --repeat R it also times R runs after W warm-up runs (default 3, the first being
// the run whose outputs are written) and prints median_ms, min_ms, p90_ms and
// peak_rss_mb (the whole node process: runtime, session and tensors).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const DT = { '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
             '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array],
             '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array], '|b1': ['bool', Uint8Array] };

function readNpy(file) {
  const b = fs.readFileSync(file);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hoff = major === 1 ? 10 : 12;
  const hdr = b.toString('latin1', hoff, hoff + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(hdr)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(hdr)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const [type, Arr] = DT[descr];
  const data = b.subarray(hoff + hlen);
  const copy = new Uint8Array(data.length); copy.set(data);
  return new ort.Tensor(type, new Arr(copy.buffer), shape);
}

function writeNpy(file, t) {
  const descr = Object.keys(DT).find(k => DT[k][0] === t.type);
  let hdr = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${t.dims.join(', ')}${t.dims.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + hdr.length + 1) % 64);
  hdr += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1'); head[6] = 1; head[7] = 0; head.writeUInt16LE(hdr.length, 8);
  const body = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(hdr, 'latin1'), body]));
}

(async () => {
  const args = process.argv.slice(2);
  let threads = 2, repeat = 0, warmup = 3;
  const feeds = {}, pos = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--threads') threads = Number(args[++i]);
    else if (args[i] === '--repeat') repeat = Number(args[++i]);
    else if (args[i] === '--warmup') warmup = Number(args[++i]);
    else if (args[i].includes('=')) { const [k, v] = args[i].split('='); feeds[k] = readNpy(v); }
    else pos.push(args[i]);
  }
  const [model, outdir] = pos;
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: process.env.ORT_OPT_LEVEL || 'all', executionMode: 'sequential' });
  const res = await s.run(feeds);
  fs.mkdirSync(outdir, { recursive: true });
  for (const n of s.outputNames) writeNpy(path.join(outdir, n.replace(/[\/\\]/g, '_') + '.npy'), res[n]);
  if (repeat > 0) {
    for (let r = 1; r < warmup; r++) await s.run(feeds);
    const times = [];
    for (let r = 0; r < repeat; r++) { const t0 = process.hrtime.bigint(); await s.run(feeds); times.push(Number(process.hrtime.bigint() - t0) / 1e6); }
    times.sort((a, b) => a - b);
    const p90 = times[Math.ceil(0.9 * times.length) - 1];
    console.log(`median_ms ${times[Math.floor(times.length / 2)].toFixed(3)}`);
    console.log(`min_ms ${times[0].toFixed(3)}\np90_ms ${p90.toFixed(3)}`);
    console.log(`peak_rss_mb ${(process.resourceUsage().maxRSS / 1024).toFixed(1)}`);
  }
})().catch(e => { console.error('ort_run: ' + e.message); process.exit(1); });
