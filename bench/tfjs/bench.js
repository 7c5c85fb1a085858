// Trains ae-lab's `conv` autoencoder (src/model.rs, `ConvAutoencoder` with a 32-value
// code) with TensorFlow.js 4.22 and reports images per second, as a reference for
// `cargo xtask bench browser`.
//
// The served folder must contain this file, index.html, node_modules/ from
// `npm install --no-package-lock` and the image file. The result is a JSON object in
// <pre data-testid="result"> and in `window.benchResult`. The element with
// data-testid="status" reads "done" on success and starts with "error" on failure.
//
// Query string (all optional):
//   backend   webgpu | cpu | wasm (default webgpu)
//   batch     images per step (default 128)
//   steps     timed steps (default 20)
//   warmup    untimed steps before them (default 3)
//   images    URL of N * 784 unsigned bytes, row-major 28x28 images (default images.bin)
//   lr        Adam learning rate (default 2e-3)
//   threads   wasm only: threads for XNNPACK (tf.wasm.setThreadsCount). tfjs loads
//             its threaded build only when the page is cross-origin isolated (served
//             with COOP and COEP headers). The result's wasm_threads is the count in
//             use; it was 1 in every run so far, isolated or not (Chromium 156, 2 cores).
//   polyfill  wasm only: 1 (default) registers the missing Conv2DBackpropFilter kernel
//             built from other wasm kernels, 0 leaves it missing so training fails
'use strict';

const IMAGE_SIDE = 28;
const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE;
const BACKENDS = ['webgpu', 'cpu', 'wasm'];
// Slope of LeakyReLU for negative inputs, `NEGATIVE_SLOPE` in src/model.rs.
const NEGATIVE_SLOPE = 0.01;
// Channels after the first and second convolution, and the code size of `conv`.
const NARROW = 32;
const WIDE = 64;
const CODE_SIZE = 32;
// Side of the smallest feature map: 28 -> 14 -> 7.
const BOTTOM_SIDE = IMAGE_SIDE / 4;
// Burn's `AdamConfig` defaults (burn-optim 0.22), which src/train.rs uses.
const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-5;
// The app reads the loss back once per this many steps (`REPORT_EVERY` in
// src/web/session.rs).
const REPORT_EVERY = 5;
const SEED = 42;
const WASM_DIST = './node_modules/@tensorflow/tfjs-backend-wasm/dist/';

const statusElement = document.getElementById('status');
const progressElement = document.getElementById('progress');
const resultElement = document.getElementById('result');
let finished = false;
let requestedBackend = new URLSearchParams(location.search).get('backend') || 'webgpu';

function showProgress(text) {
  progressElement.textContent = text;
}

function finish(result, status) {
  if (finished) {
    return;
  }
  finished = true;
  window.benchResult = result;
  resultElement.textContent = JSON.stringify(result, null, 2);
  statusElement.textContent = status;
}

function fail(error) {
  const message = error instanceof Error ? error.message : String(error);
  showProgress(`Failed: ${message}`);
  finish({ backend: requestedBackend, error: message }, `error: ${message}`);
}

window.addEventListener('error', (event) => fail(event.error || event.message));
window.addEventListener('unhandledrejection', (event) => fail(event.reason));

