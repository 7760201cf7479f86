"""`diffseg30k demo`: the Gradio demo (the Space's page) on this machine."""

from __future__ import annotations

import argparse

HELP = "launch the Gradio demo locally (upload an image, see where it was edited and by which model)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from diffseg30k.cli.runtime_option import add_runtime_argument

    parser.add_argument("--checkpoint",
                        help="checkpoint folder, training run folder (its best/) or Hub model id "
                             "(default: $DIFFSEG_CHECKPOINT)")
    parser.add_argument("--revision", help="Hub revision of --checkpoint")
    add_runtime_argument(parser, default="auto")
    parser.add_argument("--host", help="interface to bind (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT or 7860)")


def run(args: argparse.Namespace) -> int:
    from diffseg30k.cli import CommandError
    from diffseg30k.demo import CHECKPOINT_ENV, build_app, launch_kwargs, load_detector, resolve_checkpoint

    checkpoint = resolve_checkpoint(args.checkpoint)
    if checkpoint is None:
        raise CommandError(f"no detector: pass --checkpoint (folder or Hub id) or set {CHECKPOINT_ENV}")
    try:
        detector = load_detector(checkpoint, args.revision, runtime=args.runtime)
    except RuntimeError as err:
        raise CommandError(str(err)) from err
    print(f"checkpoint: {detector.loaded_from}")
    app = build_app(checkpoint, detector=detector)
    app.launch(**launch_kwargs(args.host, args.port))
    return 0
