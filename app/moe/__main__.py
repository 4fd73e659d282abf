"""Command line: ``python -m app.moe serve [--model PATH|default] [--host H] [--port N]``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.moe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the OpenAI-compatible server")
    info = sub.add_parser("info", help="load the model and print its metadata as JSON")
    for p in (serve, info):
        p.add_argument("--model", default="default", help="'default', a .gguf file or HF dir")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8010)
    args = parser.parse_args(argv)

    from app.moe.errors import MoEError
    from app.moe.registry import get_engine

    try:
        engine = get_engine(args.model)
    except MoEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "info":
        print(json.dumps(asdict(engine.info), indent=2))
        return 0

    import uvicorn

    from app.moe.server import create_app

    uvicorn.run(create_app(engine, model=args.model), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
