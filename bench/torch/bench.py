#!/usr/bin/env python3
"""Training throughput of the `conv` autoencoder in PyTorch on the CPU.

The model, loss and optimiser mirror `src/model.rs` (`ConvAutoencoder` with a
32-value code) and `src/train.rs`, so that `cargo xtask bench native` can put the
images per second next to Burn's. Batches are taken in file order and wrap around.

NOTE: the losses are not expected to match Burn's digit for digit, because the weights
start from PyTorch's default initialisation and the Rust trainer shuffles its batches.

Prints one JSON line on stdout; errors go to stderr with exit code 1.
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time
import warnings

IMAGE_SIDE = 28
IMAGES_MAGIC = 0x00000803
# `cargo xtask bench native` reads Burn's loss back every this many steps, so both
# frameworks wait for the result equally often.
LOSS_READ_EVERY = 5
# Weights and biases of the `conv` preset, as `conv_parameter_count` in src/model.rs.
CONV_PARAMETERS = 241_441


class BenchError(Exception):
    """A problem with the arguments or the input file, reported without a traceback."""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Time training steps of the `conv` autoencoder with PyTorch on the CPU."
    )
    parser.add_argument(
        "--images",
        required=True,
        help="MNIST-style IDX image file (train-images-idx3-ubyte, plain or gzip)",
    )
    parser.add_argument("--batch", type=int, default=128, help="images per step (default 128)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones (default 3)")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="intra- and inter-op threads (default: the number of CPUs)",
    )
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    parser.add_argument("--seed", type=int, default=42, help="weight initialisation seed (default 42)")
    args = parser.parse_args(argv)
    for name in ("batch", "steps", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if not args.lr > 0:
        parser.error("--lr must be positive")
    return args


def read_idx_images(path):
    """Reads an IDX image file, plain or gzip, and returns (count, bytes of all pixels)."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        raise BenchError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise BenchError(f"{path}: is a directory, expected an IDX image file") from None
    except OSError as error:
        raise BenchError(f"{path}: read failed: {error.strerror}") from None

    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise BenchError(f"{path}: invalid gzip data: {error}") from None

    if len(raw) < 16:
        raise BenchError(f"{path}: {len(raw)} bytes, too short for an IDX image header (16 bytes)")
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != IMAGES_MAGIC:
        raise BenchError(
            f"{path}: magic number 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} "
            "(an IDX file of unsigned-byte images)"
        )
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise BenchError(f"{path}: images of {rows}x{cols} pixels, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    if count == 0:
        raise BenchError(f"{path}: the header announces 0 images")
    expected = 16 + count * rows * cols
    if len(raw) != expected:
        raise BenchError(
            f"{path}: {len(raw)} bytes, but a header announcing {count} images "
            f"of {rows}x{cols} needs {expected}"
        )
    return count, raw[16:]


def build_model(torch, code_size=32):
    """Builds the `conv` preset of src/model.rs: 28 -> 14 -> 7 -> code -> 7 -> 14 -> 28."""
    nn = torch.nn
    narrow, wide, bottom = 32, 64, IMAGE_SIDE // 4
    flat = wide * bottom * bottom

    def act():
        # NEGATIVE_SLOPE in src/model.rs, also PyTorch's default.
        return nn.LeakyReLU(negative_slope=0.01)

    return nn.Sequential(
        nn.Conv2d(1, narrow, 3, stride=2, padding=1),
        act(),
        nn.Conv2d(narrow, wide, 3, stride=2, padding=1),
        act(),
        nn.Flatten(1),
        nn.Linear(flat, code_size),
        nn.Linear(code_size, flat),
        act(),
        nn.Unflatten(1, (wide, bottom, bottom)),
        nn.ConvTranspose2d(wide, narrow, 3, stride=2, padding=1, output_padding=1),
        act(),
        nn.ConvTranspose2d(narrow, 1, 3, stride=2, padding=1, output_padding=1),
    )


def run(args):
    count, pixels = read_idx_images(args.images)

    # torch warns on import when NumPy is absent; this script never needs NumPy.
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    try:
        import torch
    except (ImportError, OSError, ValueError) as error:
        # A CUDA build of torch installed without its nvidia packages fails with OSError or
        # ValueError while loading its libraries.
        raise BenchError(
            f"importing torch failed ({error}); install bench/torch/requirements.txt first"
        ) from None

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(args.seed)

    all_images = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(
        count, 1, IMAGE_SIDE, IMAGE_SIDE
    )

    model = build_model(torch)
    params = sum(p.numel() for p in model.parameters())
    if params != CONV_PARAMETERS:
        raise BenchError(f"model has {params} parameters, expected {CONV_PARAMETERS}")
    model.train()
    # Burn's AdamConfig defaults: betas 0.9 and 0.999, epsilon 1e-5 (PyTorch's is 1e-8).
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-5)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="mean")

    cursor = 0

    def next_batch():
        # Like `images_tensor` in src/train.rs, the bytes become floats on every step.
        nonlocal cursor
        picks = [(cursor + i) % count for i in range(args.batch)]
        cursor = (cursor + args.batch) % count
        if picks[0] + args.batch <= count:
            batch = all_images[picks[0] : picks[0] + args.batch]
        else:
            batch = all_images[torch.tensor(picks)]
        return batch.to(torch.float32).div_(255.0)

    def step():
        images = next_batch()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), images)
        loss.backward()
        optimizer.step()
        return loss.detach()

    for _ in range(args.warmup):
        step().item()

    first_loss = None
    last_loss = None
    start = time.perf_counter()
    for index in range(1, args.steps + 1):
        loss = step()
        if index % LOSS_READ_EVERY == 0 or index == 1 or index == args.steps:
            value = loss.item()
            if first_loss is None:
                first_loss = value
            last_loss = value
    seconds = time.perf_counter() - start

    return {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "threads": args.threads,
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "seconds": seconds,
        "images_per_second": args.steps * args.batch / seconds,
        "params": params,
        "first_loss": first_loss,
        "last_loss": last_loss,
    }


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except BenchError as error:
        print(f"bench.py: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