// Parses the query string into settings, throwing on values out of range.
function parseSettings(search) {
  const query = new URLSearchParams(search);
  const integer = (name, fallback, min) => {
    const text = query.get(name);
    if (text === null || text === '') {
      return fallback;
    }
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) {
      throw new Error(`invalid query parameter ${name}=${text}: expected an integer >= ${min}`);
    }
    return value;
  };
  const backend = query.get('backend') || 'webgpu';
  if (!BACKENDS.includes(backend)) {
    throw new Error(`invalid backend "${backend}": expected one of ${BACKENDS.join(', ')}`);
  }
  const lrText = query.get('lr') || '2e-3';
  const lr = Number(lrText);
  if (!(lr > 0) || !Number.isFinite(lr)) {
    throw new Error(`invalid query parameter lr=${lrText}: expected a positive number`);
  }
  const threads = integer('threads', null, 1);
  if (threads !== null && backend !== 'wasm') {
    throw new Error('invalid query parameter threads: it applies only to backend=wasm');
  }
  const polyfill = integer('polyfill', 1, 0);
  if (polyfill > 1) {
    throw new Error(`invalid query parameter polyfill=${polyfill}: expected 0 or 1`);
  }
  return {
    backend,
    batch: integer('batch', 128, 1),
    steps: integer('steps', 20, 1),
    warmup: integer('warmup', 3, 0),
    images: query.get('images') || 'images.bin',
    lr,
    threads,
    polyfill: polyfill === 1,
  };
}

// Computes the filter gradient of a 2-D convolution from kernels the wasm backend has,
// because tfjs-backend-wasm 4.22 registers no Conv2DBackpropFilter. For each filter tap
// (kh, kw) it takes the strided window of the padded input that the tap touches and
// multiplies it with the output gradient:
// dW[kh, kw, :, :] = window(kh, kw)^T [N, in] x dy [N, out], with N = batch * outH * outW.
// This is the same arithmetic as the native kernel, as 9 matrix products for a 3x3 filter.
function conv2dBackpropFilterFromWasmKernels({ inputs, backend, attrs }) {
  const { x, dy } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  if (dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropFilter polyfill supports NHWC only, not ${dataFormat}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const run = (name, kernelInputs, kernelAttrs) =>
    tf.getKernel(name, 'wasm').kernelFunc({ inputs: kernelInputs, backend, attrs: kernelAttrs });
  const temporaries = [];
  const keep = (tensorInfo) => {
    temporaries.push(tensorInfo);
    return tensorInfo;
  };
  try {
    const { batchSize, inHeight, inWidth, inChannels, outChannels, outHeight, outWidth,
      strideHeight, strideWidth, filterHeight, filterWidth, padInfo } = info;
    const spanHeight = (outHeight - 1) * strideHeight + filterHeight;
    const spanWidth = (outWidth - 1) * strideWidth + filterWidth;
    const padded = keep(run('PadV2', { x }, {
      paddings: [
        [0, 0],
        [padInfo.top, Math.max(0, spanHeight - padInfo.top - inHeight)],
        [padInfo.left, Math.max(0, spanWidth - padInfo.left - inWidth)],
        [0, 0],
      ],
      constantValue: 0,
    }));
    const rows = batchSize * outHeight * outWidth;
    const gradient = keep(run('Reshape', { x: dy }, { shape: [1, rows, outChannels] }));
    const taps = [];
    for (let kh = 0; kh < filterHeight; kh++) {
      for (let kw = 0; kw < filterWidth; kw++) {
        const patch = keep(run('StridedSlice', { x: padded }, {
          begin: [0, kh, kw, 0],
          end: [
            batchSize,
            kh + (outHeight - 1) * strideHeight + 1,
            kw + (outWidth - 1) * strideWidth + 1,
            inChannels,
          ],
          strides: [1, strideHeight, strideWidth, 1],
          beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0,
        }));
        const windowRows = keep(run('Reshape', { x: patch }, { shape: [1, rows, inChannels] }));
        taps.push(keep(run('BatchMatMul', { a: windowRows, b: gradient },
          { transposeA: true, transposeB: false })));
      }
    }
    const stacked = keep(run('Concat', taps, { axis: 0 }));
    return run('Reshape', { x: stacked }, { shape: filterShape });
  } finally {
    for (const tensorInfo of temporaries) {
      backend.disposeData(tensorInfo.dataId);
    }
  }
}

// Selects and initialises the backend, and returns the result fields that describe its
// setup.
async function initBackend(settings) {
  const extras = { filled_kernels: [] };
  if (settings.backend === 'webgpu') {
    if (!navigator.gpu) {
      throw new Error('WebGPU is not available (navigator.gpu is undefined)');
    }
    if (!(await navigator.gpu.requestAdapter())) {
      throw new Error('WebGPU has no adapter because navigator.gpu.requestAdapter() returned null. Headless Chromium needs --enable-unsafe-webgpu.');
    }
  }

  if (settings.backend === 'wasm') {
    tf.wasm.setWasmPaths(WASM_DIST);
    if (settings.threads !== null) {
      tf.wasm.setThreadsCount(settings.threads);
    }
  }

  // tfjs reports a failed initialisation only through console.warn, often twice and
  // with a stack trace, so collect the distinct first lines.
  const warnings = new Set();
  const originalWarn = console.warn;
  console.warn = (...args) => {
    warnings.add(args.map(String).join(' ').split('\n')[0]);
    originalWarn.apply(console, args);
  };
  let ready;
  try {
    ready = await tf.setBackend(settings.backend);
    await tf.ready();
  } finally {
    console.warn = originalWarn;
  }

  if (!ready || tf.getBackend() !== settings.backend) {
    const detail = warnings.size > 0 ? [...warnings].join('; ') : 'no message from TensorFlow.js';
    throw new Error(`backend ${settings.backend} failed to initialise: ${detail}`);
  }

  if (settings.backend === 'wasm') {
    extras.wasm_threads = tf.wasm.getThreadsCount();
    if (settings.polyfill && !tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
      tf.registerKernel({
        kernelName: 'Conv2DBackpropFilter',
        backendName: 'wasm',
        kernelFunc: conv2dBackpropFilterFromWasmKernels,
      });
      extras.filled_kernels.push('Conv2DBackpropFilter');
    }
  }

  if (settings.backend === 'webgpu') {
    const adapter = tf.backend().adapterInfo || {};
    extras.webgpu_adapter = [adapter.vendor, adapter.architecture].filter(Boolean).join(' ');
  }
  return extras;
}

// Creates a trainable tensor drawn uniformly from +-1/sqrt(fanIn), which is Burn's
// default initialiser (Kaiming uniform with gain 1/sqrt(3)) for weights and biases.
function parameter(shape, fanIn, seed) {
  const bound = 1 / Math.sqrt(fanIn);
  const initial = tf.randomUniform(shape, -bound, bound, 'float32', seed);
  const variable = tf.variable(initial);
  initial.dispose();
  return variable;
}

// Builds the `conv` preset of src/model.rs in NHWC layout. Fan-ins follow Burn: a
// convolution uses in_channels * 9, a transposed convolution out_channels * 9.
function buildModel() {
  const flat = WIDE * BOTTOM_SIDE * BOTTOM_SIDE;
  let seed = SEED;
  const next = () => seed++;
  return {
    // tf.conv2d filters are [height, width, in, out].
    down1Weight: parameter([3, 3, 1, NARROW], 1 * 9, next()),
    down1Bias: parameter([NARROW], 1 * 9, next()),
    down2Weight: parameter([3, 3, NARROW, WIDE], NARROW * 9, next()),
    down2Bias: parameter([WIDE], NARROW * 9, next()),
    encodeWeight: parameter([flat, CODE_SIZE], flat, next()),
    encodeBias: parameter([CODE_SIZE], flat, next()),
    // Stored as [out, in] and multiplied transposed, for the reason in the NOTE in forward().
    decodeWeight: parameter([flat, CODE_SIZE], CODE_SIZE, next()),
    decodeBias: parameter([flat], CODE_SIZE, next()),
    // tf.conv2dTranspose filters are [height, width, out, in].
    up1Weight: parameter([3, 3, NARROW, WIDE], NARROW * 9, next()),
    up1Bias: parameter([NARROW], NARROW * 9, next()),
    up2Weight: parameter([3, 3, 1, NARROW], 1 * 9, next()),
    up2Bias: parameter([1], 1 * 9, next()),
  };
}

function countParameters(model) {
  return Object.values(model).reduce((sum, variable) => sum + variable.size, 0);
}

const leaky = (x) => tf.leakyRelu(x, NEGATIVE_SLOPE);

// Returns the logits of the recreation of `images` ([batch, 28, 28, 1], pixels in [0, 1]).
//
// Padding 1 on both sides of every convolution matches Burn. A transposed convolution
// given padding 1 and an explicit 2x larger output shape is PyTorch's and Burn's
// transposed convolution with padding 1 and output padding 1 (7 -> 14 -> 28).
// Flattening NHWC orders the 3136 values differently from Burn's NCHW, which only
// permutes the rows of the dense weights.
function forward(model, images) {
  const batch = images.shape[0];
  const half = IMAGE_SIDE / 2;
  let x = leaky(tf.add(tf.conv2d(images, model.down1Weight, 2, 1), model.down1Bias));
  x = leaky(tf.add(tf.conv2d(x, model.down2Weight, 2, 1), model.down2Bias));
  const code = tf.add(tf.matMul(tf.reshape(x, [batch, -1]), model.encodeWeight), model.encodeBias);
  // NOTE: with the weight as [in, out], the gradient of the code would be
  // matMul(dy, weight, false, true) with an inner size of 3136. tfjs-backend-webgpu 4.22
  // runs that product with MatMulSplitKProgram, whose vec4 path ignores transposeB, so
  // the gradient is wrong (compared with the cpu backend on SwiftShader). Storing the
  // weight as [out, in] keeps that product untransposed and computes the same function.
  x = leaky(tf.add(tf.matMul(code, model.decodeWeight, false, true), model.decodeBias));
  x = tf.reshape(x, [batch, BOTTOM_SIDE, BOTTOM_SIDE, WIDE]);
  x = leaky(tf.add(
    tf.conv2dTranspose(x, model.up1Weight, [batch, half, half, NARROW], 2, 1), model.up1Bias));
  return tf.add(
    tf.conv2dTranspose(x, model.up2Weight, [batch, IMAGE_SIDE, IMAGE_SIDE, 1], 2, 1),
    model.up2Bias);
}

// Mean binary cross-entropy of `targets` against sigmoid(logits), as `bce_with_logits`
// in src/model.rs computes it: -t log s(x) - (1 - t) log s(-x), where -log s(x) is
// softplus(-x).
//
// NOTE: tf.logSigmoid is avoided on purpose. In tfjs 4.22 its custom gradient reads
// its input after the training step's tidy has disposed it, so minimize() fails with
// "Cannot read properties of undefined (reading 'backend')" on every backend.
function bceWithLogits(logits, targets) {
  const positive = tf.mul(tf.softplus(tf.neg(logits)), targets);
  const negative = tf.mul(tf.softplus(logits), tf.sub(1, targets));
  return tf.mean(tf.add(positive, negative));
}

// Supplies batches in file order, wrapping around at the end, as float32 in [0, 1].
class Batches {
  constructor(bytes, batch) {
    this.bytes = bytes;
    this.count = bytes.length / IMAGE_PIXELS;
    this.batch = batch;
    this.cursor = 0;
  }

  next() {
    const values = new Float32Array(this.batch * IMAGE_PIXELS);
    for (let i = 0; i < this.batch; i++) {
      const start = this.cursor * IMAGE_PIXELS;
      for (let p = 0; p < IMAGE_PIXELS; p++) {
        values[i * IMAGE_PIXELS + p] = this.bytes[start + p] / 255;
      }
      this.cursor = (this.cursor + 1) % this.count;
    }
    return tf.tensor4d(values, [this.batch, IMAGE_SIDE, IMAGE_SIDE, 1]);
  }
}

async function loadImages(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`fetching images from ${url} failed: HTTP ${response.status}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length === 0 || bytes.length % IMAGE_PIXELS !== 0) {
    throw new Error(`${url} has ${bytes.length} bytes, not a positive multiple of ${IMAGE_PIXELS}`);
  }
  return bytes;
}

// Yields to the browser between steps, as the app's `yield_to_browser` does.
const yieldToBrowser = () => new Promise((resolve) => setTimeout(resolve, 0));

// Runs `count` training steps and returns every step's loss. The losses stay on the
// device and are read back together every REPORT_EVERY steps and after the last step,
// as the app does, so the returned promise settles only once the device is idle.
async function train(count, step, label) {
  const losses = [];
  let pending = [];
  for (let i = 1; i <= count; i++) {
    pending.push(step());
    if (pending.length >= REPORT_EVERY || i === count) {
      const stacked = tf.stack(pending);
      tf.dispose(pending);
      pending = [];
      const values = await stacked.data();
      stacked.dispose();
      for (const value of values) {
        if (!Number.isFinite(value)) {
          throw new Error(`the loss became ${value} at ${label} step ${losses.length + 1}`);
        }
        losses.push(value);
      }
    }
    const latest = losses.length > 0 ? `, loss ${losses[losses.length - 1].toFixed(5)}` : '';
    showProgress(`${label} step ${i}/${count}${latest}`);
    await yieldToBrowser();
  }
  return losses;
}

async function main() {
  const settings = parseSettings(location.search);
  requestedBackend = settings.backend;
  if (typeof tf === 'undefined') {
    throw new Error('TensorFlow.js did not load from ./node_modules; run `npm install --no-package-lock` in the served folder');
  }
  statusElement.textContent = 'running';
  showProgress(`Initialising the ${settings.backend} backend…`);
  const extras = await initBackend(settings);

  showProgress(`Loading ${settings.images}…`);
  const bytes = await loadImages(settings.images);
  const batches = new Batches(bytes, settings.batch);

  const model = buildModel();
  const params = countParameters(model);
  const variables = Object.values(model);
  const shape = tf.tidy(() => forward(model, tf.zeros([2, IMAGE_SIDE, IMAGE_SIDE, 1])).shape);
  if (shape.join() !== [2, IMAGE_SIDE, IMAGE_SIDE, 1].join()) {
    throw new Error(`the model returns shape [${shape}] for 2 images, expected [2, 28, 28, 1]`);
  }

  const optimizer = tf.train.adam(settings.lr, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON);
  const step = () => {
    const images = batches.next();
    const loss = optimizer.minimize(() => bceWithLogits(forward(model, images), images), true, variables);
    images.dispose();
    return loss;
  };

  const warmupLosses = await train(settings.warmup, step, 'warm-up');
  const tensorsAfterWarmup = tf.memory().numTensors;
  const started = performance.now();
  const losses = await train(settings.steps, step, 'timed');
  const seconds = (performance.now() - started) / 1000;
  const tensorsAtEnd = tf.memory().numTensors;

  const images = settings.batch * settings.steps;
  const result = {
    backend: settings.backend,
    tfjs_version: tf.version.tfjs,
    batch: settings.batch,
    steps: settings.steps,
    warmup: settings.warmup,
    seconds,
    images_per_second: images / seconds,
    params,
    // The loss of the very first step (a warm-up step unless warmup=0) and of the last.
    first_loss: warmupLosses.length > 0 ? warmupLosses[0] : losses[0],
    last_loss: losses[losses.length - 1],
    // Every step's loss, warm-up steps first.
    losses: [...warmupLosses, ...losses],
    lr: settings.lr,
    images_in_file: batches.count,
    // Live tensors before and after the timed steps; equal when memory stays flat.
    tensors_after_warmup: tensorsAfterWarmup,
    tensors_at_end: tensorsAtEnd,
    cross_origin_isolated: Boolean(window.crossOriginIsolated),
    ...extras,
  };
  showProgress(`Done: ${result.images_per_second.toFixed(1)} images/s on ${settings.backend}`);
  finish(result, 'done');
}

main().catch(fail);
